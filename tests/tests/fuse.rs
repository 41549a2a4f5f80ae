//! umfuse end to end: real programs (ls, cat, cp, cmp, mkdir, rm, mv, ln,
//! readlink, chmod, touch, stat, find, diff, python3) on `umfusereal`
//! mounts, where every call goes through the FUSE protocol to an
//! in-process `fuser` file system, compared with the same steps on a real
//! directory; read-only mounts, `umfusenull`, several mounts at once and
//! mounts made at load (`-p umfuse,...`).

use std::path::Path;

use viewos_tests::{
    python3, quote_path as q, shell_quote, view_command, Cmd, Mode, Outcome, TempDir,
};

fn viewmount() -> String {
    q(&view_command("viewmount"))
}

/// `bash -c script` under `umview -p SPEC` in `mode`.
fn in_view(spec: &str, script: &str, mode: Mode) -> Outcome {
    Cmd::bash(script).umview_opts(["-p", spec]).run(mode)
}

/// A small tree with files, directories and links.
fn populate(root: &Path) {
    let w = |rel: &str, data: &str| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, data).expect("write");
    };
    for i in 1..=5 {
        w(&format!("file{i}"), &format!("content {i}\n"));
    }
    w("dir1/a", "a\n");
    w("dir1/sub/b", "b\n");
    w("dir2/x", "x\n");
    std::os::unix::fs::symlink("file1", root.join("link1")).expect("symlink");
}

/// Changes everything in the current directory; `$RAND` is a 1 MiB file
/// of random bytes elsewhere.
const CHANGE: &str = r#"
set -e
cat file1 file2
cp "$RAND" big && cmp "$RAND" big
echo changed > file1
echo more >> file2
mkdir -p new/deeper/still
echo n > new/deeper/still/n
rm -r dir1
mv file3 moved3
mv dir2 dir2-moved
ln -s file4 sym4
readlink sym4 link1
ln file5 hard5
chmod 600 file4
touch -d '2001-02-03 04:05:06' file5
truncate -s 2 moved3
rm file2
"#;

/// What the tree looks like from inside (no times but the one set).
const DESCRIBE: &str = r#"
ls -la --time-style=+ . | sed 1d | grep -v ' \.\.$'
stat -c '%n %s %a %F %h' * | LC_ALL=C sort
stat -c '%n %Y' file5
find . -mindepth 1 -printf '%P %y %m %l\n' | LC_ALL=C sort
find . -type f -print0 | LC_ALL=C sort -z | xargs -0 md5sum
"#;

fn random_file(t: &TempDir) -> std::path::PathBuf {
    let data: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    t.write("rand", data)
}

#[test]
fn coreutils_on_a_real_mount_match_the_real_directory() {
    let t = TempDir::new("fuse-coreutils");
    let rand = random_file(&t);
    let scratch = t.join("scratch");
    populate(&scratch);
    let script = format!("{CHANGE}{DESCRIBE}");
    let native = Cmd::bash(&script)
        .cwd(&scratch)
        .env("RAND", &rand)
        .run(Mode::Native);
    native.assert_ok();
    for mode in Mode::VIEWS {
        let (src, mnt) = (t.join(format!("src-{}", mode.tag())), t.join("mnt"));
        populate(&src);
        std::fs::create_dir_all(&mnt).expect("mkdir");
        let view_script = format!(
            "{vm} -t umfusereal {s} {m} && cd {m} && {{ {script} }}",
            vm = viewmount(),
            s = q(&src),
            m = q(&mnt)
        );
        let out = Cmd::bash(&view_script)
            .umview_opts(["-p", "umfuse"])
            .env("RAND", &rand)
            .run(mode);
        out.assert_ok();
        assert_eq!(out.out(), native.out(), "{}", out.dump());
        // The real SOURCE holds the changes; diff -r finds no difference.
        let diff = Cmd::bash(&format!("diff -r {} {}", q(&scratch), q(&src))).run(Mode::Native);
        diff.assert_ok();
        // And diff -r inside the view compares the mount with SOURCE.
        let inside = in_view(
            "umfuse",
            &format!(
                "{vm} -t umfusereal {s} {m} && diff -r {m} {s} && find {m} | wc -l",
                vm = viewmount(),
                s = q(&src),
                m = q(&mnt)
            ),
            mode,
        );
        inside.assert_ok();
        assert_ne!(inside.out().trim(), "0", "{}", inside.dump());
    }
}

/// A python script exercising walks, seeks and truncation in its argument
/// directory; prints one line per fact.
const PYTHON: &str = r#"
import os, sys
d = sys.argv[1]
os.chdir(d)
def p(*a): print(*a, flush=True)
for root, dirs, files in sorted(os.walk(".")):
    p("walk", root, sorted(dirs), sorted(files))
with open("seek", "w+b") as f:
    f.write(b"0123456789" * 100)
    f.seek(500); p("seek", f.read(5))
    f.seek(-3, 2); p("end", f.read())
    f.truncate(12); f.seek(0); p("truncated", f.read())
with open("sparse", "wb") as f:
    f.seek(10 << 20); f.write(b"x")
p("sparse", os.stat("sparse").st_size)
os.truncate("sparse", 5)
p("truncate", os.stat("sparse").st_size, open("sparse", "rb").read())
fd = os.open("ap", os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o640)
os.write(fd, b"1"); os.lseek(fd, 0, 0); os.write(fd, b"2"); os.close(fd)
p("append", open("ap").read(), oct(os.stat("ap").st_mode & 0o777))
try:
    os.open("ap", os.O_CREAT | os.O_EXCL | os.O_WRONLY); p("excl", "created")
