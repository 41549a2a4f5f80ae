#!/usr/bin/env bash
# Benchmark harness for umview (View-OS in Rust).
#
# Times a fixed set of workloads natively, under umview (no module loaded by
# default), under Debian's proot and under `taskset -c 0 proot`, with
# hyperfine, and prints the median wall-clock ratio of each to native as a
# markdown table (also written to bench/out/table.md).  See bench/README.md.
#
#   bench/run.sh                 # all workloads
#   bench/run.sh dd find         # a subset
#   bench/run.sh --no-proot      # umview against native only
#
# Environment:
#   UMVIEW       umview binary (default: <repo>/target/release/umview, built
#                with `cargo build --release` if missing)
#   UMVIEW_ARGS  extra umview arguments, word-split (e.g. "-p viewfs,...")
#   PROOT        proot binary (default: proot)
#   RUNS         hyperfine --runs for every workload and mode (default: per
#                workload, see WORKLOADS below)
#   PROOT_RUNS   --runs for the two proot modes (default: RUNS if set, else
#                per workload; proot is slow on some of these)
#   ROUNDS       native and umview are timed in this many alternating rounds
#                (default 3), RUNS split among them
#   NO_PROOT=1   same as --no-proot
#   STRICT=1     exit with status 1 when a umview target is missed
#   OUT          where raw results go (default: bench/out)
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$BENCH_DIR")
OUT=${OUT:-$BENCH_DIR/out}
PY=/usr/bin/python3
PROOT=${PROOT:-proot}
NO_PROOT=${NO_PROOT:-0}
STRICT=${STRICT:-0}
ROUNDS=${ROUNDS:-3}

# ---------------------------------------------------------------- workloads
# name | default runs | default proot runs | target (umview/native) | description
# The commands themselves are defined in define_workloads (they need $WORK).
ALL_WORKLOADS=(exec find python gcc tar dd make)
# Known workloads run only when named (they need a module and a 1 GiB image,
# or a web server).
EXTRA_WORKLOADS=(umdev-read umdev-write umnet-curl binfmt-exec
                 viewfs-find viewfs-tar viewfs-cow-find viewfs-cow-tar viewfs-read chroot-exec)
declare -A W_RUNS=(      [exec]=20 [find]=10 [python]=20 [gcc]=10 [tar]=10 [dd]=10 [make]=10
                         [umdev-read]=10 [umdev-write]=10 [umnet-curl]=10 [binfmt-exec]=10
                         [viewfs-find]=10 [viewfs-tar]=10 [viewfs-cow-find]=10 [viewfs-cow-tar]=10
                         [viewfs-read]=10 [chroot-exec]=10 )
declare -A W_PROOT_RUNS=([exec]=10 [find]=5  [python]=20 [gcc]=10 [tar]=5  [dd]=3  [make]=5
                         [umdev-read]=3 [umdev-write]=3 [umnet-curl]=3 [binfmt-exec]=3
                         [viewfs-find]=3 [viewfs-tar]=3 [viewfs-cow-find]=3 [viewfs-cow-tar]=3
                         [viewfs-read]=3 [chroot-exec]=5 )
# umdev-*: at least 70% of native throughput; umnet-curl: at least 80%;
# binfmt-exec: at most 1.2x the same execs naming the interpreter;
# viewfs-find/tar: at most 1.5x the same workload in a view without the
# mount; viewfs-read: at least 70% of native; chroot-exec: the exec
# workload's own target, in a Debian tree moved onto / (PRoot: -r).
declare -A W_TARGET=(    [exec]=1.5 [find]=3.0 [python]=1.6 [gcc]=1.5 [tar]=2.5 [dd]=1.2 [make]=2.0
                         [umdev-read]=1.43 [umdev-write]=1.43 [umnet-curl]=1.25 [binfmt-exec]=1.2
                         [viewfs-find]=1.5 [viewfs-tar]=1.5 [viewfs-cow-find]=1.5 [viewfs-cow-tar]=1.5
                         [viewfs-read]=1.43 [chroot-exec]=1.5 )
