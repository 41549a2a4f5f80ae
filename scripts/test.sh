#!/usr/bin/env bash
# One command: install what is needed, build, and run the whole test suite,
# first as root, then as an unprivileged user (umview is for users without
# root, and root hides permission bugs). Must be started as root (it creates
# the test user); as a normal user it runs the suite once, as that user.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
scripts/install-deps.sh

# The Debian tree the chroot tests run (made once, as root; they say
# loudly when it is missing).
scripts/make-test-rootfs.sh

echo "== build"
cargo build --workspace --quiet
# The test executables, as cargo builds them.
mapfile -t TEST_BINS < <(cargo test --workspace --no-run --message-format=json 2>/dev/null |
    /usr/bin/python3 -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("profile", {}).get("test") and m.get("executable"):
        print(m["executable"])
')
if [ "${#TEST_BINS[@]}" -eq 0 ]; then
    echo "test.sh: no test executables were built" >&2
    exit 1
fi

TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')

# Everything the unprivileged run needs, in a directory it can read.
STAGE=$(mktemp -d /tmp/viewos-tests.XXXXXX)
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/debug/deps"
for b in umview embed hello_fs viewmount viewumount mstack um_ls_service um_add_service um_del_service um_mov_service viewname vuname viewsu viewsudo; do
    cp "$TARGET_DIR/debug/$b" "$STAGE/debug/"
done
cp "$TARGET_DIR/debug/libhello_service.so" "$STAGE/debug/"
for b in "${TEST_BINS[@]}"; do cp "$b" "$STAGE/debug/deps/"; done
chmod -R a+rX "$STAGE"
chmod 1777 "$STAGE"

TOTAL_PASS=0
TOTAL_FAIL=0
TOTAL_IGNORED=0
FAILED_RUNS=()
# Tests that pass without checking their subject because this machine
# lacks something (viewos_tests::report_skipped prints one line each).
SKIPPED_LINES=()

run_suite() { # $1 = label, rest = command prefix to run as someone
    local label=$1; shift
    echo "== tests as $label"
    local b out rc
    for b in "$STAGE"/debug/deps/*; do
        echo "-- $(basename "$b") ($label)"
        set +e
        out=$("$@" env PATH=/usr/local/bin:/usr/bin:/bin UMVIEW_BIN="$STAGE/debug/umview" \
            EMBED_BIN="$STAGE/debug/embed" TMPDIR=/tmp "$b" --test-threads=2 2>&1)
        rc=$?
        set -e
        printf '%s\n' "$out" | grep -v '^test .* ok$' || true
        local line
        line=$(printf '%s\n' "$out" | grep -E '^test result:' | tail -1 || true)
        local p f
        p=$(sed -nE 's/.* ([0-9]+) passed.*/\1/p' <<<"$line")
        f=$(sed -nE 's/.* ([0-9]+) failed.*/\1/p' <<<"$line")
        TOTAL_PASS=$((TOTAL_PASS + ${p:-0}))
        TOTAL_FAIL=$((TOTAL_FAIL + ${f:-0}))
        local i
        i=$(sed -nE 's/.* ([0-9]+) ignored.*/\1/p' <<<"$line")
        TOTAL_IGNORED=$((TOTAL_IGNORED + ${i:-0}))
        local s
        while IFS= read -r s; do
            SKIPPED_LINES+=("$s, as $label")
        done < <(printf '%s\n' "$out" | grep -o 'SKIPPED (.*' || true)
        if [ "$rc" != 0 ]; then
            FAILED_RUNS+=("$(basename "$b") as $label (exit $rc)")
            [ -n "$f" ] && [ "$f" != 0 ] || TOTAL_FAIL=$((TOTAL_FAIL + 1))
        fi
    done
}

if [ "$(id -u)" = 0 ]; then
    run_suite root
    USER_NAME=viewos-test
    id "$USER_NAME" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$USER_NAME"
    run_suite "$USER_NAME" runuser -u "$USER_NAME" --
else
    run_suite "$(id -un)"
    echo "test.sh: WARNING: not root, so the suite ran only once, as $(id -un)" >&2
fi

echo
if [ "${#FAILED_RUNS[@]}" -gt 0 ]; then
    printf 'failed: %s\n' "${FAILED_RUNS[@]}"
fi
echo "${TOTAL_PASS} passed, ${TOTAL_FAIL} failed, ${TOTAL_IGNORED} ignored, ${#SKIPPED_LINES[@]} skipped (counted as passed)"
if [ "${#SKIPPED_LINES[@]}" -gt 0 ]; then
    echo "test.sh: these passed without checking what they are about, for want of something on this machine:"
    printf '  %s\n' "${SKIPPED_LINES[@]}"
fi
if [ "$TOTAL_IGNORED" != 0 ]; then
    echo "test.sh: ${TOTAL_IGNORED} tests are ignored: features not built yet (each prints its reason;"
    echo "         list them with: cargo test --workspace -- --ignored --list)"
fi
[ "$TOTAL_FAIL" = 0 ] && [ "${#FAILED_RUNS[@]}" = 0 ]
