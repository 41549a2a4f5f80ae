#!/usr/bin/env bash
# File system benchmark for um-fuse (issue 5, "Speed").
#
# Times sequential write and read of a big file and the untar of a source
# tree with many small files, with hyperfine, on four file systems:
# (read: the kernel's page cache of the file is dropped before each run, so
# every byte goes through the FUSE server; reread: warm, as fuse2fs's
# default kernel_cache gives it on kernel FUSE)
#
#   native         a directory of the host (no FUSE at all)
#   kernel         fuse2fs on an ext4 image, mounted with the host's kernel
#                  FUSE (needs root; skipped with the reason otherwise)
#   view-fuse2fs   the same fuse2fs, unmodified, in `umview -p umfuse`
#                  (the view's /dev/fuse; no kernel FUSE)
#   view-real      umfusereal (um-fuse's in-process passthrough server) in
#                  `umview -p umfuse`, on a directory of the host
#
# and prints um-fuse against kernel FUSE: throughput ratios for the
# sequential I/O (target >= 0.80), time ratios for the untar (target
# <= 1.5x). See bench/README.md.
#
#   bench/fuse.sh                  # write read untar, every mode
#   bench/fuse.sh write read       # some workloads
#   bench/fuse.sh --no-kernel      # skip the kernel FUSE mode
#
# Environment:
#   UMVIEW     umview binary (default <repo>/target/release/umview; the
#              in-view commands viewmount and viewumount are taken from
#              its directory)
#   SIZE_MB    size of the big file (default 256)
#   TAR_SRC    directory whose tarball is untarred (default /usr/include)
#   RUNS       hyperfine runs of write and read per mode (default 5)
#   TAR_RUNS   hyperfine runs of untar per mode (default 3)
#   ROUNDS     the modes take turns this many times (default 2)
#   OUT        where results go (default bench/out)
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$BENCH_DIR")
OUT=${OUT:-$BENCH_DIR/out}
PY=/usr/bin/python3
SIZE_MB=${SIZE_MB:-256}
TAR_SRC=${TAR_SRC:-/usr/include}
RUNS=${RUNS:-5}
TAR_RUNS=${TAR_RUNS:-3}
ROUNDS=${ROUNDS:-2}
NO_KERNEL=0
ALL_WORKLOADS=(write read reread untar)
MODES=(native kernel view-fuse2fs view-real)

usage() {
  cat <<EOF
usage: $0 [--no-kernel] [--runs N] [-h] [workload ...]
workloads: ${ALL_WORKLOADS[*]} (default: all)
environment: UMVIEW SIZE_MB TAR_SRC RUNS TAR_RUNS ROUNDS OUT
EOF
}

SELECTED=()
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --no-kernel) NO_KERNEL=1 ;;
    --runs) RUNS=$2; TAR_RUNS=$2; shift ;;
    write|read|reread|untar) SELECTED+=("$1") ;;
    *) echo "fuse.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
