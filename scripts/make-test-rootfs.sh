#!/usr/bin/env bash
# Makes the Debian root file system the tests run programs from through a
# viewfs mount on / (an unprivileged chroot: tests/tests/viewfs_root.rs):
# a debootstrap `minbase` of bookworm with python3-minimal, in
# /var/cache/viewos-tests/rootfs-bookworm, readable by every user. Needs
# root and the Debian mirror; made once (a marker file says it is
# complete). The tests say loudly when it is missing.
set -euo pipefail
DEST=${1:-/var/cache/viewos-tests/rootfs-bookworm}
MIRROR=${VIEWOS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
if [ -e "$DEST/.viewos-complete" ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "make-test-rootfs: needs root (debootstrap); the chroot tests will say they were skipped" >&2
    exit 0
fi
if ! command -v debootstrap >/dev/null && [ ! -x /usr/sbin/debootstrap ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
rm -rf "$DEST"
mkdir -p "$(dirname "$DEST")"
echo "make-test-rootfs: debootstrap bookworm (minbase, python3-minimal) into $DEST"
if ! /usr/sbin/debootstrap --variant=minbase --include=python3-minimal bookworm "$DEST" "$MIRROR" \
    >"$DEST.log" 2>&1; then
    echo "make-test-rootfs: debootstrap failed (log: $DEST.log); the chroot tests will say they were skipped" >&2
    tail -5 "$DEST.log" >&2 || true
    exit 0
fi
chmod a+rx "$(dirname "$DEST")" "$DEST"
touch "$DEST/.viewos-complete"