declare -A W_DESC=(
  [exec]="300 x /bin/true from sh"
  [find]="find /usr/share -name '*.txt'"
  [python]="/usr/bin/python3 -c pass"
  [gcc]="gcc -O2 -c small.c"
  [tar]="tar cf of /usr/share/doc"
  [dd]="dd bs=4k count=200000 /dev/zero -> /dev/null"
  [make]="make -j2, 16 small C files"
  [umdev-read]="dd bs=1M of a 1 GiB partition through umdevmbr (native: the image file)"
  [umdev-write]="dd bs=1M of /dev/zero to a 1 GiB partition through umdevmbr (native: the image file)"
  [umnet-curl]="curl of a 200 MiB file from http.server on 127.0.0.1, through umnetnative as the view's default stack"
  [binfmt-exec]="300 execs of x.foo through a umbinfmt entry (interpreter /bin/true) (native: the same view running /bin/true x.foo)"
  [viewfs-find]="find -name '*.txt' of /usr/share moved (viewfs move) to another path (native: umview without the mount, on /usr/share)"
  [viewfs-tar]="tar cf of /usr/share/doc moved (viewfs move) to another path (native: umview without the mount)"
  [viewfs-cow-find]="find /usr/share -name '*.txt' under a viewfs cow mount of /usr/share (native: umview without the mount)"
  [viewfs-cow-tar]="tar cf of /usr/share/doc under a viewfs cow mount of /usr/share (native: umview without the mount)"
  [viewfs-read]="dd bs=1M of a 1 GiB file through a viewfs move mount of its directory (native: the file)"
  [chroot-exec]="300 x /bin/true from sh in a debootstrap tree moved onto / (viewfs move, except=/proc:/dev:/sys:/tmp; PRoot: -r; native: chroot(8) as root)"
)
# W_NATIVE: the native command where it differs from the one run in the view;
# W_VIEW_ARGS: umview arguments the workload needs; W_SETUP: run once before
# the sanity check; W_FIRST: run before each sanity-check run; W_NO_PROOT:
# proot cannot run it (it mounts in the view).
# W_PROOT_ARGS: proot arguments the workload needs.
declare -A W_CMD W_PREP W_CHECK W_NATIVE W_VIEW_ARGS W_SETUP W_FIRST W_NO_PROOT W_PROOT_ARGS

usage() {
  cat <<EOF
usage: $0 [--no-proot] [--runs N] [--list] [-h] [workload ...]
workloads: ${ALL_WORKLOADS[*]} (default: all); when named: ${EXTRA_WORKLOADS[*]}
environment: UMVIEW UMVIEW_ARGS PROOT RUNS PROOT_RUNS ROUNDS NO_PROOT STRICT OUT
EOF
}

SELECTED=()
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --no-proot) NO_PROOT=1 ;;
    --runs) RUNS=$2; shift ;;
    --runs=*) RUNS=${1#--runs=} ;;
    --list)
      for w in "${ALL_WORKLOADS[@]}" "${EXTRA_WORKLOADS[@]}"; do printf '%-11s %s\n' "$w" "${W_DESC[$w]}"; done
      exit 0 ;;
    -*) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    *)
      if [ -z "${W_DESC[$1]+x}" ]; then
        echo "unknown workload: $1 (known: ${ALL_WORKLOADS[*]} ${EXTRA_WORKLOADS[*]})" >&2; exit 2
      fi
      SELECTED+=("$1") ;;
  esac
  shift
