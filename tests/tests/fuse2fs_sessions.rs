//! fuse2fs as people use it: the same ext4 image mounted again in a later
//! view, and creations on names that exist (`mkdir -p`, `mkdir`, `ln -s`,
//! `ln`), which must fail with EEXIST as on a native directory and leave
//! the file system writable (fuse2fs itself takes a MKDIR of an existing
//! directory for a corruption and goes read-only; the kernel, and so
//! umfuse, answers EEXIST without asking it).

use viewos_tests::{quote_path as q, run_native, view_command, Cmd, Mode, TempDir, TREE_SH};

/// Run in a directory: natively, and in the view on the fuse2fs mount.
const OPS: &str = r#"
export LC_ALL=C
mkdir -p d/e && echo one > d/e/f
mkdir -p d/e && echo "mkdir -p again: $?"
mkdir d 2>&1
ln -sT elsewhere d 2>&1
ln d/e/f d/e/f 2>&1
mknod d/e/f p 2>&1
echo two > d/g && cat d/e/f d/g
"#;

#[test]
fn fuse2fs_answers_existing_names_and_mounts_again() {
    let t = TempDir::new("fuse2fs-sessions");
    let img = t.join("disk.img");
    let img_s = img.to_string_lossy().into_owned();
    let out = run_native(&["/usr/sbin/mkfs.ext4", "-q", "-F", &img_s, "16M"]);
    assert!(out.status.success(), "mkfs.ext4: {out:?}");
    let native_dir = t.mkdir("native");
    let native = Cmd::bash(&format!("cd {} || exit 1\n{OPS}", q(&native_dir))).run(Mode::Native);
    native.assert_ok();
    assert!(native.out().contains("File exists"), "{}", native.dump());
    t.mkdir("mnt");
    let session = |ops: &str| {
        let script = format!(
            "{TREE_SH}cd {d}\n\
             fuse2fs -f disk.img mnt -o fakeroot >fuse2fs.out 2>fuse2fs.err & pid=$!\n\
             wait_for mnt/lost+found || {{ cat fuse2fs.err; exit 1; }}\n\
             (cd mnt && {ops}) || exit 1\n\
             {vu} mnt && echo unmounted; wait $pid\n",
            d = q(t.path()),
            vu = q(&view_command("viewumount")),
        );
        Cmd::bash(&script)
            .umview_opts(["-p", "umfuse"])
            .run(Mode::View)
    };
    let first = session(OPS);
    first.assert_ok();
    assert_eq!(
        first.out(),
        format!("{}unmounted\n", native.out()),
        "{}",
        first.dump()
    );
    let err = std::fs::read_to_string(t.join("fuse2fs.err")).unwrap_or_default();
    assert!(
        !err.contains("already exists"),
        "fuse2fs saw a creation on an existing name:\n{err}"
    );
    // The image mounts again, holds the files and takes more.
    let second = session("cat d/e/f d/g; mkdir d/h && echo three > d/h/i && ls d");
    second.assert_ok();
    assert_eq!(
        second.out(),
        "one\ntwo\ne\ng\nh\nunmounted\n",
        "{}",
        second.dump()
    );
    let fsck = run_native(&["/usr/sbin/e2fsck", "-fn", &img_s]);
    assert!(
        fsck.status.success(),
        "e2fsck -fn: {}{}",
        String::from_utf8_lossy(&fsck.stdout),
        String::from_utf8_lossy(&fsck.stderr)
    );
    let i = run_native(&["/usr/sbin/debugfs", "-R", "cat /d/h/i", &img_s]);
    assert_eq!(String::from_utf8_lossy(&i.stdout), "three\n");
}
