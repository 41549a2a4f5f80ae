#!/usr/bin/env bash
# Runs every libFuzzer target of fuzz/ for a bounded time on stable Rust
# (no nightly, no cargo-fuzz: plain cargo with the sanitizer-coverage
# flags cargo-fuzz passes, `-s none`), each on a copy of its corpus in
# the repository, and fails loudly if one crashes, leaks past the RSS
# limit or hangs on an input.
#
#   scripts/fuzz.sh [SECONDS [TARGET...]]   (default: 30 s, every target)
#
# Environment: FUZZ_TARGET_DIR (the build's own target dir, default
# target/fuzz), FUZZ_WORK (where the corpus copies, logs and crash files
# go, default a new temporary dir, kept when a target fails).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECONDS_EACH=${1:-30}
shift || true
TARGETS=("$@")
if [ "${#TARGETS[@]}" -eq 0 ]; then
    TARGETS=(fuse_reply netlink binfmt_register partition_table mount_options)
fi
TRIPLE=$(rustc -vV | sed -n 's/^host: //p')
export CARGO_TARGET_DIR=${FUZZ_TARGET_DIR:-$ROOT/target/fuzz}
# What `cargo fuzz build -s none --release` passes, plus debug assertions
# and overflow checks. The flags go to the target triple only (--target),
# so build scripts and proc macros are built without the coverage hooks.
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
--cfg fuzzing -Cdebug-assertions -Coverflow-checks"

echo "== fuzz: building ${TARGETS[*]} ($TRIPLE, $CARGO_TARGET_DIR)"
start=$(date +%s)
bins=()
for t in "${TARGETS[@]}"; do bins+=(--bin "$t"); done
(cd fuzz && cargo build --release --quiet --target "$TRIPLE" "${bins[@]}")
echo "== fuzz: built in $(($(date +%s) - start)) s"

WORK=${FUZZ_WORK:-$(mktemp -d /tmp/viewos-fuzz.XXXXXX)}
mkdir -p "$WORK"
failed=()
for t in "${TARGETS[@]}"; do
    bin=$CARGO_TARGET_DIR/$TRIPLE/release/$t
    corpus=$WORK/corpus/$t
    artifacts=$WORK/artifacts/$t/
    log=$WORK/$t.log
    rm -rf "$corpus" "$artifacts"
    mkdir -p "$corpus" "$artifacts"
    if [ -d "fuzz/corpus/$t" ]; then
        cp -r "fuzz/corpus/$t/." "$corpus/"
    fi
    seeds=$(find "$corpus" -type f | wc -l)
    rc=0
    "$bin" "$corpus" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
        -max_len=65536 -print_final_stats=1 -artifact_prefix="$artifacts" \
        >"$log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    size=$(find "$corpus" -type f | wc -l)
    crash=$(find "$artifacts" -type f | head -n 1)
    if [ "$rc" -eq 0 ] && [ -z "$crash" ]; then
        echo "fuzz $t: ok, ${execs:-?} executions in ${SECONDS_EACH} s, corpus $seeds -> $size inputs"
    else
        echo "!!!!!!!! fuzz $t: FAILED (exit $rc) after ${execs:-?} executions; crash file: ${crash:-none}" >&2
        echo "-------- last lines of $log:" >&2
        grep -v '^#[0-9]' "$log" | tail -n 40 >&2
        failed+=("$t")
    fi
done
if [ "${#failed[@]}" -gt 0 ]; then
    echo "!!!!!!!! fuzz: ${failed[*]} FAILED; inputs and logs kept in $WORK" >&2
    exit 1
fi
if [ -z "${FUZZ_WORK:-}" ]; then
    rm -rf "$WORK"
fi
