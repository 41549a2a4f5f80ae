#!/usr/bin/env bash
# The long soak run (issue 9; outside CI, the short version is
# tests/tests/soak.rs): one view runs a mixed load for MINUTES minutes
# (default 60) and the host (the umview process) is sampled once a minute:
# resident memory, open fds, threads, and the number of processes of the
# view. The load, round after round, in the same view:
#   - a generated C project (40 files) built with `make -j4` in a viewfs
#     cow mount (the project's directory stays as it is, objects land in a
#     layer), checked by running the program;
#   - a Python thread pool (16 threads) writing, reading back, stat-ing and
#     listing files in a umfusereal mount;
#   - an ext4 image mounted with umfuseext4 (fuse2fs, started by the view),
#     a tree copied in and compared, removed again, unmounted;
#   - a FAT image mounted with umfusefat, a file written and read back,
#     unmounted;
#   - creates, renames, unlinks and overwrites in the cow layer;
#   - a TCP echo of 1 MiB over the view's own smoltcp stack (umnetsmoltcp,
#     used with mstack).
# Every minute the sampler asks the load for a pause between two rounds, so
# samples are taken at the same point of the work; the CSV goes to
# OUT/soak.csv, and at the end the table and a verdict are printed: the
# growth from the sample at minute 5 to the last one must stay within
# RSS +16 MiB, fds +4, threads +8, view processes +1 (at a pause the view
# has the load's shell and, now and then, the sleep it waits with).
#
# Usage: scripts/soak.sh [MINUTES]   (with SOAK_EVERY: the number of samples)
#   UMVIEW_DIR  the directory with umview, viewmount, viewumount, mstack
#               (default: target/release of this checkout; build it with
#               `cargo build --release -p viewos-hyper`)
#   OUT         where soak.csv and the log go (default: a new /tmp/soak.*)
#   SOAK_PAUSE  seconds of rest between two rounds (default 1)
#   SOAK_PARTS  the parts of a round (default "make churn pool ext4 fat
#               tcp"; fewer to tell which one a growth comes from)
#   SOAK_EVERY  seconds between two samples (default 60; the verdict
#               still starts at the fifth sample)
set -uo pipefail
MINUTES=${1:-60}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${UMVIEW_DIR:-$ROOT/target/release}
OUT=${OUT:-$(mktemp -d /tmp/soak.XXXXXX)}
mkdir -p "$OUT"
for b in umview viewmount viewumount mstack; do
    if [ ! -x "$BIN/$b" ]; then
        echo "soak.sh: no $BIN/$b (cargo build --release -p viewos-hyper, or set UMVIEW_DIR)" >&2
        exit 2
    fi
done
for t in gcc make python3 /usr/sbin/mkfs.ext4 /usr/sbin/mkfs.vfat fuse2fs; do
    command -v "$t" >/dev/null || { echo "soak.sh: $t is missing (scripts/install-deps.sh)" >&2; exit 2; }
done

