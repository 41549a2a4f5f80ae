#!/usr/bin/env bash
# Writes the seeds of fuzz/corpus/netlink: the netlink requests the real
# `ip` (iproute2) sends, captured with `strace -e write=` in a new network
# namespace with a dummy link `vd0` (needs root, for `unshare -n`), plus a
# session of several commands and interface ioctls (SIOCGIFFLAGS, ...).
# Usage: netlink.sh OUTDIR
set -euo pipefail
OUT=$(realpath "$1")
mkdir -p "$OUT"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cd "$W"
cat >cap.sh <<'EOS'
ip link set lo up
ip link add vd0 type dummy 2>/dev/null || true
n=0
: >list
cap() { n=$((n+1)); strace -qq -f -e trace=sendmsg,sendto -e write=3,4,5 -o "$n.trace" "$@" >/dev/null 2>&1 || true; echo "$n $*" >>list; }
cap ip link show
cap ip addr show
cap ip -6 addr show
cap ip route show
cap ip -6 route show
cap ip addr add 10.0.0.2/24 dev vd0
cap ip link set vd0 up
cap ip link set vd0 mtu 1400
cap ip route add 10.1.0.0/16 via 10.0.0.1
cap ip route add default via 10.0.0.1
cap ip route get 10.1.2.3
cap ip -6 addr add fd00::2/64 dev vd0
cap ip -6 route add fd01::/64 via fd00::1
cap ip route del 10.1.0.0/16
cap ip addr del 10.0.0.2/24 dev vd0
cap ip link set vd0 down
cap ip -s link show lo
cap ip route replace 10.2.0.0/16 dev vd0 metric 5
cap ip -4 route flush table main
EOS
unshare -n bash cap.sh
python3 - "$OUT" <<'EOS'
import os, re, struct, sys
out = sys.argv[1]

def write(name, sel, grams):
    d = bytearray([sel])
    for g in grams:
        d += struct.pack("<H", len(g)) + g
    open(os.path.join(out, name), "wb").write(d)

captured = {}
for line in open("list").read().splitlines():
    n, cmd = line.split(" ", 1)
    grams, cur = [], None
    for t in open(f"{n}.trace"):
        if "sendmsg(" in t or "sendto(" in t:
            cur = bytearray()
            grams.append(cur)
            continue
        m = re.match(r"\s*\|\s*[0-9a-f]{5}\s+((?:[0-9a-f]{2}\s+){1,16})", t)
        if m and cur is not None:
            cur.extend(bytes.fromhex(m.group(1).replace(" ", "")))
    grams = [bytes(g) for g in grams if g]
    name = "ip-" + cmd.split(" ", 1)[1].replace(" ", "-").replace("/", "_")
    captured[cmd] = grams
    write(name, 0, grams)

session = []
for cmd in ["ip addr add 10.0.0.2/24 dev vd0", "ip link set vd0 up",
            "ip route add 10.1.0.0/16 via 10.0.0.1", "ip route get 10.1.2.3", "ip route show"]:
    session += captured[cmd]
write("session-addr-up-route-get", 0, session)

IOCTLS = [0x8910, 0x8912, 0x8913, 0x8914, 0x8915, 0x8917, 0x8919, 0x891b, 0x891d, 0x8921,
          0x8922, 0x8927, 0x8933, 0x8942, 0x8970]

def ifreq(name, union=b""):
    return name.ljust(16, b"\0") + union.ljust(24, b"\0")

for req, name, arg in [
        (0x8913, "SIOCGIFFLAGS-lo", ifreq(b"lo")),
        (0x8915, "SIOCGIFADDR-lo", ifreq(b"lo")),
        (0x8914, "SIOCSIFFLAGS-vd0-up", ifreq(b"vd0", struct.pack("<H", 1))),
        (0x8922, "SIOCSIFMTU-vd0", ifreq(b"vd0", struct.pack("<i", 1400))),
        (0x8927, "SIOCGIFHWADDR-vd0", ifreq(b"vd0")),
        (0x8910, "SIOCGIFNAME-2", ifreq(b"", struct.pack("<i", 2))),
        (0x8912, "SIOCGIFCONF", struct.pack("<iiQ", 80, 0, 0x1000)),
        (0x8912, "SIOCGIFCONF-null", struct.pack("<iiQ", 0, 0, 0))]:
    write("ioctl-" + name, 0x80, session[:2] + [bytes([IOCTLS.index(req)]) + arg])
EOS
