#!/usr/bin/env bash
# Runs every check of the project: formatting, vet, all tests under the race
# detector (conformance vectors, golden files, fuzz seed corpora, examples),
# a short fuzzing run of each fuzz target, and the README's commands.
# Usage: ./scripts/test.sh            (FUZZTIME=0 skips fuzzing)
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
go test -race -count=1 ./...

fuzztime=${FUZZTIME:-10s}
if [ "$fuzztime" != "0" ]; then
  for target in "./engine FuzzCompile" "./runtime FuzzEvaluate"; do
    set -- $target
    step "fuzz $2 ($fuzztime)"
    go test -run '^$' -fuzz "^$2\$" -fuzztime "$fuzztime" -fuzzminimizetime 5s "$1"
  done
fi

step "benchmarks (one iteration each, so they cannot rot; figures: README)"
go test -run '^$' -bench . -benchtime 1x ./... | grep -v '^Benchmark'

step "README commands"
go run ./cmd/blueprint validate
go run ./cmd/blueprint test | tail -n 1

echo
echo "all checks passed"
