#!/usr/bin/env bash
# Installs every system package the build, the demo, the tests and the bench
# need on Debian 12. Idempotent; needs root (or sudo).
set -euo pipefail

PACKAGES=(
    # build; g++ builds libFuzzer for the fuzz targets (scripts/fuzz.sh)
    gcc g++ make pkg-config
    # the real programs the tests run under umview
    bash coreutils findutils tar gzip procps psmisc util-linux
    python3 tmux curl
    # tests/tests/identity.rs builds packages with dpkg-deb under --root-id,
    # and gives a file capabilities with setcap
    dpkg libcap2-bin
    # the bench: hyperfine times, PRoot is the tool we compare with
    hyperfine proot
    # um-fuse's fat and iso9660 tests make and check real images
    dosfstools mtools genisoimage xorriso e2fsprogs fuse2fs
    # um-dev's tests partition virtual disks with sfdisk and fdisk, and
    # plug umdevtap's interfaces into a VDE switch (vde_switch, vde_plug)
    fdisk vde2
    # um-binfmt's tests run an aarch64 binary under qemu-aarch64, registered
    # only inside a view (about 20 s to install, ~150 MB)
    qemu-user gcc-aarch64-linux-gnu
    # unmodified archive FUSE programs in a view (tests/tests/fuse_archives.rs):
    # squashfuse (libfuse 3) on images mksquashfs makes, fuse-zip (libfuse 2)
    # on archives zip makes, checked with unzip
    squashfs-tools squashfuse fuse-zip zip unzip
    # um-net's tests run iperf3 over a view's own (smoltcp) stack, ask
    # ifconfig (net-tools) about its interfaces, and ping (iputils-ping)
    # its addresses and those of another view over a VDE switch
    iperf3 net-tools iputils-ping
    # viewfs' chroot tests run a Debian tree debootstrap makes
    # (scripts/make-test-rootfs.sh)
    debootstrap
)

SUDO=""
if [ "$(id -u)" != 0 ]; then
    SUDO="sudo"
fi

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
        echo "install-deps: cargo is in $HOME/.cargo/bin; add it to PATH" >&2
    else
        echo "install-deps: no Rust toolchain found; installing Debian's cargo" >&2
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq cargo rustc >/dev/null
    fi
fi
