#!/usr/bin/env bash
# Compares this engine with what users would write instead, on the same
# Button purchase (docs/button-0.1.0.md), the same NDJSON file, the same
# core, in one run:
#   - this engine (button@0.1.0 evaluated by the runtime, Go);
#   - the hand-written Go mapping of bench/peers (encoding/json, math/big);
#   - Segment's mapping-kit (@segment/actions-core) plus perform code;
#   - RudderStack's json-template-engine plus bindings.
# It installs the Node peers (bench/peers/package-lock.json) when needed,
# generates N Order Completed events shaped like
# runtime/testdata/bench/button_purchase_3_items.json (about 1.4 KB, 3
# products, varied), checks that every engine produces the same Button body
# for the first SAMPLE events and for the edge cases of
# bench/peers/testdata/edge.ndjson, runs the Go benchmarks of bench/peers,
# times each engine RUNS times (bytes in to body bytes out, JSON parse
# included, all events in memory, pinned to one core with taskset when
# available) and prints a Markdown table with ratios to this engine.
#
# Usage: bench/compare.sh            (from anywhere)
# Environment: N (events, 20000), SAMPLE (events checked, 100), RUNS (timed
# runs per engine, median reported, 3), BENCH_SECONDS (length of each timed
# loop, 2), CPU (core to pin to, 0).
set -euo pipefail
cd "$(dirname "$0")/.."

n=${N:-20000}
sample=${SAMPLE:-100}
runs=${RUNS:-3}
seconds=${BENCH_SECONDS:-2}
cpu=${CPU:-0}

for tool in go node npm; do
    command -v "$tool" >/dev/null || { echo "compare.sh: $tool is required" >&2; exit 1; }
done
pin=()
if command -v taskset >/dev/null && taskset -c "$cpu" true 2>/dev/null; then
    pin=(taskset -c "$cpu")
fi

if [ ! -d bench/peers/node_modules ]; then
    echo "installing the Node peers (npm ci in bench/peers)..." >&2
    (cd bench/peers && npm ci --no-audit --no-fund --loglevel=error) >&2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/orders" ./bench/peers/cmd/orders
go build -o "$tmp/bodies" ./bench/peers/cmd/bodies
"$tmp/orders" -n "$n" > "$tmp/orders.ndjson"
bytes=$(wc -c < "$tmp/orders.ndjson")

# --- same bodies -------------------------------------------------------------
echo "checking bodies..." >&2
head -n "$sample" "$tmp/orders.ndjson" > "$tmp/sample.ndjson"
"$tmp/bodies" -engine blueprint -dump "$sample" "$tmp/sample.ndjson" > "$tmp/sample.blueprint"
"$tmp/bodies" -engine gomap -dump "$sample" "$tmp/sample.ndjson" > "$tmp/sample.gomap"
node bench/peers/segment.mjs "$tmp/sample.ndjson" --dump "$sample" > "$tmp/sample.segment"
node bench/peers/rudderstack.mjs "$tmp/sample.ndjson" --dump "$sample" > "$tmp/sample.rudderstack"
check_sample=$(node bench/peers/same.mjs blueprint="$tmp/sample.blueprint" gomap="$tmp/sample.gomap" \
    segment="$tmp/sample.segment" rudderstack="$tmp/sample.rudderstack")
# The edge cases (numbers as ids, string money, rounding, exponents 0 and 3,
# btn_ref from the URL, fall-backs, offsets) exercise rules the hand-written
# Go mapping does not implement (it covers the common case only).
edge=bench/peers/testdata/edge.ndjson
edges=$(grep -c . "$edge")
"$tmp/bodies" -engine blueprint -dump "$edges" "$edge" > "$tmp/edge.blueprint"
node bench/peers/segment.mjs "$edge" --dump "$edges" > "$tmp/edge.segment"
node bench/peers/rudderstack.mjs "$edge" --dump "$edges" > "$tmp/edge.rudderstack"
check_edge=$(node bench/peers/same.mjs blueprint="$tmp/edge.blueprint" segment="$tmp/edge.segment" \
    rudderstack="$tmp/edge.rudderstack")