W=$(mktemp -d /tmp/soak-work.XXXXXX)
VIEW_PID=
SAMPLER_DONE=0
cleanup() {
    if [ -n "$VIEW_PID" ] && kill -0 "$VIEW_PID" 2>/dev/null; then
        kill -TERM "$VIEW_PID" 2>/dev/null
        wait "$VIEW_PID" 2>/dev/null
    fi
    rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- fixtures ------------------------------------------------------------
mkdir -p "$W/proj" "$W/layer" "$W/src" "$W/real" "$W/m-real" "$W/m-ext" "$W/m-fat" "$W/ctl" "$W/tree"
N=40
{
    echo '#include <stdio.h>'
    for i in $(seq 1 $N); do echo "int f$i(int);"; done
    echo 'int main(void) { long s = 0;'
    for i in $(seq 1 $N); do echo "  s += f$i($i);"; done
    echo '  printf("%ld\n", s); return 0; }'
} > "$W/proj/main.c"
EXPECT=0
for i in $(seq 1 $N); do
    printf 'int f%d(int x) { int r = 0; for (int k = 0; k < x; k++) r += k * %d; return r + %d; }\n' "$i" "$i" "$i" > "$W/proj/f$i.c"
    # The same sum in the shell: sum_{k<i} k*i + i.
    EXPECT=$((EXPECT + i * (i * (i - 1) / 2) + i))
done
{
    printf 'OBJS = main.o'
    for i in $(seq 1 $N); do printf ' f%d.o' "$i"; done
    printf '\nprog: $(OBJS)\n\t$(CC) -o $@ $(OBJS)\n%%.o: %%.c\n\t$(CC) -O1 -c -o $@ $<\nclean:\n\trm -f prog $(OBJS)\n'
} > "$W/proj/Makefile"
( cd "$W/proj" && find . -type f -exec sha256sum {} + | sort ) > "$W/proj.sums"
# A tree to copy into the ext4 image: 200 small files, a few bigger ones.
for d in $(seq 1 10); do
    mkdir -p "$W/tree/d$d"
    for f in $(seq 1 20); do
        head -c $((d * 97 + f * 13)) /dev/urandom > "$W/tree/d$d/f$f"
    done
done
head -c 3000000 /dev/urandom > "$W/tree/big"
/usr/sbin/mkfs.ext4 -q -F "$W/ext.img" 64M >/dev/null
/usr/sbin/mkfs.vfat -C "$W/fat.img" 8192 >/dev/null

cat > "$W/pool.py" <<'EOF'
import concurrent.futures, hashlib, os, sys
base = sys.argv[1]
def work(i):
    p = os.path.join(base, "t%d" % (i % 16))
    os.makedirs(p, exist_ok=True)
    data = hashlib.sha256(b"%d" % i).digest() * (64 + i % 50)
    f = os.path.join(p, "f%d" % i)
    with open(f, "wb") as fh:
        fh.write(data)
    with open(f, "rb") as fh:
        assert fh.read() == data, f
    assert os.stat(f).st_size == len(data)
    os.listdir(p)
    return len(data)
with concurrent.futures.ThreadPoolExecutor(16) as ex:
    total = sum(ex.map(work, range(400)))
for i in range(400):
    os.unlink(os.path.join(base, "t%d" % (i % 16), "f%d" % i))
for t in range(16):
    os.rmdir(os.path.join(base, "t%d" % t))
print("pool", total)
EOF
cat > "$W/echo.py" <<'EOF'
import socket, threading, hashlib
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(1)
port = srv.getsockname()[1]
def serve():
    c, _ = srv.accept()
    while True:
        b = c.recv(65536)
        if not b:
            break
        c.sendall(b)
    c.close()
t = threading.Thread(target=serve)
t.start()
payload = bytes(range(256)) * 4096
cl = socket.create_connection(("127.0.0.1", port))
got = bytearray()
def reader():
    while len(got) < len(payload):
        b = cl.recv(65536)
        if not b:
            break
        got.extend(b)
r = threading.Thread(target=reader)
r.start()
cl.sendall(payload)
r.join()
cl.close()
t.join()
srv.close()
print("echo", "ok" if bytes(got) == payload else "BAD %d" % len(got))
EOF

# ---- the load, run inside the view ----------------------------------------
cat > "$W/load.sh" <<'EOF'
# Runs in the view. $W: the work directory; $BIN: the commands.
cd "$W" || exit 1
fail() { echo "LOAD FAILURE round $round: $*" >&2; : > "$W/ctl/failed"; }
want() { case " $SOAK_PARTS " in *" $1 "*) return 0 ;; esac; return 1; }
"$BIN/viewmount" -t viewfs -o cow "$W/layer" "$W/proj" || { echo "cow mount failed" >&2; exit 3; }
"$BIN/viewmount" -t umfusereal "$W/real" "$W/m-real" || { echo "umfusereal mount failed" >&2; exit 3; }
mkdir -p /dev/net 2>/dev/null
"$BIN/viewmount" -t umnetsmoltcp none /dev/net/smol || { echo "smoltcp mount failed" >&2; exit 3; }
round=0
while [ ! -e "$W/ctl/stop" ]; do
    round=$((round + 1))
    # C project in the cow mount.
    if want make; then
    ( cd "$W/proj" && make -s clean && make -s -j4 CC=gcc >/dev/null 2>"$W/make.err" ) || fail "make: $(cat "$W/make.err")"
    got=$("$W/proj/prog") || fail "prog did not run"
    [ "$got" = "$EXPECT" ] || fail "prog printed $got, not $EXPECT"
    fi
    # Churn in the cow layer: create, overwrite, rename, unlink.
    if want churn; then
    for i in 1 2 3 4 5 6 7 8; do
        echo "old $round $i" > "$W/proj/churn$i"
        echo "new $round $i" > "$W/proj/churn$i.tmp" && mv "$W/proj/churn$i.tmp" "$W/proj/churn$i"
    done
    for i in 1 3 5 7; do rm -f "$W/proj/churn$i"; done
    [ "$(cat "$W/proj/churn2")" = "new $round 2" ] || fail "churn2"
    rm -f "$W/proj/main.c.bak"; cp "$W/proj/main.c" "$W/proj/main.c.bak" && rm "$W/proj/main.c.bak" || fail "cp/rm"
    fi
    # A thread pool in the umfusereal mount.
    if want pool; then
    out=$(python3 "$W/pool.py" "$W/m-real" 2>&1) || fail "pool.py: $out"
    fi
    # ext4 image, mounted by fuse2fs.
    if ! want ext4; then
        :
    elif "$BIN/viewmount" -t umfuseext4 -o rw+ "$W/ext.img" "$W/m-ext"; then
        cp -a "$W/tree" "$W/m-ext/tree" || fail "cp -a into ext4"
        diff -r "$W/tree" "$W/m-ext/tree" >/dev/null || fail "ext4 copy differs"
        rm -rf "$W/m-ext/tree" || fail "rm -rf in ext4"
        "$BIN/viewumount" "$W/m-ext" || fail "umount ext4"
    else
        fail "mount ext4"
    fi
    # FAT image.
    if ! want fat; then
        :
    elif "$BIN/viewmount" -t umfusefat "$W/fat.img" "$W/m-fat"; then
        echo "round $round" > "$W/m-fat/round.txt"
        [ "$(cat "$W/m-fat/round.txt")" = "round $round" ] || fail "fat read back"
        "$BIN/viewumount" "$W/m-fat" || fail "umount fat"
    else
        fail "mount fat"
    fi
    # TCP over the view's smoltcp stack.
    if want tcp; then
    out=$("$BIN/mstack" /dev/net/smol python3 "$W/echo.py" 2>&1)
    [ "$out" = "echo ok" ] || fail "echo over smoltcp: $out"
    fi
    echo "$round" > "$W/ctl/rounds"
    # A breath between rounds, so the run shares the machine.
    sleep "${SOAK_PAUSE:-1}"
    # A pause for the sampler, between two rounds.
    if [ -e "$W/ctl/want" ]; then
        rm -f "$W/ctl/want"
        : > "$W/ctl/idle"
        n=0
        while [ -e "$W/ctl/idle" ] && [ $n -lt 600 ]; do sleep 0.1; n=$((n + 1)); done
    fi
