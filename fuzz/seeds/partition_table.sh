#!/usr/bin/env bash
# Writes the seeds of fuzz/corpus/partition_table: small disk images
# partitioned by the real sfdisk (util-linux): MBR with primaries, MBR
# with an extended partition and a chain of three logical ones, the same
# chain made cyclic (its last EBR links back to the first), GPT with 128
# and with 4 entries, and the first 17 KiB of a 1 MiB GPT disk.
# Usage: partition_table.sh OUTDIR
set -euo pipefail
OUT=$(realpath "$1")
mkdir -p "$OUT"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cd "$W"
mk() { truncate -s "$2" "$1"; sfdisk -q "$1" >/dev/null; }
printf 'label: dos\nstart=2, size=20, type=83\nstart=22, size=30, type=c, bootable\nstart=60, size=60, type=82\n' |
    mk "$OUT/mbr-primary" 64K
printf 'label: dos\nstart=2, size=10, type=83\nstart=16, size=110, type=5\nstart=18, size=10, type=83\nstart=30, size=20, type=83\nstart=52, size=30, type=7\n' |
    mk "$OUT/mbr-logical-chain" 64K
printf 'label: gpt\nfirst-lba: 34\nstart=34, size=20, type=L, name=root\nstart=54, size=8, type=S\n' |
    mk "$OUT/gpt-whole-48k" 48K
printf 'label: gpt\ntable-length: 4\nfirst-lba: 3\nstart=3, size=10, type=L\nstart=13, size=10, type=L\nstart=23, size=5\n' |
    mk "$OUT/gpt-4-entries" 16K
printf 'label: gpt\nfirst-lba: 34\nstart=34, size=100, type=L, name=root\nstart=134, size=200, type=U\nstart=400, size=1000\n' |
    mk gpt.img 1M
head -c 17408 gpt.img >"$OUT/gpt-1m-cut-at-17k"
python3 - "$OUT" <<'EOS'
import struct, sys
out = sys.argv[1]
d = bytearray(open(f"{out}/mbr-logical-chain", "rb").read())
ext, lba, chain = 16, 16, []
while True:
    chain.append(lba)
    nxt = struct.unpack_from("<I", d, lba * 512 + 446 + 16 + 8)[0]
    if nxt == 0:
        break
    lba = ext + nxt
# The last EBR's link entry points back at the start of the extended one.
at = chain[-1] * 512 + 446 + 16
d[at:at + 16] = bytes([0, 0, 0, 0, 5, 0, 0, 0]) + struct.pack("<II", 0, 110)
open(f"{out}/mbr-logical-cycle", "wb").write(d)
EOS
