//! Unmodified FUSE programs in a view: `fuse2fs` (libfuse 2) mounts an
//! ext4 image through the view's virtual `/dev/fuse` and a mount(2) the
//! view answers (no kernel FUSE, no root); coreutils write files through
//! it; after umount the image passes `e2fsck -fn` outside the view and
//! holds the files with the right bytes.

use viewos_tests::{quote_path as q, run_native as run, view_command, Cmd, Mode, TempDir};

#[test]
fn fuse2fs_serves_an_ext4_image_in_a_view() {
    let t = TempDir::new("fuse2fs");
    let img = t.path().join("disk.img");
    let img_s = img.to_string_lossy().into_owned();
    let out = run(&["/usr/sbin/mkfs.ext4", "-q", "-F", &img_s, "16M"]);
    assert!(out.status.success(), "mkfs.ext4: {out:?}");
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
