//! um-fuse mount modes end to end: mmap of files in FUSE mounts (reading,
//! and writing through a shared mapping that reaches the image), and
//! `human` permission checks against omnipotent mounts, compared with what
//! the kernel answers for the same files outside the view.

use viewos_tests::{
    python3, quote_path as q, run_native as run, run_native_ok as run_ok, view_command, Cmd, Mode,
    TempDir,
};

/// Maps a file of a FAT image read-only and shared read-write with
/// python3's mmap; the bytes written through the mapping are in the file
/// inside the view and, after umount, in the image (mtools reads them).
#[test]
fn mmap_of_files_in_a_fuse_mount_reads_and_writes() {
    let t = TempDir::new("fuse-mmap");
    let img = t.path().join("disk.img");
    let img_s = img.to_string_lossy().into_owned();
    run_ok(&["/usr/sbin/mkfs.vfat", "-C", &img_s, "4096"]);
    t.mkdir("mnt");
    t.write(
        "map.py",
        "import mmap, sys\n\
         p = sys.argv[1]\n\
         with open(p, 'wb') as f:\n\
         \x20   f.write(bytes(range(256)) * 64)\n\
         with open(p, 'rb') as f:\n\
         \x20   m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)\n\
         \x20   print(len(m), m[255], m[16383], m[1000:1004].hex())\n\
         \x20   m.close()\n\
         with open(p, 'r+b') as f:\n\
         \x20   m = mmap.mmap(f.fileno(), 0)\n\
         \x20   m[0:5] = b'HELLO'\n\
         \x20   m[8192:8197] = b'WORLD'\n\
         \x20   m.flush()\n\
         \x20   m.close()\n",
    );
    let script = format!(
        "cd {d}; {vm} -t umfusefat disk.img mnt || exit 1; {py} map.py mnt/m.bin; \
         head -c 5 mnt/m.bin; echo; dd if=mnt/m.bin bs=1 skip=8192 count=5 status=none; echo; \
         stat -c %s mnt/m.bin; {vu} mnt",
        d = q(t.path()),
        py = q(&python3()),
        vm = q(&view_command("viewmount")),
        vu = q(&view_command("viewumount")),
    );
    let out = Cmd::bash(&script)
        .umview_opts(["-p", "umfuse"])
        .run(Mode::View);
    out.assert_ok();
    assert_eq!(
        out.out(),
        "16384 255 255 e8e9eaeb\nHELLO\nWORLD\n16384\n",
        "{}",
        out.dump()
    );
    let back = run(&["mtype", "-i", &img_s, "::/M.BIN"]);
    assert!(back.status.success(), "mtype: {back:?}");
    let mut want: Vec<u8> = (0..64).flat_map(|_| 0u8..=255).collect();
    want[0..5].copy_from_slice(b"HELLO");
    want[8192..8197].copy_from_slice(b"WORLD");
    assert!(back.stdout == want, "the image holds other bytes");
    let fsck = run(&["/usr/sbin/fsck.fat", "-n", &img_s]);
    assert!(fsck.status.success(), "fsck.fat -n: {fsck:?}");
}

/// `human` mounts check permissions as the kernel does, for the view's
/// user (or `uid=`/`gid=`); omnipotent ones let the file system decide.
/// The same accesses are made outside the view on the directory served
/// (with `umfusereal`) and must agree for the user running the test.
#[test]
fn human_mounts_check_permissions_like_the_kernel() {
    let t = TempDir::new("fuse-human");
    t.mkdir("src/locked");
    t.mkdir("mnt");
    t.write("src/private", "secret\n");
    t.write("src/public", "shared\n");
    t.write("src/locked/inner", "inner\n");
    let chmod = |mode: &str, p: &str| {
        run_ok(&["chmod", mode, &t.path().join(p).to_string_lossy()]);
    };
    chmod("000", "src/private");
    chmod("444", "src/public");
    chmod("000", "src/locked");
    let probes = "for p in private public locked/inner; do \
                    if cat $D/$p >/dev/null 2>&1; then echo \"$p r\"; else echo \"$p -\"; fi; done; \
                  if echo x >> $D/public 2>/dev/null; then echo 'public w'; else echo 'public -w'; fi";
    // Outside the view, on the real directory: the kernel's answers (root
    // reads everything, another user nothing that is closed).
    let native = Cmd::bash(&format!("D={}; {probes}", q(&t.path().join("src")))).run(Mode::Native);
    native.assert_ok();
    let script = format!(
        "cd {d}; {vm} -t umfusereal -o human src mnt || exit 1; D=mnt; {probes}; {vu} mnt; \
         echo --; {vm} -t umfusereal src mnt || exit 1; D=mnt; {probes}; {vu} mnt; \
         echo --; {vm} -t umfusereal -o human,uid=4242,gid=4242 src mnt || exit 1; \
         D=mnt; {probes}; {vu} mnt",
        d = q(t.path()),
        vm = q(&view_command("viewmount")),
        vu = q(&view_command("viewumount")),
    );
    let out = Cmd::bash(&script)
        .umview_opts(["-p", "umfuse"])
        .run(Mode::View);
    out.assert_ok();
    let sections: Vec<&str> = out.out().leak().split("--\n").collect();
    assert_eq!(sections.len(), 3, "{}", out.dump());
    // human: what the kernel says for this user.
    assert_eq!(sections[0], native.out(), "human mode: {}", out.dump());
    // A stranger (uid 4242) may read only the world-readable file (root
    // would not be a stranger: uid= makes the checks for 4242).
    assert_eq!(
        sections[2],
        "private -\npublic r\nlocked/inner -\npublic -w\n",
        "human,uid=4242: {}",
        out.dump()
    );
    // Omnipotent: umfusereal serves the directory with the rights umview
    // has, so it answers like the kernel for this user too, but without
    // the view checking first.
    assert_eq!(sections[1], native.out(), "omnipotent: {}", out.dump());
    // Put the modes back so the directory can be removed.
    chmod("755", "src/locked");
    chmod("644", "src/private");
    chmod("644", "src/public");
}