done
[ ${#SELECTED[@]} -gt 0 ] || SELECTED=("${ALL_WORKLOADS[@]}")
for v in RUNS PROOT_RUNS ROUNDS; do
  case ${!v:-1} in ''|*[!0-9]*|0) echo "$v must be a positive integer" >&2; exit 2 ;; esac
done

die() { echo "run.sh: $*" >&2; exit 1; }

# ---------------------------------------------------------------- tools
command -v hyperfine >/dev/null || die "hyperfine not found (apt-get install hyperfine)"
[ -x "$PY" ] || die "$PY not found"
for t in gcc make tar find dd timeout; do
  command -v $t >/dev/null || die "$t not found"
done
if [ "$NO_PROOT" != 1 ]; then
  command -v "$PROOT" >/dev/null ||
    die "$PROOT not found (apt-get install proot, or run with --no-proot)"
  command -v taskset >/dev/null || die "taskset not found (util-linux)"
fi

if [ -z "${UMVIEW:-}" ]; then
  UMVIEW=$REPO/target/release/umview
  if [ ! -x "$UMVIEW" ]; then
    echo "== building umview (cargo build --release)"
    (cd "$REPO" && cargo build --release) || die "cargo build --release failed"
  fi
fi
[ -x "$UMVIEW" ] || die "UMVIEW=$UMVIEW is not an executable"
UMVIEW=$(cd "$(dirname "$UMVIEW")" && pwd)/$(basename "$UMVIEW")
read -r -a UMVIEW_ARGV <<<"${UMVIEW_ARGS:-}"

# hyperfine -N splits commands like a POSIX shell: quote each word.
q() { local s; for s in "$@"; do printf "'%s' " "${s//\'/\'\\\'\'}"; done; }
UMVIEW_PREFIX=$(q "$UMVIEW" "${UMVIEW_ARGV[@]}")
PROOT_PREFIX=$(q "$(command -v "$PROOT" || echo "$PROOT")")
PINNED_PREFIX="taskset -c 0 $PROOT_PREFIX"

# ---------------------------------------------------------------- work dir
WORK=$(mktemp -d "${TMPDIR:-/tmp}/umview-bench.XXXXXX")
SERVER_PID=
cleanup() { [ -z "$SERVER_PID" ] || kill "$SERVER_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$OUT"

gen_c() {  # gen_c FILE N: a small C file that pulls in the usual headers
  cat >"$1" <<EOF
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <errno.h>
#include <math.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/types.h>
#include <sys/stat.h>

struct rec$2 { char name[32]; uint32_t key; double val; };

static int cmp$2(const void *a, const void *b)
{
	const struct rec$2 *x = a, *y = b;
	return (x->key > y->key) - (x->key < y->key);
}

double work$2(unsigned n)
{
	struct rec$2 *v = calloc(n, sizeof *v);
	double s = 0;
	if (!v)
		return -errno;
	for (unsigned i = 0; i < n; i++) {
		v[i].key = (i * 2654435761u) ^ $2;
		v[i].val = sqrt((double)i + $2);
		snprintf(v[i].name, sizeof v[i].name, "r%u-%d", i, $2);
	}
	qsort(v, n, sizeof *v, cmp$2);
	for (unsigned i = 0; i < n; i++)
		s += v[i].val * (double)strlen(v[i].name);
	free(v);
	return s;
}
EOF
}

gen_project() {  # 16 C files (15 + main) and a Makefile
  local d=$WORK/proj i objs=""
  mkdir -p "$d"
  for i in $(seq 1 15); do gen_c "$d/f$i.c" "$i"; objs="$objs f$i.o"; done
  {
    echo '#include <stdio.h>'
    for i in $(seq 1 15); do echo "double work$i(unsigned n);"; done
    echo 'int main(void)'
    echo '{'
    echo '	double s = 0;'
    for i in $(seq 1 15); do echo "	s += work$i(100);"; done
    echo '	printf("%.3f\n", s);'
    echo '	return 0;'
    echo '}'
  } >"$d/main.c"
  cat >"$d/Makefile" <<EOF
CC = gcc
CFLAGS = -O2 -Wall
OBJS = main.o$objs

prog: \$(OBJS)
	\$(CC) -o \$@ \$(OBJS) -lm

%.o: %.c
	\$(CC) \$(CFLAGS) -c -o \$@ \$<

clean:
	rm -f prog \$(OBJS)

.PHONY: clean
EOF
}

gen_c "$WORK/small.c" 0
gen_project

define_workloads() {
  W_CMD[exec]="sh -c 'i=0; while [ \$i -lt 300 ]; do /bin/true; i=\$((i+1)); done'"
  W_CMD[find]="find /usr/share -name '*.txt'"
  W_CMD[python]="/usr/bin/python3 -c pass"
  W_CMD[gcc]="gcc -O2 -c -o $WORK/small.o $WORK/small.c"
  # GNU tar does not read file data when the archive is /dev/null: write a file.
  W_CMD[tar]="tar -C /usr/share -cf $WORK/doc.tar doc"
  W_CMD[dd]="dd if=/dev/zero of=/dev/null bs=4k count=200000"
  W_CMD[make]="make -C $WORK/proj -j2"
  W_PREP[make]="make -s -C $WORK/proj clean"
  W_PREP[gcc]="rm -f $WORK/small.o"
  W_PREP[tar]="rm -f $WORK/doc.tar"
  # After one run, print a digest of what it produced (compared native vs umview).
  W_CHECK[find]="md5sum <\$STDOUT"
  W_CHECK[exec]="true"
  W_CHECK[python]="md5sum <\$STDOUT"
  W_CHECK[gcc]="md5sum <$WORK/small.o"
  W_CHECK[tar]="tar -tvf $WORK/doc.tar | md5sum"
  W_CHECK[dd]="md5sum <\$STDOUT"
  W_CHECK[make]="$WORK/proj/prog && ls $WORK/proj/*.o | wc -l"
  # umdev: a 1 GiB partition (sectors 2048 to the end) of a 1025 MiB image,
  # mounted in the view as $WORK/hd; the native command reads or writes the
  # same bytes of the image file.
  local img=$WORK/disk.img vm part=$WORK/hd1
  vm=$(dirname "$UMVIEW")/viewmount
  local mount="$vm -t umdevmbr $img $WORK/hd"
  # A pattern that is no zeros, where the partition lies.
  local fill="$PY -c 'import os; f = os.open(\"$img\", os.O_WRONLY); b = (b\"umdev \" * 174763)[:1 << 20]; [os.pwrite(f, b, (i + 1) << 20) for i in range(1024)]'"
  for w in umdev-read umdev-write; do
    W_SETUP[$w]="rm -f $img; truncate -s 1025M $img && printf 'label: dos\\n2048,,83\\n' | /usr/sbin/sfdisk -q $img && $fill"
    W_VIEW_ARGS[$w]="-p umdev"
    W_NO_PROOT[$w]=1
  done
  W_CMD[umdev-read]="sh -c '$mount && exec dd if=$part bs=1M count=1024 status=none'"
  W_NATIVE[umdev-read]="dd if=$img bs=1M skip=1 count=1024 status=none"
  W_CHECK[umdev-read]="md5sum <\$STDOUT"
  W_CMD[umdev-write]="sh -c '$mount && exec dd if=/dev/zero of=$part bs=1M count=1024 status=none'"
  W_NATIVE[umdev-write]="dd if=/dev/zero of=$img bs=1M seek=1 count=1024 conv=notrunc status=none"
  # The partition was filled before: the whole image tells what was written where.
  W_FIRST[umdev-write]="$fill"
  W_CHECK[umdev-write]="md5sum <$img"
  # umnet: a web server outside the view (started once, stopped at exit)
  # serves a 200 MiB file; in the view the kernel stack is mounted as the
  # default (its sockets are handed to curl as kernel sockets).
  local www=$WORK/www
  W_SETUP[umnet-curl]="mkdir -p $www && head -c 200M /dev/urandom >$www/big.bin && start_web_server $www"
  W_VIEW_ARGS[umnet-curl]="-p umnet,type=umnetnative,source=none,target=/dev/net/default"
  W_NO_PROOT[umnet-curl]=1
  W_CMD[umnet-curl]="sh -c 'exec curl -sS http://127.0.0.1:\$(cat $WORK/port)/big.bin'"
  W_CHECK[umnet-curl]="md5sum <\$STDOUT"
  # binfmt: the reference is the same view (umbinfmt mounted, the entry
  # registered) exec'ing the interpreter by name, so the ratio is what the
  # binfmt entry costs on top of an exec in a view.
  local bdir=$WORK/binfmt
  local breg="$vm -t umbinfmt none /proc/sys/fs/binfmt_misc && echo :foo:E::foo::/bin/true: >/proc/sys/fs/binfmt_misc/register"
  W_SETUP[binfmt-exec]="mkdir -p $bdir && echo data >$bdir/x.foo && chmod +x $bdir/x.foo"
  W_VIEW_ARGS[binfmt-exec]="-p umbinfmt"
  W_NO_PROOT[binfmt-exec]=1
  W_CMD[binfmt-exec]="sh -c '$breg && cd $bdir && i=0; while [ \$i -lt 300 ]; do ./x.foo; i=\$((i+1)); done'"
  W_NATIVE[binfmt-exec]="$UMVIEW -p umbinfmt sh -c '$breg && cd $bdir && i=0; while [ \$i -lt 300 ]; do /bin/true ./x.foo; i=\$((i+1)); done'"
  W_CHECK[binfmt-exec]="true"
  # viewfs: /usr/share seen at another path (move) or under a copy-on-write
  # layer; the reference is umview with no mount.
  local vshare=$WORK/vshare layer=$WORK/layer
  W_VIEW_ARGS[viewfs-find]="-p viewfs,move,source=/usr/share,target=$vshare"
  W_CMD[viewfs-find]="find $vshare -name '*.txt'"
  W_NATIVE[viewfs-find]="$UMVIEW find /usr/share -name '*.txt'"
  W_CHECK[viewfs-find]="sed 's|^/usr/share||; s|^$vshare||' <\$STDOUT | md5sum"
  W_VIEW_ARGS[viewfs-tar]="${W_VIEW_ARGS[viewfs-find]}"
  W_CMD[viewfs-tar]="tar -C $vshare -cf $WORK/vdoc.tar doc"
  W_NATIVE[viewfs-tar]="$UMVIEW tar -C /usr/share -cf $WORK/vdoc.tar doc"
  W_PREP[viewfs-tar]="rm -f $WORK/vdoc.tar"
  W_CHECK[viewfs-tar]="tar -tvf $WORK/vdoc.tar | md5sum"
  W_SETUP[viewfs-cow-find]="mkdir -p $layer"
  W_SETUP[viewfs-cow-tar]="mkdir -p $layer"
  W_VIEW_ARGS[viewfs-cow-find]="-p viewfs,cow,source=$layer,target=/usr/share"
  W_VIEW_ARGS[viewfs-cow-tar]="${W_VIEW_ARGS[viewfs-cow-find]}"
  W_CMD[viewfs-cow-find]="find /usr/share -name '*.txt'"
  W_NATIVE[viewfs-cow-find]="$UMVIEW ${W_CMD[viewfs-cow-find]}"
  W_CHECK[viewfs-cow-find]="md5sum <\$STDOUT"
  W_CMD[viewfs-cow-tar]="tar -C /usr/share -cf $WORK/cdoc.tar doc"
  W_NATIVE[viewfs-cow-tar]="$UMVIEW ${W_CMD[viewfs-cow-tar]}"
  W_PREP[viewfs-cow-tar]="rm -f $WORK/cdoc.tar"
  W_CHECK[viewfs-cow-tar]="tar -tvf $WORK/cdoc.tar | md5sum"
  # PRoot binds /usr/share there (-b); it has no copy-on-write.
  W_PROOT_ARGS[viewfs-find]="-b /usr/share:$vshare"
  W_PROOT_ARGS[viewfs-tar]="-b /usr/share:$vshare"
  for w in viewfs-cow-find viewfs-cow-tar; do W_NO_PROOT[$w]=1; done
  local big=$WORK/bigdir vbig=$WORK/vbig
  W_SETUP[viewfs-read]="mkdir -p $big && head -c 1G /dev/urandom >$big/file"
  W_VIEW_ARGS[viewfs-read]="-p viewfs,move,source=$big,target=$vbig"
  W_PROOT_ARGS[viewfs-read]="-b $big:$vbig"
  W_CMD[viewfs-read]="dd if=$vbig/file bs=1M status=none"
  W_NATIVE[viewfs-read]="dd if=$big/file bs=1M status=none"
  W_CHECK[viewfs-read]="md5sum <\$STDOUT"
  # chroot: the tree scripts/make-test-rootfs.sh makes (ROOTFS names
  # another); natively chroot(8), which needs root.
  local rootfs=${ROOTFS:-/var/cache/viewos-tests/rootfs-bookworm}
  W_SETUP[chroot-exec]="test -x $rootfs/bin/sh && test \$(id -u) = 0"
  W_VIEW_ARGS[chroot-exec]="-p viewfs,move,except=/proc:/dev:/sys:/tmp,source=$rootfs,target=/"
  W_PROOT_ARGS[chroot-exec]="-r $rootfs -b /proc -b /dev -b /sys -b /tmp"
  W_CMD[chroot-exec]="/bin/sh -c 'i=0; while [ \$i -lt 300 ]; do /bin/true; i=\$((i+1)); done; cat /etc/debian_version'"
  W_NATIVE[chroot-exec]="chroot $rootfs ${W_CMD[chroot-exec]}"
  W_CHECK[chroot-exec]="md5sum <\$STDOUT"
}

# A python http.server on 127.0.0.1 serving $1; its port goes to $WORK/port.
# It is stopped by the exit trap.
start_web_server() {
  cat >"$WORK/server.py" <<'PYEOF'
import functools, http.server, os, sys
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
handler.log_message = lambda *a: None
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
srv.serve_forever()
PYEOF
  "$PY" "$WORK/server.py" "$1" "$WORK/port" </dev/null >/dev/null 2>&1 &
  SERVER_PID=$!
  local i
  for i in $(seq 200); do [ -s "$WORK/port" ] && return 0; sleep 0.05; done
  return 1
}
define_workloads

# ---------------------------------------------------------------- header
cpu_model() {
  local m
  m=$(LC_ALL=C lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
  [ -n "$m" ] || m=$(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo | head -1)
  echo "${m:-unknown}"
}
umview_src() {
  if git -C "$REPO" rev-parse --short HEAD >/dev/null 2>&1; then
    local h; h=$(git -C "$REPO" rev-parse --short HEAD)
    git --no-optional-locks -C "$REPO" diff --quiet HEAD -- 2>/dev/null || h="$h (dirty tree)"
    echo "$h"
  else
    echo "not a git checkout"
  fi
}
PROOT_VERSION="(skipped)"
if [ "$NO_PROOT" != 1 ]; then
  PROOT_VERSION=$("$PROOT" --version 2>&1 | grep -oE '[0-9]+\.[0-9]+(\.[0-9]+)?' | head -1 || true)
  PROOT_VERSION="proot ${PROOT_VERSION:-unknown}"
fi
HEADER=$(cat <<EOF
- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')
- kernel: $(uname -r) ($(uname -m))
- cpu: $(cpu_model), nproc: $(nproc)
- os: $( . /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-?}")
- umview: $("$UMVIEW" -v 2>&1 | head -1), $UMVIEW ${UMVIEW_ARGS:+args: $UMVIEW_ARGS }(source: $(umview_src))
- proot: $PROOT_VERSION
- hyperfine: $(hyperfine --version | head -1)
- gcc: $(gcc -dumpfullversion 2>/dev/null || gcc -dumpversion), python: $($PY -V 2>&1)
EOF
)
echo "# umview benchmark"
echo
echo "$HEADER"
echo "- workloads: ${SELECTED[*]}"
echo
echo "$HEADER" >"$OUT/env.md"
START=$(date +%s)

# ---------------------------------------------------------------- sanity check
# Run each workload once natively and once under umview; exit status and the
# digest of what it produced must agree.  proot failures only drop its columns.
cmd_of() {  # cmd_of WORKLOAD PREFIX: the command to run with the prefix of a mode
  case $2 in
    "") echo "${W_NATIVE[$1]:-${W_CMD[$1]}}" ;;
    "$UMVIEW_PREFIX") echo "$2${W_VIEW_ARGS[$1]:+${W_VIEW_ARGS[$1]} }${W_CMD[$1]}" ;;
    *) echo "$2${W_PROOT_ARGS[$1]:+${W_PROOT_ARGS[$1]} }${W_CMD[$1]}" ;;
  esac
}
run_once() {  # run_once PREFIX WORKLOAD -> prints "status digest"
  local prefix=$1 w=$2 st
  [ -z "${W_PREP[$w]:-}" ] || eval "${W_PREP[$w]}" >/dev/null 2>&1
  [ -z "${W_FIRST[$w]:-}" ] || eval "${W_FIRST[$w]}" >/dev/null 2>&1
  st=0
  eval "timeout 600 $(cmd_of "$w" "$prefix")" >"$WORK/stdout" 2>"$WORK/stderr" </dev/null || st=$?
  echo "exit=$st digest=$(STDOUT=$WORK/stdout; eval "${W_CHECK[$w]}" 2>&1 | tr '\n' ' ')"
}

