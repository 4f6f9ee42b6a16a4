#!/usr/bin/env bash
# Runs every check of the project: formatting, vet, all tests under the race
# detector (conformance vectors, golden files, fuzz seed corpora, examples),
# a short fuzzing run of each fuzz target, and the README's commands.
# Usage: ./scripts/test.sh            (FUZZTIME=0 skips fuzzing; see below)
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "gofmt"
unformatted=$(gofmt -l . | grep -v '^vendor/' || true)
if [ -n "$unformatted" ]; then
  echo "not gofmt-formatted:"; echo "$unformatted"; exit 1
fi

step "go vet"
go vet ./...

step "go test -race"
# TestServeKafkaKill9 runs in its own step below, with -v: a passing test's
# log is not shown by "go test ./...", and its counts are the issue's proof.
go test -race -count=1 -skip '^TestServeKafkaKill9$' ./...

step "Kafka kill -9 test (TestServeKafkaKill9; its counts)"
kill9log=$(mktemp)
if ! go test -race -count=1 -run '^TestServeKafkaKill9$' -v ./cmd/blueprint >"$kill9log" 2>&1; then
  cat "$kill9log"; rm -f "$kill9log"; exit 1
fi
# The line must be there, and say 0 lost (else the test would have failed).
grep -E '^ +serve_kafka_kill_test\.go:[0-9]+: [0-9]+ delivered, [0-9]+ skipped, [0-9]+ rejected, [0-9]+ dead-lettered, 0 lost$' "$kill9log" |
  sed -E 's/^ +serve_kafka_kill_test\.go:[0-9]+: //' || { cat "$kill9log"; rm -f "$kill9log"; exit 1; }
grep -E 'duplicates explained|recorded again on dlq-events' "$kill9log" | sed -E 's/^ +serve_kafka_kill_test\.go:[0-9]+: //' || true
rm -f "$kill9log"

# Fuzzing budgets are execution counts (about 10 s each on a 2-core machine),
# not durations: with a duration, Go's fuzz coordinator can report a spurious
# "context deadline exceeded" failure at the deadline with no crashing input
# (golang/go#75804, fixed in Go 1.27); a count has no deadline to race.
# FUZZTIME=0 skips fuzzing; FUZZTIME=<duration or Nx> overrides every budget.
if [ "${FUZZTIME:-}" != "0" ]; then
  for target in "./engine FuzzCompile 20000x" "./runtime FuzzEvaluate 150000x" "./runtime FuzzEvaluateValid 20000x" "./runtime FuzzScanner 100000x" \
                "./runtime FuzzURLPlaceholders 50000x" "./runtime FuzzExprBudget 20000x" \
                "./runtime/delivery FuzzReader 150000x" "./runtime/delivery FuzzJSONPrefix 150000x" \
                "./internal/syntax FuzzScanDepth 100000x" "./runtime/send FuzzNoSecretLeaks 2000x" \
                "./runtime/send FuzzNoSecretLeaksEncoded 3000x"; do
    set -- $target
    budget=${FUZZTIME:-$3}
    step "fuzz $2 ($budget)"
    go test -run '^$' -fuzz "^$2\$" -fuzztime "$budget" -fuzzminimizetime 5s "$1"
  done
fi

step "benchmarks (one iteration each, so they cannot rot; figures: README)"
go test -run '^$' -bench . -benchtime 1x ./... | grep -v '^Benchmark'

step "README commands"
go run ./cmd/blueprint validate
go run ./cmd/blueprint test | tail -n 1

echo
echo "all checks passed"
