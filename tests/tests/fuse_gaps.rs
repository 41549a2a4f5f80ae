//! Host gaps found by running real programs on umfuse mounts (the archive
//! and fuse2fs tests, bench/fuse.sh). Each test shows what a user sees; an
//! open gap's test is ignored until the host (viewos-hyper) closes it (run
//! them with `cargo test -p viewos-tests --test fuse_gaps -- --ignored`).

use std::time::Duration;

use viewos_tests::{quote_path as q, run_native, view_command, Cmd, Mode, TempDir, TREE_SH};

/// glibc 2.36's fchmodat(AT_SYMLINK_NOFOLLOW) opens the file `O_PATH` and
/// chmods `/proc/self/fd/N`: that link leads to the virtual file, so tar
/// run by root restores the directory modes of a mount (it once left them
/// 0700, chmodding the stand-in of the fd instead).
#[test]
fn tar_restores_directory_modes_in_an_umfuse_mount() {
    let t = TempDir::new("tar-modes");
    let tree = t.mkdir("tree");
    let make = format!(
        "set -e; cd {tree}; mkdir -p open/inner shut exec-only; echo a > open/inner/f; \
         echo b > shut/g; chmod 751 open; chmod 755 open/inner; chmod 700 shut; \
         chmod 711 exec-only; cd ..; tar -cf tree.tar -C tree .; mkdir native src mnt; \
         tar -xf tree.tar -C native",
        tree = q(&tree),
    );
    Cmd::bash(&make).run(Mode::Native).assert_ok();
    let list = |dir: &str| {
        format!("(cd {dir} && find . -mindepth 1 -printf '%m %y %p\\n' | LC_ALL=C sort)")
    };
    let native = Cmd::bash(&format!("cd {} && {}", q(t.path()), list("native"))).run(Mode::Native);
    native.assert_ok();
    assert!(native.out().contains("751 d ./open\n"), "{}", native.dump());
    let script = format!(
        "cd {d}; {vm} -t umfusereal {src} mnt || exit 1; tar -xf tree.tar -C mnt || exit 1; {list}; {vu} mnt",
        d = q(t.path()),
        vm = q(&view_command("viewmount")),
        vu = q(&view_command("viewumount")),
        src = q(&t.join("src")),
        list = list("mnt"),
    );
    let view = Cmd::bash(&script)
        .umview_opts(["-p", "umfuse"])
        .run(Mode::View);
    view.assert_ok();
    assert_eq!(view.out(), native.out(), "{}", view.dump());
}

#[test]
/// Closed by the worker pool (calls at the tracer are answered off its
/// thread): a write(2) waiting for the program no longer blocks the
/// program's own clone3 (it was a deadlock with fuse2fs without -s).
fn a_multithreaded_fuse_program_takes_big_writes() {
    let t = TempDir::new("fuse2fs-mt");
    let img = t.join("disk.img");
    let out = run_native(&[
        "/usr/sbin/mkfs.ext4",
        "-q",
        "-F",
        &img.to_string_lossy(),
        "64M",
    ]);
    assert!(out.status.success(), "mkfs.ext4: {out:?}");
    t.mkdir("mnt");
    // Path calls on the mount meanwhile (ls), so that fuse2fs has more
    // than one request at a time and grows its thread pool.
    let script = format!(
        "{TREE_SH}cd {d}\n\
         fuse2fs -f disk.img mnt -o fakeroot >fuse2fs.out 2>fuse2fs.err & pid=$!\n\
         wait_for mnt/lost+found || exit 1\n\
         (for i in $(seq 200); do ls -l mnt >/dev/null; done) & ls=$!\n\
         for i in 1 2 3 4; do dd if=/dev/zero of=mnt/big$i bs=1M count=8 status=none || exit 1; done\n\
         cat mnt/big* | wc -c\n\
         wait $ls; {vu} mnt && echo unmounted; wait $pid\n",
        d = q(t.path()),
        vu = q(&view_command("viewumount")),
    );
    let out = Cmd::bash(&script)
        .umview_opts(["-p", "umfuse"])
        .timeout(Duration::from_secs(30))
        .run(Mode::View);
    assert_eq!(out.out(), "33554432\nunmounted\n", "{}", out.dump());
}

/// `/proc/self/fd/N` of a file a service serves leads to that file, as
/// the kernel's magic links do: reading, `stat -L` and `chmod` through it
/// reach the mount's file (here the source directory of a umfusereal
/// mount, checked outside).
#[test]
fn proc_fd_links_of_virtual_files_lead_to_them() {
    let t = TempDir::new("proc-fd-links");
    let src = t.mkdir("src");
    std::fs::write(src.join("f"), "twelve bytes").expect("write f");
    t.mkdir("mnt");
    let script = format!(
        "cd {d}; {vm} -t umfusereal {src} mnt || exit 1; exec 3< mnt/f; \
         cat /proc/self/fd/3; echo; stat -L -c '%s %F' /proc/self/fd/3; \
         chmod 604 /proc/self/fd/3 && stat -c %a mnt/f; exec 3<&-; {vu} mnt",
        d = q(t.path()),
        vm = q(&view_command("viewmount")),
        vu = q(&view_command("viewumount")),
        src = q(&src),
    );
    let view = Cmd::bash(&script)
        .umview_opts(["-p", "umfuse"])
        .run(Mode::View);
    view.assert_ok();
    assert_eq!(
        view.out(),
        "twelve bytes\n12 regular file\n604\n",
        "{}",
        view.dump()
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(src.join("f")).expect("f").permissions(),
    );
    assert_eq!(mode & 0o777, 0o604);
}