done
"$BIN/viewumount" "$W/m-real"
"$BIN/viewumount" "$W/proj"
echo "load: $round rounds"
EOF

# ---- run and sample --------------------------------------------------------
CSV=$OUT/soak.csv
echo "minute,utc,rounds,rss_kib,fds,threads,view_procs,load1" > "$CSV"
echo "soak: $MINUTES minutes, work in $W, output in $OUT, binaries from $BIN"
W=$W BIN=$BIN EXPECT=$EXPECT SOAK_PAUSE=${SOAK_PAUSE:-1} SOAK_PARTS=${SOAK_PARTS:-make churn pool ext4 fat tcp} UMVIEW_DUMPABLE=1 setsid "$BIN/umview" -p viewfs -p umfuse -p umnet bash "$W/load.sh" \
    > "$OUT/view.out" 2> "$OUT/view.err" < /dev/null &
VIEW_PID=$!

# Processes below umview (the view's processes; umview traces them all).
view_procs() {
    ps -e -o pid=,ppid= | awk -v root="$VIEW_PID" '
        { parent[$1] = $2 }
        END { n = 0; for (p in parent) { q = parent[p]; while (q != "" && q != 0 && q != 1) { if (q == root) { n++; break } q = parent[q] } } print n }'
}

START=$(date +%s)
minute=0
while :; do
    minute=$((minute + 1))
    target=$((START + minute * ${SOAK_EVERY:-60}))
    while [ "$(date +%s)" -lt "$target" ]; do
        kill -0 "$VIEW_PID" 2>/dev/null || break 2
        sleep 1
    done
    # Ask for a pause between rounds; take the sample there.
    : > "$W/ctl/want"
    n=0
    while [ ! -e "$W/ctl/idle" ] && [ $n -lt 1800 ]; do
        kill -0 "$VIEW_PID" 2>/dev/null || break 2
        sleep 0.1; n=$((n + 1))
    done
    sleep 1
    s=$(awk '/^VmRSS:/ { print $2 }' "/proc/$VIEW_PID/status" 2>/dev/null)
    fds=$(ls "/proc/$VIEW_PID/fd" 2>/dev/null | wc -l)
    thr=$(ls "/proc/$VIEW_PID/task" 2>/dev/null | wc -l)
    vp=$(view_procs)
    rounds=$(cat "$W/ctl/rounds" 2>/dev/null || echo 0)
    load1=$(cut -d' ' -f1 /proc/loadavg)
    echo "$minute,$(date -u +%H:%M:%S),$rounds,${s:-0},$fds,$thr,$vp,$load1" >> "$CSV"
    rm -f "$W/ctl/idle"
    [ "$minute" -ge "$MINUTES" ] && break
