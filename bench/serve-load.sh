#!/usr/bin/env bash
# Puts `blueprint serve` under signed load on loopback and reports what it
# sustained through ingest → evaluate → deliver: events/s acknowledged and
# delivered to a fake Button, p50/p99 ingest latency, serve's peak RSS and
# CPU, with one kill -9 + restart halfway, checking that no acknowledged
# event is lost. Not part of CI. Flags go to bench/serveload (see -h):
#   bench/serve-load.sh                                  # 60 s, 500 events/s, 16 workers
#   bench/serve-load.sh -duration 15s -rate 2000 -workers 32
#   bench/serve-load.sh -rate 0 -kill=false              # as fast as it goes
#   bench/serve-load.sh -batch 50 -rate 5000             # POST /v1/batch
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bin
go build -o bin/blueprint ./cmd/blueprint
go build -o bin/serveload ./bench/serveload
echo "$(nproc) CPUs, $(go version | cut -d' ' -f3), $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
exec bin/serveload -blueprint bin/blueprint "$@"