declare -A SKIP_PROOT
if [ "$NO_PROOT" = 1 ]; then echo "== sanity check (each workload once: native, umview)"
else echo "== sanity check (each workload once: native, umview, proot)"; fi
for w in "${SELECTED[@]}"; do
  if [ -n "${W_SETUP[$w]:-}" ]; then
    eval "${W_SETUP[$w]}" >"$WORK/stderr" 2>&1 || die "setting up '$w' failed: $(head -c 2000 "$WORK/stderr")"
  fi
  [ -z "${W_NO_PROOT[$w]:-}" ] || SKIP_PROOT[$w]=1
  nat=$(run_once "" "$w")
  case $nat in exit=0\ *) ;; *) die "workload '$w' fails natively: $nat; stderr: $(head -c 2000 "$WORK/stderr")" ;; esac
  t0=$(date +%s%N)
  um=$(run_once "$UMVIEW_PREFIX" "$w")
  t1=$(date +%s%N)
  if [ "$um" != "$nat" ]; then
    echo "workload '$w' under umview differs from native:" >&2
    echo "  native: $nat" >&2
    echo "  umview: $um" >&2
    echo "  umview stderr:" >&2; head -c 4000 "$WORK/stderr" | sed 's/^/    /' >&2
    die "aborting: workload '$w' does not run correctly under umview ($(cmd_of "$w" "$UMVIEW_PREFIX"))"
  fi
  printf '  %-7s ok  (%s; umview once: %d ms)\n' "$w" "$nat" $(( (t1 - t0) / 1000000 ))
  if [ "$NO_PROOT" != 1 ] && [ -z "${SKIP_PROOT[$w]:-}" ]; then
    pr=$(run_once "$PROOT_PREFIX" "$w")
    if [ "$pr" != "$nat" ]; then
      echo "  $w: WARNING: proot result differs from native ($pr vs $nat); proot columns skipped" >&2
      SKIP_PROOT[$w]=1
    fi
  fi
