#!/usr/bin/env bash
# Runs every fuzz target for a bounded time; fails on the first crash, hang or OOM.
#
#   fuzz/run.sh [seconds-per-target]     (default 60)
#
# Installs cargo-fuzz if it is missing, seeds the corpora (fuzz/seed.sh), builds once, then
# runs each target with -max_total_time. On this stable toolchain cargo-fuzz needs
# RUSTC_BOOTSTRAP=1. A crash leaves its input in fuzz/artifacts/<target>/; replay it with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz <target> fuzz/artifacts/<target>/<file>
set -euo pipefail

secs="${1:-60}"
case "$secs" in
    '' | *[!0-9]*) echo "usage: $0 [seconds-per-target]" >&2; exit 2 ;;
esac
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
targets=(review policy_file)
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "run.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

"$here/seed.sh"
cd "$root"
cargo fuzz build --fuzz-dir fuzz

for t in "${targets[@]}"; do
    echo "run.sh: fuzzing $t for ${secs}s" >&2
    log="$(mktemp)"
    # -timeout: one input taking longer than 10 s is a hang; -rss_limit_mb: runaway memory
    # (e.g. YAML alias bombs) is a crash.
    if ! cargo fuzz run --fuzz-dir fuzz "$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -dict="fuzz/dict/$t.dict" -print_final_stats=1 >"$log" 2>&1; then
        tail -n 60 "$log" >&2
        echo "run.sh: $t FAILED; inputs in fuzz/artifacts/$t/" >&2
        rm -f "$log"
        exit 1
    fi
    grep -E '^(Done|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)' "$log" | sed "s/^/$t: /" >&2
    rm -f "$log"
done
echo "run.sh: all targets ran ${secs}s without a crash" >&2
