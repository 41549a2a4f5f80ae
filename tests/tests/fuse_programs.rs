//! Unmodified FUSE programs in a view: `fuse2fs` (libfuse 2) mounts an
//! ext4 image through the view's virtual `/dev/fuse` and a mount(2) the
//! view answers (no kernel FUSE, no root); coreutils write files through
//! it; after umount the image passes `e2fsck -fn` outside the view and
//! holds the files with the right bytes.

use viewos_tests::{
    quote_path as q, run_native as run, run_native_ok as run_ok, view_command, Cmd, Mode, TempDir,
};

#[test]
fn fuse2fs_serves_an_ext4_image_in_a_view() {
    let t = TempDir::new("fuse2fs");
    let img = t.path().join("disk.img");
    let img_s = img.to_string_lossy().into_owned();
    run_ok(&["/usr/sbin/mkfs.ext4", "-q", "-F", &img_s, "16M"]);
    let data: Vec<u8> = (0..700_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 9) as u8)
        .collect();
    let rand = t.write("rand", &data);
    t.mkdir("mnt");
    let script = format!(
        "cd {d}; ls -l /dev/fuse | cut -c1-10; \
         fuse2fs -f disk.img mnt -o fakeroot >fuse2fs.out 2>fuse2fs.err & pid=$!; \
         n=0; until [ -d mnt/lost+found ]; do n=$((n+1)); \
           [ $n -lt 200 ] || {{ echo never mounted; cat fuse2fs.err; exit 1; }}; sleep 0.05; done; \
         cp {rand} mnt/big && cmp {rand} mnt/big && echo same; \
         mkdir -p mnt/d/e && echo hello > mnt/d/e/f && cat mnt/d/e/f; \
         ln -s d/e/f mnt/link && readlink mnt/link; \
         ls mnt; stat -c '%s %F' mnt/big mnt/d/e/f; df mnt | tail -1 | awk '{{print $1}}' | xargs basename; \
         {vu} mnt; wait $pid; echo fuse2fs ended",
        d = q(t.path()),
        rand = q(&rand),
        vu = q(&view_command("viewumount")),
    );
    let out = Cmd::bash(&script)
        .umview_opts(["-p", "umfuse"])
        .run(Mode::View);
    out.assert_ok();
    assert_eq!(
        out.out(),
        "crw-rw-rw-\nsame\nhello\nd/e/f\nbig\nd\nlink\nlost+found\n\
         700000 regular file\n6 regular file\ndisk.img\nfuse2fs ended\n",
        "{}",
        out.dump()
    );
    let fsck = run(&["/usr/sbin/e2fsck", "-fn", &img_s]);
    assert!(
        fsck.status.success(),
        "e2fsck -fn: {}{}",
        String::from_utf8_lossy(&fsck.stdout),
        String::from_utf8_lossy(&fsck.stderr)
    );
    let f = run(&["/usr/sbin/debugfs", "-R", "cat /d/e/f", &img_s]);
    assert_eq!(String::from_utf8_lossy(&f.stdout), "hello\n");
    let big = run(&["/usr/sbin/debugfs", "-R", "cat /big", &img_s]);
    assert!(big.stdout == data, "big differs after umount");
}

/// Nesting through a FUSE program: fuse2fs serves an ext4 image that is
/// itself a file of a FAT image mounted with umfusefat. A read of the
/// ext4 mount waits on fuse2fs, whose reads of its image are calls on a
/// served file of the view: the host must answer them while the first
/// read waits.
#[test]
fn fuse2fs_serves_an_image_stored_in_another_virtual_mount() {
    let t = TempDir::new("fuse2fs-nested");
    let fat = t.path().join("fat.img");
    let fat_s = fat.to_string_lossy().into_owned();
    run_ok(&["/usr/sbin/mkfs.vfat", "-C", &fat_s, "40000"]);
    let ext = t.path().join("disk.img");
    let ext_s = ext.to_string_lossy().into_owned();
    run_ok(&["/usr/sbin/mkfs.ext4", "-q", "-F", &ext_s, "8M"]);
    let data: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_246_822_519) >> 11) as u8)
        .collect();
    let rand = t.write("rand", &data);
    t.mkdir("fat");
    t.mkdir("mnt");
    let script = format!(
        "cd {d}; {vm} -t umfusefat fat.img fat && cp disk.img fat/disk.img && \
         fuse2fs -f fat/disk.img mnt -o fakeroot >fuse2fs.out 2>fuse2fs.err & pid=$!; \
         n=0; until [ -d mnt/lost+found ]; do n=$((n+1)); \
           [ $n -lt 200 ] || {{ echo never mounted; cat fuse2fs.err; exit 1; }}; sleep 0.05; done; \
         cp {rand} mnt/r && cmp {rand} mnt/r && echo same; \
         echo nested > mnt/n && cat mnt/n; ls mnt; \
         {vu} mnt; wait $pid; echo fuse2fs ended; \
         /usr/sbin/e2fsck -fn fat/disk.img >fsck.out 2>&1 && echo clean inside; \
         cp fat/disk.img disk.after; {vu} fat",
        d = q(t.path()),
        rand = q(&rand),
        vm = q(&view_command("viewmount")),
        vu = q(&view_command("viewumount")),
    );
    let out = Cmd::bash(&script)
        .umview_opts(["-p", "umfuse"])
        .run(Mode::View);
    out.assert_ok();
    assert_eq!(
        out.out(),
        "same\nnested\nlost+found\nn\nr\nfuse2fs ended\nclean inside\n",
        "{}",
        out.dump()
    );
    // The FAT image holds the ext4 image with the files.
    let after = t.path().join("disk.after");
    let after_s = after.to_string_lossy().into_owned();
    let fsck = run(&["/usr/sbin/e2fsck", "-fn", &after_s]);
    assert!(fsck.status.success(), "e2fsck -fn: {fsck:?}");
    let r = run(&["/usr/sbin/debugfs", "-R", "cat /r", &after_s]);
    assert!(r.stdout == data, "r differs after umount");
    let fsck = run(&["/usr/sbin/fsck.fat", "-n", &fat_s]);
    assert!(fsck.status.success(), "fsck.fat -n: {fsck:?}");
}

