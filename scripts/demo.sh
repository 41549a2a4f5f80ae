#!/usr/bin/env bash
# One command: install what is needed, build, and show a view at work.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
scripts/install-deps.sh
cargo build --release --workspace -q
UMVIEW="$PWD/target/release/umview"

say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

say "umview --version"
$UMVIEW --version

say "umview -V demo bash -c 'ls /usr | head -3; echo \$((6*7)) | cat; exit 3'; echo \$?"
set +e
$UMVIEW -V demo bash -c 'ls /usr | head -3; echo $((6*7)) | cat; exit 3'
echo "exit status: $?"
set -e

say "a whole process tree, with threads, subprocesses and a compiler, traced:"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/hello.c" <<'C'
#include <stdio.h>
int main(void) { printf("hello from a program built inside a view\n"); return 0; }
C
say "umview -o $work/log sh -c 'gcc -O2 -o hello hello.c && ./hello'"
(cd "$work" && "$UMVIEW" -o "$work/log" sh -c 'gcc -O2 -o hello hello.c && ./hello')
say "what the host saw (the programs that ran, from the debug log):"
grep ' running ' "$work/log"

say "a mount that exists only in the view (the unreal test service):"
mkdir -p "$work/docs"
say "umview -p unreal sh -c 'viewmount -t unreal /usr/share/doc $work/docs && ls $work/docs | head -3'"
PATH="$PWD/target/release:$PATH" "$UMVIEW" -p unreal sh -c "viewmount -t unreal /usr/share/doc '$work/docs' && ls '$work/docs' | head -3"
say "ls $work/docs | wc -l    # outside the view, nothing was mounted"
ls "$work/docs" | wc -l

say "an ext4 image in a view, as in the seed: mount -t umfuseext2 runs the unmodified fuse2fs for you (no root, no kernel FUSE):"
/usr/sbin/mkfs.ext4 -q -F "$work/disk.img" 16M >/dev/null
mkdir -p "$work/mnt"
say "umview -p umfuse bash -c 'viewmount -t umfuseext2 -o rw+ disk.img mnt; echo written in a view > mnt/note; ls mnt; viewumount mnt'"
bin="$PWD/target/release"
(cd "$work" && PATH="$bin:$PATH" "$UMVIEW" -p umfuse bash -c '
viewmount -t umfuseext2 -o rw+ disk.img mnt && echo written in a view > mnt/note && ls mnt; viewumount mnt')
say "/usr/sbin/debugfs -R 'cat /note' disk.img    # outside: the image holds the file"
/usr/sbin/debugfs -R 'cat /note' "$work/disk.img" 2>/dev/null

say "a fake root without privileges: umview --root-id sh -c 'id -un; touch f; chown 42:43 f; mknod null c 1 3; ls -ln f null'"
(cd "$work" && "$UMVIEW" --root-id sh -c 'id -un; touch f; chown 42:43 f; mknod null c 1 3; ls -ln f null')
say "ls -ln $work/f $work/null    # outside: a user's plain files owned by the user (run as root, the kernel made them for real)"
ls -ln "$work/f" "$work/null"

say "human mode: umview -s -p umfuse bash -c 'viewmount -t umfusereal -o human secret mnt; cat mnt/key; viewsu nobody -c \"cat mnt/key\"'"
mkdir -p "$work/secret" "$work/mnt2" && echo only-root > "$work/secret/key" && chmod 600 "$work/secret/key"
set +e
(cd "$work" && PATH="$bin:$PATH" "$UMVIEW" -s -p umfuse bash -c '
viewmount -t umfusereal -o human secret mnt2 && cat mnt2/key; viewsu nobody -c "id -un; cat mnt2/key"')
set -e

say "network stacks as files (umnet): a view's default stack, and mstack for one command:"
say "umview -p umnet bash -c 'viewmount -t umnetnative none /dev/net/default; viewmount -t umnetnull none /dev/net/null; ls -l /dev/net; mstack /dev/net/null python3 -c \"import socket; socket.socket()\"'"
PATH="$bin:$PATH" "$UMVIEW" -p umnet bash -c '
viewmount -t umnetnative none /dev/net/default && viewmount -t umnetnull none /dev/net/null && ls -l /dev/net
mstack /dev/net/null /usr/bin/python3 -c "import socket; socket.socket()" 2>&1 | tail -1' || true

# An unprivileged chroot: a Debian tree (made once by debootstrap, as the
# tests use it) moved onto the view's /, a copy-on-write layer over it,
# and a fake root installing a package into the layer.
ROOTFS=/var/cache/viewos-tests/rootfs-bookworm
scripts/make-test-rootfs.sh "$ROOTFS" || true
if [ -e "$ROOTFS/.viewos-complete" ]; then
    mkdir -p "$work/layer"
    say "a Debian tree as the view's root, like PRoot -r, with a cow layer and a fake root: dpkg -i of a package built in the view"
    say "umview --root-id -p 'viewfs,move,except=/proc:/dev:/sys:/tmp,source=$ROOTFS,target=/' -p 'viewfs,cow,except=/proc:/dev:/sys:/tmp,source=$work/layer,target=/' bash -c '...'"
    (cd / && env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME=/root "$UMVIEW" --root-id \
        -p "viewfs,move,except=/proc:/dev:/sys:/tmp,source=$ROOTFS,target=/" \
        -p "viewfs,cow,except=/proc:/dev:/sys:/tmp,source=$work/layer,target=/" /bin/bash -c '
cat /etc/debian_version; python3 -c "import sys; print(sys.version.split()[0], sys.executable)"
mkdir -p /opt/pkg/DEBIAN /opt/pkg/usr/bin
printf "Package: hello-view\nVersion: 1.0\nArchitecture: all\nMaintainer: demo <demo@example.org>\nDescription: demo\n" > /opt/pkg/DEBIAN/control
printf "#!/bin/sh\necho hello from a package installed in a view\n" > /opt/pkg/usr/bin/hello-view
chmod 755 /opt/pkg/usr/bin/hello-view
dpkg-deb -b /opt/pkg /opt/hello.deb >/dev/null && dpkg -i /opt/hello.deb | tail -1 && hello-view
dpkg -l | grep -c ^ii')
    say "ls $work/layer/usr/bin; test -e $ROOTFS/usr/bin/hello-view || echo 'the tree is unchanged'"
    ls "$work/layer/usr/bin"
    test -e "$ROOTFS/usr/bin/hello-view" || echo "the tree is unchanged"
else
    say "(no Debian tree: scripts/make-test-rootfs.sh needs root and the Debian mirror; the chroot part is left out)"
fi

say "umview -p target/release/libhello_service.so cat /hello/hello.txt    # a third-party module, loaded from a library"
"$UMVIEW" -p "$PWD/target/release/libhello_service.so" cat /hello/hello.txt

say "umview python3 -c 'import os, threading; ...'"
$UMVIEW /usr/bin/python3 -c '
import os, subprocess, threading
out = []
t = [threading.Thread(target=lambda i=i: out.append(subprocess.run(["echo", str(i)], capture_output=True, text=True).stdout.strip())) for i in range(4)]
[x.start() for x in t]; [x.join() for x in t]
print("threads ran subprocesses:", sorted(out), "pid", os.getpid())'