except FileExistsError:
    p("excl", "EEXIST")
os.rename("ap", "ap2"); p("rename", os.path.exists("ap"), open("ap2").read())
try:
    os.rmdir("dir1"); p("rmdir", "removed")
except OSError as e:
    p("rmdir", e.errno)
p("listdir", sorted(os.listdir(".")))
try:
    os.setxattr("file1", "user.k", b"v")
    p("xattr", os.getxattr("file1", "user.k"), "user.k" in os.listxattr("file1"))
    os.removexattr("file1", "user.k"); p("xattr-removed", os.listxattr("file1"))
except OSError as e:
    p("xattr", e.errno)
"#;

#[test]
fn python_walks_seeks_and_truncates_as_natively() {
    let t = TempDir::new("fuse-python");
    let (scratch, src, mnt) = (t.join("scratch"), t.join("src"), t.join("mnt"));
    populate(&scratch);
    populate(&src);
    std::fs::create_dir_all(&mnt).expect("mkdir");
    let py = python3();
    let native = Cmd::new([
        py.as_os_str(),
        "-c".as_ref(),
        PYTHON.as_ref(),
        scratch.as_os_str(),
    ])
    .run(Mode::Native);
    let script = format!(
        "{vm} -t umfusereal {s} {m} && {py} -c {code} {m}",
        vm = viewmount(),
        s = q(&src),
        m = q(&mnt),
        py = q(&py),
        code = shell_quote(PYTHON)
    );
    let view = in_view("umfuse", &script, Mode::View);
    assert_eq!(view.status, native.status, "{}", view.dump());
    assert_eq!(view.out(), native.out(), "{}", view.dump());
}

#[test]
fn read_only_mounts_refuse_changes() {
    let t = TempDir::new("fuse-ro");
    let (src, mnt) = (t.join("src"), t.join("mnt"));
    populate(&src);
    std::fs::create_dir_all(&mnt).expect("mkdir");
    let script = format!(
        "{vm} -t umfusereal -o ro {s} {m} && cat {m}/file1 && \
         {{ echo x > {m}/new; mkdir {m}/d; rm {m}/file2; touch {m}/file3; true; }}",
        vm = viewmount(),
        s = q(&src),
        m = q(&mnt)
    );
    let out = in_view("umfuse", &script, Mode::View);
    out.assert_ok();
    assert_eq!(out.out(), "content 1\n");
    let err = out.err();
    assert_eq!(
        err.matches("Read-only file system").count(),
        4,
        "{}",
        out.dump()
    );
    assert!(!src.join("new").exists() && !src.join("d").exists());
    assert!(src.join("file2").exists());
}

#[test]
fn null_mounts_are_empty_and_refuse_creation() {
    let t = TempDir::new("fuse-null");
    let mnt = t.mkdir("mnt");
    t.write("mnt/hidden", "hidden");
    let script = format!(
        "{vm} -t umfusenull none {m} && ls -A {m} && echo listed && \
         {{ mkdir {m}/d || true; }} && stat -c '%F' {m}",
        vm = viewmount(),
        m = q(&mnt)
    );
    for mode in Mode::VIEWS {
        let out = in_view("umfuse", &script, mode);
        out.assert_ok();
        assert_eq!(out.out(), "listed\ndirectory\n", "{}", out.dump());
        assert!(
            out.err().contains("Read-only file system"),
            "{}",
            out.dump()
        );
    }
}

#[test]
fn two_mounts_at_once_and_mounts_at_load() {
    let t = TempDir::new("fuse-two");
    let (a, b) = (t.join("a"), t.join("b"));
    t.write("a/fa", "in a\n");
    t.write("b/fb", "in b\n");
    let (ma, mb) = (t.mkdir("ma"), t.mkdir("mb"));
    let script = format!(
        "{vm} -t umfusereal {a} {ma} && {vm} -t umfusereal {b} {mb} && \
         cat {ma}/fa {mb}/fb && cp {ma}/fa {mb}/copied && mv {mb}/fb {ma}/moved-across && \
         ls {ma} {mb}",
        vm = viewmount(),
        a = q(&a),
        b = q(&b),
        ma = q(&ma),
        mb = q(&mb)
    );
    let out = in_view("umfuse", &script, Mode::View);
    out.assert_ok();
    assert_eq!(
        out.out(),
        format!(
            "in a\nin b\n{}:\nfa\nmoved-across\n\n{}:\ncopied\n",
            ma.display(),
            mb.display()
        ),
        "{}",
        out.dump()
    );
    assert!(a.join("moved-across").exists() && b.join("copied").exists());
    // The same two mounts made by the module at load.
    let spec = format!(
        "umfuse,type=umfusereal,source={},target={};type=umfusereal,source={},target={},ro",
        a.display(),
        ma.display(),
        b.display(),
        mb.display()
    );
    let out = in_view(
        &spec,
        &format!(
            "cat {ma}/fa {mb}/copied; touch {mb}/x",
            ma = q(&ma),
            mb = q(&mb)
        ),
        Mode::View,
    );
    assert_eq!(out.out(), "in a\nin a\n", "{}", out.dump());
    assert!(
        out.err().contains("Read-only file system"),
        "{}",
        out.dump()
    );
}