[ ${#SELECTED[@]} -gt 0 ] || SELECTED=("${ALL_WORKLOADS[@]}")
for v in RUNS TAR_RUNS SIZE_MB ROUNDS; do
  case ${!v} in ''|*[!0-9]*|0) echo "$v must be a positive integer" >&2; exit 2 ;; esac
done

die() { echo "fuse.sh: $*" >&2; exit 1; }

# ---------------------------------------------------------------- tools
command -v hyperfine >/dev/null || die "hyperfine not found (apt-get install hyperfine)"
[ -x "$PY" ] || die "$PY not found"
FUSE2FS=$(command -v fuse2fs || true)
[ -n "$FUSE2FS" ] || die "fuse2fs not found (apt-get install fuse2fs)"
MKFS=/usr/sbin/mkfs.ext4
[ -x "$MKFS" ] || die "$MKFS not found (apt-get install e2fsprogs)"
[ -d "$TAR_SRC" ] || die "TAR_SRC=$TAR_SRC is not a directory"
if [ -z "${UMVIEW:-}" ]; then
  UMVIEW=$REPO/target/release/umview
  if [ ! -x "$UMVIEW" ]; then
    echo "== building umview (cargo build --release)"
    (cd "$REPO" && cargo build --release) || die "cargo build --release failed"
  fi
fi
[ -x "$UMVIEW" ] || die "UMVIEW=$UMVIEW is not an executable"
UMVIEW=$(cd "$(dirname "$UMVIEW")" && pwd)/$(basename "$UMVIEW")
VIEWMOUNT=$(dirname "$UMVIEW")/viewmount
VIEWUMOUNT=$(dirname "$UMVIEW")/viewumount
[ -x "$VIEWMOUNT" ] && [ -x "$VIEWUMOUNT" ] || die "viewmount/viewumount not next to $UMVIEW"

# Kernel FUSE: fuse2fs mounts with mount(2) itself only as root (there is
# no fusermount for others here).
KERNEL_SKIP=""
if [ "$NO_KERNEL" = 1 ]; then
  KERNEL_SKIP="--no-kernel"
elif [ "$(id -u)" != 0 ]; then
  KERNEL_SKIP="not root"
elif ! grep -qw fuse /proc/filesystems; then
  KERNEL_SKIP="no fuse in /proc/filesystems"
elif ! { exec 3<>/dev/fuse; } 2>/dev/null; then
  KERNEL_SKIP="cannot open /dev/fuse"
else
  exec 3>&-
fi
[ -z "$KERNEL_SKIP" ] || echo "fuse.sh: SKIPPED (no kernel FUSE): $KERNEL_SKIP; the kernel column stays empty" >&2

# ---------------------------------------------------------------- work dir
WORK=$(mktemp -d "${TMPDIR:-/tmp}/umfuse-bench.XXXXXX")
chmod 755 "$WORK"
cleanup() {
  if [ -d "$WORK/kmnt" ] && grep -q " $WORK/kmnt " /proc/self/mounts; then
    umount -l "$WORK/kmnt" || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$OUT"
rm -f "$OUT"/fuse.*.json "$OUT"/fuse.check.*

echo "== preparing: tarball of $TAR_SRC, two ext4 images"
tar -C "$(dirname "$TAR_SRC")" -cf "$WORK/src.tar" "$(basename "$TAR_SRC")"
TAR_FILES=$(tar -tf "$WORK/src.tar" | wc -l)
TAR_MB=$(( $(stat -c %s "$WORK/src.tar") / 1048576 ))
# Room for the big files and every untar run (the untar dirs are kept:
# removing them through FUSE takes as long as making them).
IMG_MB=$(( 2 * SIZE_MB + ((TAR_RUNS + 1) * ROUNDS + 1) * TAR_MB * 3 / 2 + 512 ))
for img in kernel view; do
  "$MKFS" -q -F "$WORK/$img.img" "${IMG_MB}M"
done

# ---------------------------------------------------------------- one mode
# The workloads as a script run inside the mode (natively, or in the view):
# $MNT is the file system under test. hyperfine runs there too, so in the
# view modes it and the timed commands are in the view.
workloads_sh() {  # workloads_sh MODE MNT ROUND
  cat <<EOF
MODE=$1
ROUND=$3
MNT=$2
hf() {  # hf NAME RUNS COMMAND [PREPARE]
  local args=(-N --warmup 1 --runs "\$2" --export-json "$OUT/fuse.\$1.\$MODE.r\$ROUND.json" -n "\$1/\$MODE")
  [ -z "\${4:-}" ] || args+=(--prepare "\$4")
  echo "== \$1 / \$MODE, round \$ROUND (\$2 runs): \$3"
  hyperfine "\${args[@]}" "\$3" || { echo '{"failed": true}' >"$OUT/fuse.\$1.\$MODE.r\$ROUND.json"; echo "hyperfine FAILED" >&2; }
  echo
}
for w in ${SELECTED[*]}; do
  case \$w in
    write) hf write $RUNS "dd if=/dev/zero of=\$MNT/big bs=1M count=$SIZE_MB status=none" "rm -f \$MNT/big" ;;
    read|reread)
      [ -f "\$MNT/rbig" ] || dd if=/dev/zero of="\$MNT/rbig" bs=1M count=$SIZE_MB status=none
      if [ \$w = reread ]; then
        hf reread $RUNS "dd if=\$MNT/rbig of=/dev/null bs=1M status=none"
      elif [ \$MODE = native ]; then
        hf read $RUNS "dd if=\$MNT/rbig of=/dev/null bs=1M status=none"
      else
        # Drop the FUSE file's pages (posix_fadvise DONTNEED) before each
        # run: every byte comes from the server, whose image stays cached.
        hf read $RUNS "dd if=\$MNT/rbig of=/dev/null bs=1M status=none" \
          "dd if=\$MNT/rbig iflag=nocache count=0 status=none"
      fi ;;
    untar)
      mkdir -p "\$MNT/untar"
      hf untar $TAR_RUNS "sh -c 'd=\\\$(mktemp -d \$MNT/untar/u.XXXXXX) && tar -xf $WORK/src.tar -C \\\$d'" ;;
  esac
