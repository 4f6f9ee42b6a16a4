#!/usr/bin/env bash
# Streams N (default 1 000 000) mixed Button events as NDJSON through
# `blueprint eval --format json -` and reports events/s and peak RSS.
# The events are generated to a temporary file first, so that the
# generator does not compete with eval for the CPU.
# Usage: bench/stream.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
mkdir -p bin
go build -o bin/blueprint ./cmd/blueprint
go build -o bin/genevents ./bench/genevents
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bin/genevents -n "$n" > "$tmp/events.ndjson"
size=$(du -m "$tmp/events.ndjson" | cut -f1)
start=$(date +%s%N)
lines=$(/usr/bin/time -f '%M' -o "$tmp/rss" bin/blueprint eval --blueprint button --variant retail \
    --config-file examples/button/config.json --format json - < "$tmp/events.ndjson" | wc -l)
end=$(date +%s%N)
secs=$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.2f", (e - s) / 1e9 }')
echo "events:   $lines of $n (${size} MB of NDJSON)"
echo "elapsed:  ${secs} s"
echo "rate:     $(awk -v n="$lines" -v s="$secs" 'BEGIN { printf "%d", n / s }') events/s"
echo "peak RSS: $(awk '{ printf "%.1f", $1 / 1024 }' "$tmp/rss") MB"