done
echo

# ---------------------------------------------------------------- timing
# hyperfine --shell=none: no shell start-up in any measurement.
# Native and umview are measured in ROUNDS alternating rounds (native, umview,
# native, umview, ...) so that drift of the machine's speed during the script
# (frequent on VMs) hits both alike; the medians pool all rounds' runs.
bench() {  # bench WORKLOAD MODE PREFIX RUNS ROUND
  local w=$1 mode=$2 prefix=$3 runs=$4 json=$OUT/$1.$2.r$5.json
  local args=(-N --warmup 1 --runs "$runs" --export-json "$json" -n "$w/$mode")
  [ -z "${W_PREP[$w]:-}" ] || args+=(--prepare "${W_PREP[$w]}")
  local cmd
  cmd=$(cmd_of "$w" "$prefix")
  echo "== $w / $mode, round $5 ($runs runs): $cmd"
  if ! hyperfine "${args[@]}" "$cmd"; then
    echo "  hyperfine FAILED for $w / $mode" >&2
    echo '{"failed": true}' >"$json"
  fi
  echo
}

for w in "${SELECTED[@]}"; do
  rm -f "$OUT/$w".*.json
  r=${RUNS:-${W_RUNS[$w]}}
  pr=${PROOT_RUNS:-${RUNS:-${W_PROOT_RUNS[$w]}}}
  per=$(( (r + ROUNDS - 1) / ROUNDS ))
  for k in $(seq 1 "$ROUNDS"); do
    bench "$w" native "" "$per" "$k"
    bench "$w" umview "$UMVIEW_PREFIX" "$per" "$k"
  done
  if [ "$NO_PROOT" != 1 ] && [ -z "${SKIP_PROOT[$w]:-}" ]; then
    bench "$w" proot "$PROOT_PREFIX" "$pr" 1
    bench "$w" proot-pinned "$PINNED_PREFIX" "$pr" 1
  fi