# --- Go benchmarks (the fixed event of runtime/testdata/bench) ---------------
echo "running go test -bench ButtonPurchase ./bench/peers..." >&2
exec_flag=()
if [ ${#pin[@]} -gt 0 ]; then
    exec_flag=(-exec "${pin[*]}")
fi
go test -run '^$' -bench 'ButtonPurchase' -benchmem "${exec_flag[@]}" ./bench/peers > "$tmp/gobench.txt"

# --- timed runs over the same file -------------------------------------------
# timed LABEL CMD...: runs CMD (which prints "ENGINE events/s us/event") RUNS
# times and records the run with the median us/event.
timed() {
    local label=$1
    shift
    local i
    : > "$tmp/runs.$label"
    for ((i = 0; i < runs; i++)); do
        "${pin[@]}" "$@" >> "$tmp/runs.$label"
    done
    sort -k3,3g "$tmp/runs.$label" | sed -n "$(((runs + 1) / 2))p" > "$tmp/median.$label"
}
echo "timing $n events x $runs runs x ${seconds}s per engine..." >&2
timed blueprint "$tmp/bodies" -engine blueprint -seconds "$seconds" "$tmp/orders.ndjson"
timed gomap "$tmp/bodies" -engine gomap -seconds "$seconds" "$tmp/orders.ndjson"
timed segment node bench/peers/segment.mjs "$tmp/orders.ndjson" --seconds "$seconds"
timed rudderstack node bench/peers/rudderstack.mjs "$tmp/orders.ndjson" --seconds "$seconds"

# --- report -------------------------------------------------------------------
version() { node -p "require('./bench/peers/node_modules/$1/package.json').version"; }
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
ours=$(awk '{ print $3 }' "$tmp/median.blueprint")
row() { # row LABEL NAME NOTES
    awk -v name="$2" -v notes="$3" -v ours="$ours" -v ref="$1" '{
        ratio = (ref == "blueprint") ? "1.0 (ours)" : sprintf("%.1f×", $3 / ours)
        printf "| %s | %.1f | %d | %s | %s |\n", name, $3, $2, ratio, notes
    }' "$tmp/median.$1"
}
gobench() { # gobench NAME: ns/op, B/op, allocs/op of BenchmarkButtonPurchase/NAME
    awk -v name="$1" '$1 ~ ("^BenchmarkButtonPurchase/" name "(-[0-9]+)?$") {
        printf "%.1f µs, %s B, %s allocs", $3 / 1000, $5, $7 }' "$tmp/gobench.txt"
}

cat <<EOF

## Button purchase: this engine and its peers

$(date -u +%Y-%m-%d), $(nproc) cores${cpu_model:+ of $cpu_model}, $(go env GOVERSION), Node $(node --version); $([ ${#pin[@]} -gt 0 ] && echo "pinned to core $cpu (taskset)" || echo "not pinned (no taskset)").
$n Order Completed events, $((bytes / n)) bytes each on average, 3 products, all in memory; bytes in (JSON parse included) to body bytes out; median of $runs runs of ${seconds}s after a warm-up pass.
Same body: $check_sample (first $sample events); $check_edge (bench/peers/testdata/edge.ndjson).

| engine | µs/event | events/s | ratio (theirs / ours) | notes |
| --- | ---: | ---: | ---: | --- |
$(row blueprint "this engine: \`button@0.1.0\`, Go runtime" "every rule of docs/button-0.1.0.md, with validation (reject naming every field at fault)")
$(row gomap "hand-written Go: \`encoding/json\` into maps, \`math/big\`" "common case only: consent from one path, btn_ref from click_ids only, ids as strings only, 4 currency exponents, no validation; equal on the sample, not run on the edge cases")
$(row segment "Segment mapping-kit (@segment/actions-core $(version @segment/actions-core), liquidjs $(version liquidjs)) + perform code" "not expressible in mapping-kit, done in perform code: minor units from the decimal text, line total (amount × quantity), quantity text to integer, SHA-256, UTC time, btn_ref from the URL query; Segment's schema validation of the payload not run")
$(row rudderstack "RudderStack json-template-engine $(version @rudderstack/json-template-engine), \`create\` (async), simple paths" "bindings for what the language cannot express: minor units from the decimal text (float arithmetic only), the currency exponent table, SHA-256, UTC time, URL query parsing; no validation")

Routing (track, event name, advertising consent) is the same JavaScript for both Node peers, done before their mapping as their platforms do.

\`go test -bench ButtonPurchase ./bench/peers\` (the fixed event runtime/testdata/bench/button_purchase_3_items.json, same core):
- this engine: $(gobench blueprint)
- hand-written Go: $(gobench go_encoding_json_by_hand)
EOF
