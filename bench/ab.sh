#!/usr/bin/env bash
# Compares the runtime benchmarks of two revisions on this machine, fairly
# on a shared, drifting machine: it builds one test binary per revision,
# runs them in alternation ROUNDS times with short runs, and prints, per
# benchmark, the best and the median ns/op of each and their ratio. The
# best of many short alternating runs is what a noisy neighbour least
# disturbs; a difference under ~5 % is noise here.
#
# Usage: bench/ab.sh [BASE [HEAD]] [-- BENCH_REGEX]
#   BASE defaults to HEAD~1, HEAD to the working tree ("." means the
#   working tree). Environment: ROUNDS (10), BENCHTIME (300ms), PKG
#   (./runtime).
# Example: bench/ab.sh main . -- 'Evaluate/(button_purchase_3|skip)'
set -euo pipefail
cd "$(dirname "$0")/.."
base=HEAD~1 head=. regex=.
args=()
while [ $# -gt 0 ]; do
    if [ "$1" = "--" ]; then regex=${2:-.}; break; fi
    args+=("$1"); shift
done
[ ${#args[@]} -ge 1 ] && base=${args[0]}
[ ${#args[@]} -ge 2 ] && head=${args[1]}
rounds=${ROUNDS:-10}
benchtime=${BENCHTIME:-300ms}
pkg=${PKG:-./runtime}

tmp=$(mktemp -d)
trap 'git worktree remove --force "$tmp/wt" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
build() { # rev out
    if [ "$1" = "." ]; then
        go test -c -o "$2" "$pkg"
    else
        git worktree add --detach --force "$tmp/wt" "$1" >/dev/null 2>&1
        (cd "$tmp/wt" && go test -c -o "$2" "$pkg")
        git worktree remove --force "$tmp/wt" >/dev/null
    fi
}
build "$base" "$tmp/a.test"
build "$head" "$tmp/b.test"
dir=$(go list -f '{{.Dir}}' "$pkg")
for _ in $(seq "$rounds"); do
    for t in a b; do
        (cd "$dir" && "$tmp/$t.test" -test.run '^$' -test.bench "$regex" -test.benchtime "$benchtime") |
            awk -v t="$t" '/^Benchmark/ { print t, $1, $3 }'
    done
done > "$tmp/runs"
echo "| benchmark | $base best | $head best | ratio | $base median | $head median |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
awk '
{ v[$2, $1] = v[$2, $1] " " $3; names[$2] = 1 }
function stats(s, out,   n, a, i, j, x) {
    n = split(s, a, " ")
    for (i = 2; i <= n; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > x + 0; j--) a[j + 1] = a[j]; a[j + 1] = x }
    out["best"] = a[1]; out["median"] = (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
END {
    for (k in names) {
        stats(v[k, "a"], A); stats(v[k, "b"], B)
        printf "| %s | %.1f | %.1f | %.3f | %.1f | %.1f |\n", k, A["best"], B["best"], B["best"] / A["best"], A["median"], B["median"]
    }
}' "$tmp/runs" | sort