done

ELAPSED=$(( $(date +%s) - START ))

# ---------------------------------------------------------------- table
export OUT ELAPSED NO_PROOT
TARGETS=""; DESCS=""
for w in "${SELECTED[@]}"; do
  TARGETS="$TARGETS$w=${W_TARGET[$w]};"
  DESCS="$DESCS$w=${W_DESC[$w]}"$'\x1f'
done
export TARGETS DESCS SELECTED_LIST="${SELECTED[*]}"
set +e
$PY - <<'EOF'
import glob, json, os, statistics, sys

out = os.environ["OUT"]
targets = dict(kv.split("=", 1) for kv in os.environ["TARGETS"].split(";") if kv)
descs = dict(kv.split("=", 1) for kv in os.environ["DESCS"].split("\x1f") if kv)
no_proot = os.environ["NO_PROOT"] == "1"

def median(w, mode):
    """Median of all runs of all rounds; None if any round failed or none ran."""
    times = []
    files = sorted(glob.glob(os.path.join(glob.escape(out), f"{w}.{mode}.r*.json")))
    try:
        for path in files:
            with open(path) as f:
                times += json.load(f)["results"][0]["times"]
    except (OSError, KeyError, IndexError, ValueError):
        return None, 0
    return (statistics.median(times), len(times)) if times else (None, 0)