/// `mount -t umfuseext2|umfuseext3|umfuseext4 image dir` as in the seed:
/// the view starts fuse2fs for the user. Real programs change the tree;
/// after umount (or at the view's end, without one) the image passes
/// `e2fsck -fn` outside and holds the files with the right bytes.
#[test]
fn umfuseext_mounts_run_fuse2fs_for_the_user() {
    let t = TempDir::new("umfuseext");
    let data: Vec<u8> = (0..500_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let rand = t.write("rand", &data);
    // A small tree to copy in with tar.
    t.mkdir("src/a/b");
    t.write("src/a/b/f", b"deep\n");
    t.write("src/top", b"top\n");
    let out = run(&[
        "tar",
        "-C",
        &t.path().join("src").to_string_lossy(),
        "-cf",
        &t.path().join("src.tar").to_string_lossy(),
        ".",
    ]);
    assert!(out.status.success(), "tar: {out:?}");
    t.mkdir("mnt");
    for (kind, mkfs) in [
        ("ext2", "/usr/sbin/mkfs.ext2"),
        ("ext3", "/usr/sbin/mkfs.ext3"),
        ("ext4", "/usr/sbin/mkfs.ext4"),
    ] {
        let img = t.path().join(format!("{kind}.img"));
        let img_s = img.to_string_lossy().into_owned();
        run_ok(&[mkfs, "-q", "-F", &img_s, "16M"]);
        // The first view unmounts; the second ends with the mount in place.
        let script = format!(
            "cd {d}; {vm} -t umfuse{kind} -o rw+ {kind}.img mnt || exit 1; \
             grep -c ' {mnt} umfuse{kind} ' /proc/self/mounts; \
             cp {rand} mnt/r && sha256sum < mnt/r | cut -c1-16; \
             mkdir mnt/t && tar -C mnt/t -xf src.tar && cat mnt/t/a/b/f; \
             mv mnt/t/top mnt/top2 && rm -r mnt/t/a && ls mnt mnt/t; \
             {vu} mnt && echo unmounted; \
             {vm} -t umfuse{kind} {kind}.img mnt && cat mnt/top2; \
             echo later > mnt/later",
            d = q(t.path()),
            rand = q(&rand),
            mnt = t.path().join("mnt").display(),
            vm = q(&view_command("viewmount")),
            vu = q(&view_command("viewumount")),
        );
        let out = Cmd::bash(&script)
            .umview_opts(["-p", "umfuse"])
            .run(Mode::View);
        out.assert_ok();
        let sum = run(&[
            "sh",
            "-c",
            &format!("sha256sum < {} | cut -c1-16", q(&rand)),
        ]);
        assert_eq!(
            out.out(),
            format!(
                "1\n{}deep\nmnt:\nlost+found\nr\nt\ntop2\n\nmnt/t:\nunmounted\ntop\n",
                String::from_utf8_lossy(&sum.stdout)
            ),
            "{kind}: {}",
            out.dump()
        );
        let fsck = run(&["/usr/sbin/e2fsck", "-fn", &img_s]);
        assert!(fsck.status.success(), "{kind}: e2fsck -fn: {fsck:?}");
        let r = run(&["/usr/sbin/debugfs", "-R", "cat /r", &img_s]);
        assert!(r.stdout == data, "{kind}: r differs");
        let later = run(&["/usr/sbin/debugfs", "-R", "cat /later", &img_s]);
        assert_eq!(String::from_utf8_lossy(&later.stdout), "later\n", "{kind}");
    }
}

/// A file that is no file system, and one that does not exist: the mount
/// fails (EINVAL, ENOENT) with fuse2fs's own words on stderr, and the view
/// goes on.
#[test]
fn umfuseext2_refuses_bad_images() {
    let t = TempDir::new("umfuseext-bad");
    t.write("junk.img", vec![0x5au8; 300_000]);
    t.mkdir("mnt");
    let script = format!(
        "cd {d}; {vm} -t umfuseext2 junk.img mnt; echo rc=$?; \
         {vm} -t umfuseext2 missing.img mnt; echo rc=$?; ls mnt | wc -l",
        d = q(t.path()),
        vm = q(&view_command("viewmount")),
    );
    let out = Cmd::bash(&script)
        .umview_opts(["-p", "umfuse"])
        .run(Mode::View);
    out.assert_ok();
    assert_eq!(out.out(), "rc=32\nrc=32\n0\n", "{}", out.dump());
    let err = out.err();
    assert!(err.contains("umfuseext2: "), "fuse2fs's words: {err}");
    assert!(err.contains("Invalid argument"), "{err}");
    assert!(err.contains("No such file or directory"), "{err}");
}
