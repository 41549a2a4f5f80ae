//! umfuse image submodules end to end: `umfusefat` (read-write) and
//! `umfuseiso9660` (read-only) mounted in a view by an unprivileged user,
//! files written with coreutils, and the image checked outside the view
//! with the real tools (`fsck.fat -n`, mtools), or compared with the tree
//! it was made from.

use std::process::Command;

use viewos_tests::{
    quote_path as q, run_native as run, run_native_ok as run_ok, view_command, Cmd, Mode, TempDir,
};

fn random_file(t: &TempDir, name: &str, len: u32) -> std::path::PathBuf {
    let data: Vec<u8> = (0..len)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    t.write(name, data)
}

#[test]
fn fat_images_written_in_a_view_pass_fsck_and_hold_the_files() {
    for (fat, size) in [("12", "2048"), ("16", "20480"), ("32", "70000")] {
        let t = TempDir::new("umfusefat");
        let img = t.path().join("disk.img");
        let img_s = img.to_string_lossy().into_owned();
        run_ok(&["/usr/sbin/mkfs.vfat", "-F", fat, "-C", &img_s, size]);
        t.write("pre.txt", "put there by mcopy\n");
        let pre = t.path().join("pre.txt");
        run_ok(&["mcopy", "-i", &img_s, &pre.to_string_lossy(), "::/PRE.TXT"]);
        let rand = random_file(&t, "rand", 300_000);
        t.mkdir("mnt");
        // A relative SOURCE (the image in the cwd), as mount(8) accepts.
        let script = format!(
            "set -e; cd {d}; {vm} -t umfusefat disk.img mnt; \
             cat mnt/PRE.TXT; cp {rand} mnt/big.bin; cmp {rand} mnt/big.bin; \
             mkdir -p mnt/dir/sub; echo hello > 'mnt/dir/A Long File Name.text'; \
             echo gone > mnt/dir/tmp; rm mnt/dir/tmp; mv mnt/PRE.TXT mnt/dir/sub/moved.txt; \
             truncate -s 5 mnt/dir/sub/moved.txt; \
             ls mnt; ls mnt/dir; stat -c '%s %F' mnt/big.bin; stat -c %F mnt/dir; \
             {vu} mnt; ls mnt | wc -l",
            d = q(t.path()),
            vm = q(&view_command("viewmount")),
            vu = q(&view_command("viewumount")),
            rand = q(&rand),
        );
        let out = Cmd::bash(&script)
            .umview_opts(["-p", "umfuse"])
            .run(Mode::View);
        out.assert_ok();
        assert_eq!(
            out.out(),
            "put there by mcopy\nbig.bin\ndir\nA Long File Name.text\nsub\n\
             300000 regular file\ndirectory\n0\n",
            "FAT{fat}: {}",
            out.dump()
        );
        let fsck = run(&["/usr/sbin/fsck.fat", "-n", &img_s]);
        assert!(
            fsck.status.success(),
            "FAT{fat}: fsck.fat -n: {}{}",
            String::from_utf8_lossy(&fsck.stdout),
            String::from_utf8_lossy(&fsck.stderr)
        );
        let big = run(&["mtype", "-i", &img_s, "::/big.bin"]);
        assert!(
            big.stdout == std::fs::read(&rand).expect("rand"),
            "FAT{fat}: big.bin differs"
        );
        let long = run(&["mtype", "-i", &img_s, "::/dir/A Long File Name.text"]);
        assert_eq!(String::from_utf8_lossy(&long.stdout), "hello\n", "FAT{fat}");
        let moved = run(&["mtype", "-i", &img_s, "::/dir/sub/moved.txt"]);
        assert_eq!(String::from_utf8_lossy(&moved.stdout), "put t", "FAT{fat}");
        let gone = run(&["mtype", "-i", &img_s, "::/dir/tmp"]);
        assert!(
            !gone.status.success(),
            "FAT{fat}: a removed file is still there"
        );
    }
}

/// The view exits with the image still mounted: what was written is on
/// the image all the same (the mount is closed at the view's end).
#[test]
fn fat_writes_reach_the_image_when_the_view_ends_mounted() {
    let t = TempDir::new("umfusefat-exit");
    let img = t.path().join("disk.img");
    let img_s = img.to_string_lossy().into_owned();
    assert!(run(&["/usr/sbin/mkfs.vfat", "-C", &img_s, "4096"])
        .status
        .success());
    let rand = random_file(&t, "rand", 200_000);
    let spec = format!("umfuse,type=umfusefat,source={img_s},target=/fatmnt");
    let script = format!("cp {} /fatmnt/data.bin && echo copied", q(&rand));
    let out = Cmd::bash(&script)
        .umview_opts(["-p", &spec])
        .run(Mode::View);
    out.assert_ok();
    assert_eq!(out.out(), "copied\n", "{}", out.dump());
    let fsck = run(&["/usr/sbin/fsck.fat", "-n", &img_s]);
    assert!(
        fsck.status.success(),
        "fsck.fat -n: {}{}\n{}",
        String::from_utf8_lossy(&fsck.stdout),
        String::from_utf8_lossy(&fsck.stderr),
        out.dump()
    );
    let data = run(&["mtype", "-i", &img_s, "::/data.bin"]);
    assert!(
        data.stdout == std::fs::read(&rand).expect("rand"),
        "data.bin differs"
    );
}

#[test]
fn iso_images_show_the_tree_they_were_made_from() {
    let t = TempDir::new("umfuseiso");
    let tree = t.mkdir("tree");
    t.write("tree/readme.txt", "hello iso\n");
    t.write("tree/a/b/c/deep.txt", "deep\n");
    t.write("tree/Mixed Case Name.dat", "mixed\n");
    random_file(&t, "tree/big.bin", 3 << 20);
    std::os::unix::fs::symlink("readme.txt", tree.join("link")).expect("symlink");
    let img = t.path().join("cd.iso");
    let out = run(&[
        "xorriso",
        "-as",
        "mkisofs",
        "-quiet",
        "-R",
        "-J",
        "-o",
        &img.to_string_lossy(),
        &tree.to_string_lossy(),
    ]);
    assert!(out.status.success(), "xorriso: {out:?}");
    t.mkdir("mnt");
    // Directory sizes are the file system's own (2048 on a CD).
    let list = "find . -mindepth 1 \\( -type d -printf '%P d\\n' -o -printf '%P %y %s %l\\n' \\) \
                | LC_ALL=C sort";
    let script = format!(
        "cd {d}; {vm} -t umfuseiso9660 cd.iso mnt || exit 1; \
         diff -r tree mnt && echo same; (cd mnt && {list}); \
         touch mnt/new 2>&1 | sed 's/.*: //'; rm mnt/readme.txt 2>&1 | sed 's/.*: //'",
        d = q(t.path()),
        vm = q(&view_command("viewmount")),
    );
    let native = Command::new("bash")
        .arg("-c")
        .arg(format!("cd {} && {list}", q(&tree)))
        .output()
        .expect("find");
    for mode in Mode::VIEWS {
        let out = Cmd::bash(&script).umview_opts(["-p", "umfuse"]).run(mode);
        out.assert_ok();
        assert_eq!(
            out.out(),
            format!(
                "same\n{}Read-only file system\nRead-only file system\n",
                String::from_utf8_lossy(&native.stdout)
            ),
            "{}",
            out.dump()
        );
    }
}