def ms(t):
    return "-" if t is None else f"{t * 1000:.0f}" if t >= 0.1 else f"{t * 1000:.1f}"

def ratio(t, nat):
    return "-" if t is None or not nat else f"{t / nat:.2f}x"

rows, fails, missing, summary = [], 0, 0, {}
for w in os.environ["SELECTED_LIST"].split():
    nat, n = median(w, "native")
    um, _ = median(w, "umview")
    tgt = float(targets[w])
    if nat and um is not None:
        r = um / nat
        ok = r <= tgt
        mark = "pass" if ok else "**FAIL**"
        fails += not ok
    else:
        r, mark = None, "**ERROR**"
        missing += 1
    row = [f"{w}: {descs[w]}", ms(nat), ms(um), ratio(um, nat), f"<= {tgt:g}x", mark]
    summary[w] = {"native_s": nat, "umview_s": um, "umview_ratio": r, "target": tgt, "runs": n}
    if not no_proot:
        p, _ = median(w, "proot")
        pp, _ = median(w, "proot-pinned")
        row += [ratio(p, nat), ratio(pp, nat)]
        summary[w].update(proot_s=p, proot_pinned_s=pp)
    rows.append(row)

head = ["workload", "native ms", "umview ms", "umview/native", "target", "result"]
if not no_proot:
    head += ["proot/native", "proot pinned/native"]