done
# What the workloads left, compared with native afterwards.
{
  [ ! -f "\$MNT/big" ] || echo "write: \$(stat -c %s "\$MNT/big") \$(sha256sum <"\$MNT/big" | cut -c1-16)"
  [ ! -f "\$MNT/rbig" ] || echo "read/reread: \$(dd if="\$MNT/rbig" bs=1M status=none | sha256sum | cut -c1-16)"
  for d in "\$MNT"/untar/u.*; do
    [ -d "\$d" ] || continue
    # tar --compare: contents, sizes, mtimes, link targets and modes;
    # owners are left out (a user's untar does not chown). Modes are
    # counted apart: see "untar modes" in bench/README.md.
    tar -df "$WORK/src.tar" -C "\$d" >"$WORK/tar-d.\$MODE" 2>&1 || true
    echo "untar: \$(grep -cvE 'Uid differs|Gid differs|Mode differs' "$WORK/tar-d.\$MODE") differences"
    echo "untar modes: \$(grep -c 'Mode differs' "$WORK/tar-d.\$MODE") differ"
  done | sort | uniq -c
} >"$OUT/fuse.check.\$MODE"
EOF
}

run_mode() {  # run_mode MODE ROUND
  local mode=$1 round=$2 script=$WORK/run-$1.sh
  case $mode in
    native)
      mkdir -p "$WORK/native"
      workloads_sh native "$WORK/native" "$round" >"$script"
      bash "$script" ;;
    kernel)
      mkdir -p "$WORK/kmnt"
      "$FUSE2FS" -s "$WORK/kernel.img" "$WORK/kmnt" -o fakeroot 2>"$WORK/fuse2fs-kernel.err" ||
        { cat "$WORK/fuse2fs-kernel.err" >&2; die "fuse2fs on kernel FUSE failed"; }
      workloads_sh kernel "$WORK/kmnt" "$round" >"$script"
      bash "$script"
      umount "$WORK/kmnt" ;;
    view-fuse2fs)
      mkdir -p "$WORK/vmnt"
      {
        echo "$FUSE2FS -s -f $WORK/view.img $WORK/vmnt -o fakeroot 2>$WORK/fuse2fs-view.err & pid=\$!"
        echo "n=0; until [ -d $WORK/vmnt/lost+found ]; do n=\$((n+1)); [ \$n -lt 400 ] || { cat $WORK/fuse2fs-view.err; exit 1; }; sleep 0.05; done"
        workloads_sh view-fuse2fs "$WORK/vmnt" "$round"
        echo "$VIEWUMOUNT $WORK/vmnt; wait \$pid || true"
      } >"$script"
      "$UMVIEW" -p umfuse bash "$script" ;;
    view-real)
      mkdir -p "$WORK/rmnt" "$WORK/realsrc"
      {
        echo "$VIEWMOUNT -t umfusereal $WORK/realsrc $WORK/rmnt || exit 1"
        workloads_sh view-real "$WORK/rmnt" "$round"
        echo "$VIEWUMOUNT $WORK/rmnt"
      } >"$script"
      "$UMVIEW" -p umfuse bash "$script" ;;
  esac
}

