//! Unmodified archive file systems in a view: `squashfuse` (libfuse 3)
//! serves a squashfs image made by `mksquashfs`, `fuse-zip` (libfuse 2) a
//! zip made by `zip -r -y`, both through the view's virtual `/dev/fuse`
//! (no kernel FUSE, no root). What the view shows is compared with the
//! tree the archive was made from, file by file (type, mode, owner, size,
//! links, mtime, symlink target, sha256). fuse-zip also runs read-write:
//! the same changes are made in the view and natively on a copy of the
//! tree, and the archive fuse-zip writes at umount must hold exactly the
//! copy's tree.

use std::path::{Path, PathBuf};

use viewos_tests::{
    python3, quote_path as q, require_tool, run_native, view_command, Cmd, Mode, Outcome, TempDir,
    TREE_SH,
};

/// Makes the source tree `src` in `t` with coreutils: nested and empty
/// directories, symlinks (to a file, to a directory, dangling, absolute),
/// unusual modes and names, fixed mtimes, a 1 MiB pseudo-random file and,
/// with `hardlink`, a second name of a file.
fn make_tree(t: &TempDir, hardlink: bool) -> PathBuf {
    let data: Vec<u8> = (0..1_048_576u32)
        .scan(0x2545_f491_4f6c_dd1du64, |s, _| {
            *s ^= *s << 13;
            *s ^= *s >> 7;
            *s ^= *s << 17;
            Some(*s as u8)
        })
        .collect();
    let src = t.mkdir("src");
    t.write("src/rand.bin", data);
    let long = "l".repeat(200);
    let script = format!(
        r#"set -e; cd {src}
        mkdir -p a/b/c empty private-dir
        printf 'hello\n' > a/hello.txt
        printf 'deep down\n' > a/b/c/deep.txt
        : > empty-file
        printf '#!/bin/sh\necho run\n' > exec.sh; chmod 755 exec.sh
        printf 'secret\n' > private; chmod 600 private
        chmod 700 private-dir; printf 'in private\n' > private-dir/f
        printf 'space\n' > 'with space'
        printf 'quotes\n' > "quote'and\"double"
        printf 'unicode\n' > 'unicode-é-日本'
        printf 'dash\n' > ./-leading-dash
        printf 'back\n' > 'back\slash'
        printf 'star\n' > 'star*and?question'
        printf 'dollar\n' > 'dollar$HOME'
        printf 'hidden\n' > .hidden
        printf 'long\n' > {long}
        ln -s a/hello.txt link-to-file
        ln -s a/b link-to-dir
        ln -s nowhere/at/all dangling
        ln -s /etc/hostname absolute
        {hard}
        touch -d @1600000000 a/hello.txt exec.sh 'with space'
        touch -h -d @1500000000 link-to-file
        touch -d @1400000000 a/b/c empty
        "#,
        src = q(&src),
        hard = if hardlink {
            "ln a/hello.txt a/hard-link"
        } else {
            ""
        },
    );
    let out = Cmd::bash(&script).run(Mode::Native);
    out.assert_ok();
    src
}

/// `describe DIR [how]`, run natively.
fn describe_native(dir: &Path, how: &str) -> String {
    let out = Cmd::bash(&format!("{TREE_SH}\ndescribe {} {how}", q(dir))).run(Mode::Native);
    out.assert_ok();
    let s = out.out();
    assert!(
        s.contains("./a|directory|"),
        "describe saw no tree:\n{}",
        out.dump()
    );
    s
}

/// `zip -r -y` of the tree `src` (symlinks stored as links), in `t`.
fn make_zip(t: &TempDir, src: &Path) -> PathBuf {
    let zip = require_tool("/usr/bin/zip", "zip");
    let archive = t.join("tree.zip");
    let out = Cmd::bash(&format!(
        "cd {src} && {zip} -q -r -y {archive} .",
        src = q(src),
        zip = q(&zip),
        archive = q(&archive)
    ))
    .run(Mode::Native);
    out.assert_ok();
    archive
}