lines = ["| " + " | ".join(head) + " |",
         "| " + " | ".join("---" if i == 0 else "---:" for i in range(len(head))) + " |"]
lines += ["| " + " | ".join(r) + " |" for r in rows]
ntot = len(rows)
foot = (f"\numview targets met: {ntot - fails - missing}/{ntot}"
        + (f", errors: {missing}" if missing else "")
        + f". Medians of wall-clock time (hyperfine); ratios are median/native median."
        + f" Benchmark time: {int(os.environ['ELAPSED']) // 60}m{int(os.environ['ELAPSED']) % 60:02d}s.")
table = "\n".join(lines) + "\n" + foot + "\n"

with open(os.path.join(out, "env.md")) as f:
    env = f.read()
with open(os.path.join(out, "table.md"), "w") as f:
    f.write("# umview benchmark\n\n" + env.rstrip("\n") + "\n\n" + table)
with open(os.path.join(out, "summary.json"), "w") as f:
    json.dump(summary, f, indent=1)

print("== median wall-clock ratio to native")
for w, s in summary.items():
    parts = [f"umview {s['umview_ratio']:.2f}x" if s["umview_ratio"] else "umview -"]
    if not no_proot:
        for k, lab in (("proot_s", "proot"), ("proot_pinned_s", "proot pinned")):
            parts.append(f"{lab} {s[k] / s['native_s']:.2f}x" if s.get(k) and s["native_s"] else f"{lab} -")
    print(f"  {w:7s} " + ", ".join(parts))
print()
print(table)
sys.exit(3 if missing else (1 if fails else 0))
EOF
st=$?
set -e
echo "(table written to $OUT/table.md, raw hyperfine JSON in $OUT/)"
if [ $st = 3 ]; then exit 1; fi
if [ $st = 1 ] && [ "$STRICT" = 1 ]; then exit 1; fi
exit 0
