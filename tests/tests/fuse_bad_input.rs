//! Bad input to um-fuse: images that are truncated, garbage or of another
//! type are refused at mount (EINVAL) and left as they were; a FUSE
//! program killed while mounted turns every call on its mount into
//! ENOTCONN, as kernel FUSE does; the view goes on in every case.

use viewos_tests::{
    quote_path as q, run_native as run, run_native_ok as run_ok, view_command, Cmd, Mode, TempDir,
};

#[test]
fn bad_images_are_refused_and_left_unchanged() {
    let t = TempDir::new("fuse-bad-images");
    let fat = t.path().join("fat.img");
    let fat_s = fat.to_string_lossy().into_owned();
    run_ok(&["/usr/sbin/mkfs.vfat", "-C", &fat_s, "8192"]);
    let seq: String = (1..100_000).map(|i| format!("{i}\n")).collect();
    let seq_p = t.write("seq.txt", &seq);
    let out = run(&[
        "mcopy",
        "-i",
        &fat_s,
        &seq_p.to_string_lossy(),
        "::/SEQ.TXT",
    ]);
    assert!(out.status.success(), "mcopy: {out:?}");
    t.mkdir("tree/d");
    t.write("tree/d/f", "in the iso\n");
    // The data of this one is past the first third of the image.
    t.write("tree/z-big", vec![7u8; 2_000_000]);
    let iso = t.path().join("iso.img");
    let out = run(&[
        "genisoimage",
        "-quiet",
        "-R",
        "-o",
        &iso.to_string_lossy(),
        &t.path().join("tree").to_string_lossy(),
    ]);
    assert!(out.status.success(), "genisoimage: {out:?}");
    let fat_bytes = std::fs::read(&fat).unwrap();
    let iso_bytes = std::fs::read(&iso).unwrap();
    t.write("fat-cut.img", &fat_bytes[..600_000]);
    t.write("iso-cut.img", &iso_bytes[..iso_bytes.len() / 3]);
    t.write(
        "junk.img",
        (0..200_000u32)
            .map(|i| (i.wrapping_mul(2_246_822_519) >> 7) as u8)
            .collect::<Vec<u8>>(),
    );
    let cases = [
        ("umfusefat", "fat-cut.img"),
        ("umfusefat", "junk.img"),
        ("umfusefat", "iso.img"),
        ("umfuseiso9660", "junk.img"),
        ("umfuseiso9660", "fat.img"),
        ("umfuseext2", "junk.img"),
        ("umfuseext2", "fat.img"),
    ];
    let before: Vec<Vec<u8>> = cases
        .iter()
        .map(|(_, img)| std::fs::read(t.path().join(img)).unwrap())
        .collect();
    t.mkdir("mnt");
    let mut script = format!("cd {}; ", q(t.path()));
    for (kind, img) in cases {
        script.push_str(&format!(
            "{vm} -t {kind} {img} mnt 2>err; echo \"{kind} {img} $? $(grep -c 'Invalid argument' err)\"; ",
            vm = q(&view_command("viewmount")),
        ));
    }
    // Nothing got mounted, nothing was written below the mount point, and
    // the good images still mount.
    script.push_str(&format!(
        "ls -A mnt | wc -l; {vm} -t umfusefat fat.img mnt && md5sum < mnt/SEQ.TXT; {vu} mnt; \
         {vm} -t umfuseiso9660 iso.img mnt && cat mnt/d/f; {vu} mnt; \
         {vm} -t umfuseiso9660 iso-cut.img mnt && ls mnt/d; \
         cat mnt/z-big 2>&1 >/dev/null | sed 's/.*: //'; {vu} mnt",
        vm = q(&view_command("viewmount")),
        vu = q(&view_command("viewumount")),
    ));
    let out = Cmd::bash(&script)
        .umview_opts(["-p", "umfuse"])
        .run(Mode::View);
    out.assert_ok();
    let mut want: String = cases
        .iter()
        .map(|(kind, img)| format!("{kind} {img} 32 1\n"))
        .collect();
    let md5 = run(&["sh", "-c", &format!("md5sum < {}", q(&seq_p))]);
    want.push_str(&format!(
        "0\n{}in the iso\nf\nInput/output error\n",
        String::from_utf8_lossy(&md5.stdout)
    ));
    assert_eq!(out.out(), want, "{}", out.dump());
    for ((_, img), old) in cases.iter().zip(&before) {
        let now = std::fs::read(t.path().join(img)).unwrap();
        assert!(&now == old, "{img} changed");
    }
}

#[test]
fn a_killed_fuse_program_leaves_enotconn_and_the_view_running() {
    let t = TempDir::new("fuse-killed");
    let img = t.path().join("disk.img");
    let img_s = img.to_string_lossy().into_owned();
    run_ok(&["/usr/sbin/mkfs.ext4", "-q", "-F", &img_s, "16M"]);
    t.mkdir("mnt");
    t.mkdir("mnt2");
    let script = format!(
        "cd {d}; fuse2fs -f disk.img mnt -o fakeroot 2>/dev/null & pid=$!; \
         n=0; until [ -d mnt/lost+found ]; do n=$((n+1)); [ $n -lt 200 ] || exit 1; sleep 0.05; done; \
         echo hi > mnt/f; cat mnt/f; kill -9 $pid; wait $pid; \
         ls mnt 2>&1 | sed 's/.*: //'; cat mnt/f 2>&1 | sed 's/.*: //'; \
         {vu} mnt && echo unmounted; \
         {vm} -t umfuseext4 disk.img mnt2 && cat mnt2/f; \
         for p in $(pgrep -x fuse2fs); do tr '\\0' ' ' < /proc/$p/cmdline | grep -qF -- {img} && kill -9 $p; done; \
         sleep 0.2; cat mnt2/f 2>&1 | sed 's/.*: //'; {vu} mnt2; echo alive",
        d = q(t.path()),
        img = q(&img),
        vm = q(&view_command("viewmount")),
        vu = q(&view_command("viewumount")),
    );
    let out = Cmd::bash(&script)
        .umview_opts(["-p", "umfuse"])
        .run(Mode::View);
    out.assert_ok();
    assert_eq!(
        out.out(),
        "hi\nTransport endpoint is not connected\nTransport endpoint is not connected\n\
         unmounted\nhi\nTransport endpoint is not connected\nalive\n",
        "{}",
        out.dump()
    );
}