done
: > "$W/ctl/stop"
rm -f "$W/ctl/want" "$W/ctl/idle"
wait "$VIEW_PID"
STATUS=$?
VIEW_PID=
FAILED=0
[ -e "$W/ctl/failed" ] && FAILED=1

# ---- report ----------------------------------------------------------------
echo
echo "| minute | UTC | rounds | RSS KiB | fds | threads | view procs | load |"
echo "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
tail -n +2 "$CSV" | awk -F, '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8 }'
echo
echo "umview exit status: $STATUS; $(tail -n 1 "$OUT/view.out")"
grep -h 'LOAD FAILURE' "$OUT/view.err" | head -5
/usr/sbin/e2fsck -fn "$W/ext.img" >/dev/null 2>&1; E2=$?
/usr/sbin/fsck.fat -n "$W/fat.img" >/dev/null 2>&1; FAT=$?
echo "e2fsck -fn of the ext4 image: $E2; fsck.fat -n of the FAT image: $FAT"
cmp_sums=$( ( cd "$W/proj" && find . -type f -exec sha256sum {} + | sort ) | diff - "$W/proj.sums" >/dev/null && echo same || echo CHANGED)
echo "the cow mount's target after the run: $cmp_sums"
ROWS=$(($(wc -l < "$CSV") - 1))
if [ "$ROWS" -lt 6 ]; then
    echo "verdict: too short a run for a verdict ($ROWS samples; growth is measured from minute 5)"
    [ "$STATUS" -eq 0 ] && [ "$FAILED" -eq 0 ] && exit 0
    exit 1
fi
VERDICT=$(awk -F, -v status="$STATUS" -v failed="$FAILED" -v e2="$E2" -v fat="$FAT" -v same="$cmp_sums" '
    NR == 1 { next }
    $1 == 5 { r5 = $4; f5 = $5; t5 = $6; p5 = $7 }
    { r = $4; f = $5; t = $6; p = $7; if ($4 > rmax) rmax = $4 }
    END {
        dr = r - r5; df = f - f5; dt = t - t5; dp = p - p5
        ok = (dr <= 16384 && df <= 4 && dt <= 8 && dp <= 1 && status == 0 && failed == 0 && e2 == 0 && fat == 0 && same == "same")
        printf "%s: from minute 5 to the end RSS %+d KiB (%d -> %d, max %d), fds %+d (%d -> %d), threads %+d (%d -> %d), view processes %+d; tolerance RSS +16384 KiB, fds +4, threads +8, processes +1; load failures: %s; umview status %d",
            ok ? "PASS" : "FAIL", dr, r5, r, rmax, df, f5, f, dt, t5, t, dp, failed ? "yes" : "none", status
    }' "$CSV")
echo "verdict: $VERDICT"
case $VERDICT in PASS*) exit 0 ;; *) exit 1 ;; esac