# ---------------------------------------------------------------- header
HEADER=$(cat <<EOF
- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')
- kernel: $(uname -r) ($(uname -m)), nproc: $(nproc), cpu: $(LC_ALL=C lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
- umview: $("$UMVIEW" -v 2>&1 | head -1), $UMVIEW (source: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?'))
- fuse2fs: $("$FUSE2FS" --version 2>&1 | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -1) (run with -s, one thread, in every mode), hyperfine: $(hyperfine --version | head -1)
- big file: $SIZE_MB MiB, dd bs=1M (write: /dev/zero -> file; read: file -> /dev/null); untar: $TAR_SRC, $TAR_FILES entries, $TAR_MB MiB
- runs: write/read/reread $RUNS, untar $TAR_RUNS (each after one warm-up run), in each of $ROUNDS rounds (native, kernel, view-fuse2fs, view-real, native, ...; medians pool the rounds); ext4 images of $IMG_MB MiB
EOF
)
echo "# um-fuse file system benchmark"
echo
echo "$HEADER"
echo
START=$(date +%s)
# The modes take turns, ROUNDS times, so that the machine's drift (or a
# neighbour's load) does not land on one mode.
for round in $(seq 1 "$ROUNDS"); do
  for mode in "${MODES[@]}"; do
    if [ "$mode" = kernel ] && [ -n "$KERNEL_SKIP" ]; then continue; fi
    run_mode "$mode" "$round"
  done
done
ELAPSED=$(( $(date +%s) - START ))

# ---------------------------------------------------------------- table
export OUT ELAPSED SIZE_MB KERNEL_SKIP HEADER SELECTED_LIST="${SELECTED[*]}"
$PY - <<'EOF'
import glob, json, os, re, statistics, sys

out = os.environ["OUT"]
size = int(os.environ["SIZE_MB"])
kernel_skip = os.environ["KERNEL_SKIP"]
modes = ["native", "kernel", "view-fuse2fs", "view-real"]

def median(w, mode):
    """Median of every run of every round; None if a round failed or none ran."""
    times = []
    files = sorted(glob.glob(os.path.join(glob.escape(out), f"fuse.{w}.{mode}.r*.json")))
    try:
        for path in files:
            with open(path) as f:
                times += json.load(f)["results"][0]["times"]
    except (OSError, KeyError, IndexError, ValueError):
        return None
    return statistics.median(times) if times else None

def check(mode):
    try:
        with open(os.path.join(out, f"fuse.check.{mode}")) as f:
            return f.read()
    except OSError:
        return None

def strict(c):
    """A check without its mode lines (told apart, not fatal)."""
    return None if c is None else "".join(l for l in c.splitlines(True) if "untar modes" not in l)

def mode_lines(c):
    return "".join(l.strip() + "; " for l in (c or "").splitlines() if "untar modes" in l)

native_check = check("native")
wrong = [m for m in modes[1:] if check(m) is not None and strict(check(m)) != strict(native_check)]
for m in wrong:
    print(f"fuse.sh: {m} left different results from native:\n{check(m)}--- native:\n{native_check}",
          file=sys.stderr)
# Modes whose untar left directory modes unlike native's (timings kept, marked).
bad_modes = [m for m in modes[1:] if check(m) is not None and m not in wrong
             and mode_lines(check(m)) != mode_lines(native_check)]

def cell(w, t, m):
    if t is None:
        return "-"
    if w in ("write", "read", "reread"):
        return f"{size / t:.0f} MiB/s ({t * 1000:.0f} ms)"
    return f"{t * 1000:.0f} ms" + (" (†)" if m in bad_modes else "")

def ratio(w, t, k):
    """um-fuse against kernel FUSE: throughput ratio for I/O, time ratio for untar."""
    if t is None or k is None:
        return None
    return k / t if w in ("write", "read", "reread") else t / k

def verdict(w, r):
    if r is None:
        return "n/a"
    ok = r >= 0.8 if w in ("write", "read", "reread") else r <= 1.5
    return "pass" if ok else "**FAIL**"

def fmt(w, r):
    if r is None:
        return "-"
    return f"{r:.2f}" if w in ("write", "read", "reread") else f"{r:.2f}x"

head = ["workload", "native", "kernel FUSE (fuse2fs)", "view: fuse2fs", "view: umfusereal",
        "fuse2fs view/kernel", "umfusereal/kernel", "target", "fuse2fs result"]
rows = []
summary = {}
for w in os.environ["SELECTED_LIST"].split():
    t = {m: median(w, m) for m in modes}
    for m in wrong:
        t[m] = None
    rf = ratio(w, t["view-fuse2fs"], t["kernel"])
    rr = ratio(w, t["view-real"], t["kernel"])
    target = ">= 0.80 (throughput)" if w in ("write", "read", "reread") else "<= 1.5x (time)"
    rows.append([w] + [cell(w, t[m], m) for m in modes] + [fmt(w, rf), fmt(w, rr), target, verdict(w, rf)])
    summary[w] = {"median_s": t, "fuse2fs_view_vs_kernel": rf, "umfusereal_vs_kernel": rr}

lines = ["| " + " | ".join(head) + " |",
         "| " + " | ".join("---" if i == 0 else "---:" for i in range(len(head))) + " |"]
lines += ["| " + " | ".join(r) + " |" for r in rows]
foot = ("\nMedians of wall-clock time (hyperfine). write, read, reread: MiB/s of the median run; "
        "ratios are um-fuse throughput / kernel FUSE throughput. untar: time ratio um-fuse / kernel FUSE.")
if kernel_skip:
    foot += f" Kernel FUSE not measured ({kernel_skip}): no ratios."
if wrong:
    foot += f" Wrong results (left out): {', '.join(wrong)}."
if bad_modes and "untar" in os.environ["SELECTED_LIST"].split():
    def dirs(c):
        return ", ".join(re.findall(r"untar modes: (\d+) differ", c or "")) or "?"
    foot += (f" (†) {', '.join(bad_modes)}: every file as native's, but in each untarred tree"
             f" {dirs(check(bad_modes[0]))} directories kept another mode than the tarball's"
             f" (native: {dirs(native_check)}).")
el = int(os.environ["ELAPSED"])
foot += f" Benchmark time: {el // 60}m{el % 60:02d}s."
table = "\n".join(lines) + "\n" + foot + "\n"
with open(os.path.join(out, "fuse-table.md"), "w") as f:
    f.write("# um-fuse file system benchmark\n\n" + os.environ["HEADER"] + "\n\n" + table)
with open(os.path.join(out, "fuse-summary.json"), "w") as f:
    json.dump(summary, f, indent=1)
print("== checks (what each mode left, must equal native)")
for m in modes:
    c = check(m)
    if c is not None:
        print(f"  {m}: " + " / ".join(l.strip() for l in c.splitlines()))
print()
print(table)
sys.exit(1 if wrong else 0)
EOF
echo "(table written to $OUT/fuse-table.md, raw hyperfine JSON in $OUT/fuse.*.json)"