#[track_caller]
fn run_ok(argv: &[&str]) -> std::process::Output {
    let out = run_native(argv);
    assert!(
        out.status.success(),
        "{}: {}\n{}{}",
        argv.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `script` in a view with umfuse (the FUSE program daemonizes or
/// not: the view ends when its last process does, so umview returning
/// means the program has exited).
fn in_view(script: &str) -> Outcome {
    Cmd::bash(&format!("{TREE_SH}{script}"))
        .umview_opts(["-p", "umfuse"])
        .run(Mode::View)
}

#[test]
fn squashfuse_serves_a_squashfs_image_in_a_view() {
    let mksquashfs = require_tool("/usr/bin/mksquashfs", "squashfs-tools");
    let squashfuse = require_tool("/usr/bin/squashfuse", "squashfuse");
    let t = TempDir::new("squashfuse");
    let src = make_tree(&t, true);
    let img = t.join("tree.sqfs");
    run_ok(&[
        &mksquashfs.to_string_lossy(),
        &src.to_string_lossy(),
        &img.to_string_lossy(),
        "-noappend",
        "-no-progress",
        "-quiet",
    ]);
    let native = describe_native(&src, "");
    t.mkdir("mnt");
    // squashfuse daemonizes once mounted, as a user runs it.
    let script = format!(
        "cd {d}\n\
         {sq} tree.sqfs mnt 2>sq.err || {{ echo squashfuse failed: $?; cat sq.err; exit 1; }}\n\
         wait_for mnt/rand.bin || exit 1\n\
         describe mnt\n\
         df mnt | tail -1 | awk '{{print $1}}'\n\
         {vu} mnt && echo unmounted; ls -A mnt | wc -l\n",
        d = q(t.path()),
        sq = q(&squashfuse),
        vu = q(&view_command("viewumount")),
    );
    let out = in_view(&script);
    out.assert_ok();
    assert_eq!(
        out.out(),
        format!("{native}squashfuse\nunmounted\n0\n"),
        "{}",
        out.dump()
    );
}

#[test]
fn fuse_zip_serves_a_zip_read_only_in_a_view() {
    let fuse_zip = require_tool("/usr/bin/fuse-zip", "fuse-zip");
    let t = TempDir::new("fuse-zip-ro");
    let src = make_tree(&t, false);
    let archive = make_zip(&t, &src);
    let before = std::fs::read(&archive).expect("the zip");
    let native = describe_native(&src, "");
    t.mkdir("mnt");
    let script = format!(
        "cd {d}\n\
         {fz} -r tree.zip mnt 2>fz.err || {{ echo fuse-zip failed: $?; cat fz.err; exit 1; }}\n\
         wait_for mnt/rand.bin || exit 1\n\
         describe mnt\n\
         echo x > mnt/new 2>/dev/null || echo read-only\n\
         {vu} mnt && echo unmounted; ls -A mnt | wc -l\n",
        d = q(t.path()),
        fz = q(&fuse_zip),
        vu = q(&view_command("viewumount")),
    );
    let out = in_view(&script);
    out.assert_ok();
    assert_eq!(
        out.out(),
        format!("{native}read-only\nunmounted\n0\n"),
        "{}",
        out.dump()
    );
    assert!(
        std::fs::read(&archive).expect("the zip") == before,
        "fuse-zip -r changed the archive"
    );
}

/// The changes the read-write test makes, natively in a copy of the tree
/// and in the view in the mount: new files and directories, an append, an
/// overwrite in place, a truncation, removals, renames, a mode change, a
/// new symlink. Prints a few results.
const CHANGES: &str = r#"
printf 'brand new\n' > new.txt
mkdir -p newdir/sub
seq 1 20000 > newdir/sub/numbers.txt
head -c 300000 rand.bin | tail -c 200000 > newdir/copy.bin
echo appended >> a/hello.txt
printf 'XYZ' | dd of=a/b/c/deep.txt bs=1 seek=2 conv=notrunc status=none
truncate -s 3 private
rm rand.bin 'with space'
rmdir empty
mv a/b/c/deep.txt a/moved.txt
mv private-dir renamed-dir
chmod 640 exec.sh
ln -s newdir/sub/numbers.txt newlink
cat a/hello.txt a/moved.txt private; echo
tail -1 newdir/sub/numbers.txt
ls -A | LC_ALL=C sort | tr '\n' ' '; echo
"#;

/// Lists a directory tree or a zip archive the same way: one line per
/// entry (name, type, permission bits, size, sha256 of the contents, or
/// the target of a symlink), sorted. Directories are entries of their own.
const LIST_TREE_OR_ZIP: &str = r#"
import hashlib, os, stat, sys, zipfile

def line(name, mode, data):
    kind = {stat.S_IFDIR: "dir", stat.S_IFREG: "file", stat.S_IFLNK: "link"}.get(
        stat.S_IFMT(mode), oct(stat.S_IFMT(mode)))
    if kind == "dir":
        return f"{name} dir {stat.S_IMODE(mode):o}"
    if kind == "link":
        return f"{name} link -> {data.decode('utf-8', 'surrogateescape')}"
    return f"{name} {kind} {stat.S_IMODE(mode):o} {len(data)} {hashlib.sha256(data).hexdigest()}"

out = []
path = sys.argv[1]
if os.path.isdir(path):
    for root, dirs, files in os.walk(path):
        for n in dirs + files:
            p = os.path.join(root, n)
            rel = os.path.relpath(p, path)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                data = os.readlink(p).encode('utf-8', 'surrogateescape')
            elif stat.S_ISREG(st.st_mode):
                data = open(p, 'rb').read()
            else:
                data = b""
            out.append(line(rel, st.st_mode, data))
else:
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            name = info.filename.rstrip("/")
            if not info.flag_bits & 0x800:
                # Not flagged UTF-8: zipfile decoded the raw bytes (UTF-8
                # on Linux) as cp437; get them back.
                name = name.encode("cp437").decode("utf-8", "surrogateescape")
            mode = info.external_attr >> 16
            if info.is_dir() and not stat.S_ISDIR(mode):
                mode = stat.S_IFDIR | stat.S_IMODE(mode)
            out.append(line(name, mode, b"" if info.is_dir() else z.read(info)))
for l in sorted(out):
    print(l)
"#;

fn list_tree_or_zip(t: &TempDir, path: &Path) -> String {
    let script = t.write("list.py", LIST_TREE_OR_ZIP);
    let out =
        Cmd::new([python3().as_os_str(), script.as_os_str(), path.as_os_str()]).run(Mode::Native);
    out.assert_ok();
    out.out()
}

#[test]
fn fuse_zip_writes_changes_made_in_a_view_to_the_archive() {
    let unzip = require_tool("/usr/bin/unzip", "unzip");
    let fuse_zip = require_tool("/usr/bin/fuse-zip", "fuse-zip");
    let t = TempDir::new("fuse-zip-rw");
    let src = make_tree(&t, false);
    let archive = make_zip(&t, &src);
    // The archive as made lists as the tree: the listing is a fair judge.
    assert_eq!(list_tree_or_zip(&t, &archive), list_tree_or_zip(&t, &src));

    // The reference: the same changes on a copy of the tree, natively.
    let copy = t.join("copy");
    run_ok(&["cp", "-a", &src.to_string_lossy(), &copy.to_string_lossy()]);
    let native = Cmd::bash(&format!("cd {} || exit 1\n{CHANGES}", q(&copy))).run(Mode::Native);
    native.assert_ok();
    let native_after = describe_native(&copy, "nomtime");
    // fuse-zip makes every new symlink root's, whoever asks (its
    // FileNode::createSymlink sets no owner; on kernel FUSE too), so the
    // new link is 0:0 in the mount where the native copy has ours.
    // SAFETY: getuid and getgid cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let ours = format!("./newlink|symbolic link|777|{uid}|{gid}|");
    assert!(native_after.contains(&ours), "{native_after}");
    let native_after = native_after.replace(&ours, "./newlink|symbolic link|777|0|0|");

    t.mkdir("mnt");
    // fuse-zip in the foreground: after umount, `wait` sees it exit, by
    // then it has written the archive.
    let script = format!(
        "cd {d}\n\
         {fz} -f tree.zip mnt 2>fz.err & pid=$!\n\
         wait_for mnt/rand.bin || {{ cat fz.err; exit 1; }}\n\
         (cd mnt && {CHANGES}) || exit 1\n\
         describe mnt nomtime\n\
         {vu} mnt && echo unmounted\n\
         wait $pid; st=$?; echo \"fuse-zip exit status $st\" >&2\n\
         [ $st -lt 128 ] && echo fuse-zip ended\n",
        d = q(t.path()),
        fz = q(&fuse_zip),
        vu = q(&view_command("viewumount")),
    );
    let out = in_view(&script);
    out.assert_ok();
    assert_eq!(
        out.out(),
        format!("{}{native_after}unmounted\nfuse-zip ended\n", native.out()),
        "{}",
        out.dump()
    );

    // What fuse-zip wrote: a sound archive holding the changed tree.
    let test = run_native(&[&unzip.to_string_lossy(), "-tq", &archive.to_string_lossy()]);
    assert!(
        test.status.success(),
        "unzip -t: {}{}",
        String::from_utf8_lossy(&test.stdout),
        String::from_utf8_lossy(&test.stderr)
    );
    assert_eq!(
        list_tree_or_zip(&t, &archive),
        list_tree_or_zip(&t, &copy),
        "the archive after umount differs from the natively changed copy"
    );
    let hello = run_native(&[
        &unzip.to_string_lossy(),
        "-p",
        &archive.to_string_lossy(),
        "a/hello.txt",
    ]);
    assert_eq!(String::from_utf8_lossy(&hello.stdout), "hello\nappended\n");
}
