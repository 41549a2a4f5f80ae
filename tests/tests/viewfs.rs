//! viewfs end to end: real programs (ls, cat, cp, rm, mkdir, mv, ln,
//! bash, find, tar, sed, python3) in views reshaped by `-p viewfs,...` and
//! by `viewmount -t viewfs` inside the view, compared with the same steps
//! on the real file system.
//!
//! Every TARGET is a scratch tree; after a `cow` session the real TARGET is
//! compared byte for byte (contents, types, modes, sizes, mtimes and
//! ctimes) with what it was before.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use viewos_tests::{
    python3, quote_path as q, require_tool, view_command, Cmd, Mode, Outcome, TempDir,
};

/// `bash -c script` under `umview -p SPEC` in `mode`.
fn in_view(spec: &str, script: &str, mode: Mode) -> Outcome {
    Cmd::bash(script).umview_opts(["-p", spec]).run(mode)
}

fn viewmount() -> String {
    q(&view_command("viewmount"))
}

/// Everything below `dir` as text: one line per entry with its type,
/// mode, size, mtime, ctime and contents (or link target).
fn tree_state(dir: &Path) -> String {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            let m = std::fs::symlink_metadata(&p).expect("lstat");
            let body = if m.file_type().is_symlink() {
                format!("-> {}", std::fs::read_link(&p).expect("readlink").display())
            } else if m.is_file() {
                format!("{:x}", content_hash(&p, m.size()))
            } else {
                if m.is_dir() {
                    todo.push(p.clone());
                }
                String::new()
            };
            let rel = p.strip_prefix(dir).expect("below").display().to_string();
            let size = if m.is_dir() { 0 } else { m.size() };
            out.insert(
                rel,
                format!(
                    "{:o} {size} {}.{} {}.{} {body}",
                    m.mode(),
                    m.mtime(),
                    m.mtime_nsec(),
                    m.ctime(),
                    m.ctime_nsec()
                ),
            );
        }
    }
    out.into_iter().map(|(k, v)| format!("{k} {v}\n")).collect()
}

/// A hash of the file's contents; of a file above 64 MiB, of its first
/// and last MiB (its size, mtime and ctime, compared too, change with any
/// write).
fn content_hash(p: &Path, size: u64) -> u64 {
    use std::os::unix::fs::FileExt;
    const BIG: u64 = 64 << 20;
    if size <= BIG {
        return fnv(&std::fs::read(p).expect("read"));
    }
    let f = std::fs::File::open(p).expect("open");
    let mut ends = vec![0u8; 2 << 20];
    let (head, tail) = ends.split_at_mut(1 << 20);
    f.read_exact_at(head, 0).expect("read head");
    f.read_exact_at(tail, size - (1 << 20)).expect("read tail");
    fnv(&ends)
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf29ce484222325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

/// A tree with a bit of everything.
fn populate(root: &Path) {
    let w = |rel: &str, data: &str| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, data).expect("write");
    };
    for i in 1..=9 {
        w(&format!("file{i}"), &format!("content {i}\nabc\n"));
    }
    w("dir1/a", "a");
    w("dir1/sub/b", "b");
    w("dir2/x", "x");
    w("dir2/y/z", "z");
    w("dir3/keep", "keep");
    w("dir3/deeper/k2", "k2");
    w("dir4/inner/.hidden", "h");
    w("dir5/deep/er/old", "old");
    w("emptied", "not empty yet");
    std::fs::create_dir_all(root.join("dir4/empty")).expect("mkdir");
    std::os::unix::fs::symlink("file1", root.join("link1")).expect("symlink");
    std::os::unix::fs::symlink("/nowhere", root.join("dangling0")).expect("symlink");
}

/// A shell session that changes everything in the current directory.
const CHANGE_EVERYTHING: &str = r#"
set -e
echo changed > file1
echo more >> file2
truncate -s 3 file3
rm file4
rm -r dir1
mkdir -p newdir/sub && echo n > newdir/sub/n
mv file5 moved5
mv dir2 dir2-moved
ln file6 file6-hard
ln -s file6 file6-sym
ln -s /nonexistent dangling
chmod 600 file7
touch -d '2001-02-03 04:05:06' file8
cp -a dir3 dir3-copy
: > emptied
rmdir dir4/empty
mkdir dir4/empty2
rm -r dir4/inner
echo x > dir5/deep/er/file
tar cf - dir3 | tar xf - -C newdir
sed -i 's/abc/xyz/' file9
rm dangling0
mv link1 link1-renamed
"#;

/// What the tree looks like from inside: names, types, modes, link
/// counts of files, link targets and contents.
const DESCRIBE: &str = r#"
find . -mindepth 1 -printf '%P %y %m %l\n' | LC_ALL=C sort
find . -type f -printf '%P %n %s\n' | LC_ALL=C sort
find . -type f -print0 | LC_ALL=C sort -z | xargs -0 md5sum
stat -c '%n %Y' file8
"#;

#[test]
fn cow_session_changes_the_view_and_never_the_target() {
    let t = TempDir::new("viewfs-cow");
    let (target, layer, scratch) = (t.join("target"), t.join("layer"), t.join("scratch"));
    populate(&target);
    populate(&scratch);
    std::fs::create_dir(&layer).expect("mkdir");
    let before = tree_state(&target);
    let native = Cmd::bash(&format!("{CHANGE_EVERYTHING}{DESCRIBE}"))
        .cwd(&scratch)
        .run(Mode::Native);
    native.assert_ok();
    let spec = format!(
        "viewfs,cow,source={},target={}",
        layer.display(),
        target.display()
    );
    let script = format!(
        "cd {} && {{ {CHANGE_EVERYTHING} }} && {{ {DESCRIBE} }}",
        q(&target)
    );
    let view = in_view(&spec, &script, Mode::View);
    view.assert_ok();
    assert_eq!(view.out(), native.out(), "{}", view.dump());
    assert_eq!(tree_state(&target), before, "the real TARGET changed");
    // Mounted again (by a new view, with viewmount): the same changed tree.
    let again = format!(
        "{vm} -t viewfs -o cow {l} {d} && cd {d} && {{ {DESCRIBE} }}",
        vm = viewmount(),
        l = q(&layer),
        d = q(&target)
    );
    for mode in Mode::VIEWS {
        let out = in_view("viewfs", &again, mode);
        out.assert_ok();
        assert_eq!(out.out(), native.out(), "{}", out.dump());
    }
    assert_eq!(tree_state(&target), before);
    // The layer holds the changes and the whiteouts, nothing else.
    assert!(layer.join(".wh.file4").is_file());
    assert!(layer.join(".wh.dir1").is_file());
    assert!(layer.join("dir4/.wh.empty").is_file());
    assert_eq!(
        std::fs::read_to_string(layer.join("file1")).ok().as_deref(),
        Some("changed\n")
    );
    assert!(!layer.join("file2-unchanged").exists());
    assert!(
        !layer.join("dir3/keep").exists(),
        "read files are not copied"
    );
}

/// A python script exercising POSIX file semantics in its argument
/// directory; prints one line per fact.
const POSIX: &str = r#"
import ctypes, os, sys
d = sys.argv[1]
os.chdir(d)
def p(*a): print(*a, flush=True)
with open("r-new", "w") as f: f.write("new")
os.rename("r-new", "r-old")
p("rename-replace", open("r-old").read(), os.path.exists("r-new"))
os.rename("r-old", "r-back")
p("rename-lower", os.path.exists("r-old"), open("r-back").read())
os.link("h-a", "h-b")
sa, sb = os.stat("h-a"), os.stat("h-b")
p("link", sa.st_ino == sb.st_ino, sa.st_nlink, sb.st_nlink)
with open("h-b", "a") as f: f.write("+")
p("link-shared", open("h-a").read())
os.unlink("h-a")
p("link-after-unlink", os.stat("h-b").st_nlink)
os.symlink("s-target", "s-rel")
os.symlink(os.path.join(d, "s-target"), "s-abs")
os.symlink("missing", "s-dangling")
p("symlink", open("s-rel").read(), open("s-abs").read(), os.path.lexists("s-dangling"),
  os.path.exists("s-dangling"), os.readlink("s-rel"))
fd = os.open("ap", os.O_WRONLY | os.O_APPEND)
os.write(fd, b"1"); os.lseek(fd, 0, 0); os.write(fd, b"2"); os.close(fd)
p("append", open("ap").read())
try:
    os.open("ap", os.O_CREAT | os.O_EXCL | os.O_WRONLY); p("excl", "created")
except FileExistsError:
    p("excl", "EEXIST")
os.close(os.open("ex-new", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o640))
p("excl-new", oct(os.stat("ex-new").st_mode & 0o777))
os.close(os.open("tr", os.O_WRONLY | os.O_TRUNC))
p("trunc", os.stat("tr").st_size)
with open("sp", "wb") as f:
    f.seek(100 << 20); f.write(b"x")
st = os.stat("sp")
p("sparse", st.st_size, st.st_blocks * 512 < (1 << 20))
with open("big", "ab") as f: f.write(b"z")
with open("big", "rb") as f:
    f.seek((5 << 30) - 2); p("large", os.stat("big").st_size, f.read())
f = open("uo")
os.unlink("uo")
p("unlink-open", f.read(), os.path.exists("uo"))
p("dir-ino", os.stat("dd").st_ino == os.fstat(os.open("dd", os.O_RDONLY)).st_ino)
libc = ctypes.CDLL(None, use_errno=True)
libc.opendir.restype = ctypes.c_void_p
libc.opendir.argtypes = [ctypes.c_char_p]
libc.readdir.restype = ctypes.c_void_p
libc.readdir.argtypes = [ctypes.c_void_p]
libc.telldir.restype = ctypes.c_long
libc.telldir.argtypes = [ctypes.c_void_p]
libc.seekdir.argtypes = [ctypes.c_void_p, ctypes.c_long]
name = lambda e: ctypes.string_at(e + 19).decode()
dp = libc.opendir(b"dd")
first = [name(libc.readdir(dp)) for _ in range(3)]
pos = libc.telldir(dp)
nxt = name(libc.readdir(dp))
for i in range(200):
    open("dd/new%d" % i, "w").close()
libc.seekdir(dp, pos)
again = name(libc.readdir(dp))
seen = first + [again]
while True:
    e = libc.readdir(dp)
    if not e: break
    seen.append(name(e))
orig = [".", ".."] + ["e%d" % i for i in range(10)]
p("dir-offsets", again == nxt, all(seen.count(n) == 1 for n in orig), len(set(seen)) == len(seen))
os.mkdir("md"); os.rmdir("md")
p("mkdir-rmdir", os.path.exists("md"))
try:
    os.rmdir("dd"); p("rmdir-nonempty", "removed")
except OSError as e:
    p("rmdir-nonempty", e.errno == 39)
"#;

/// The files the POSIX script starts with, in `top` and `bottom` (the
/// same directory natively and in `cow`; split between layers in `merge`).
fn posix_files(top: &Path, bottom: &Path) {
    let w = |root: &Path, rel: &str, data: &str| {
        std::fs::create_dir_all(root.join(rel).parent().expect("parent")).expect("mkdir");
        std::fs::write(root.join(rel), data).expect("write");
    };
    w(bottom, "r-old", "old");
    w(top, "h-a", "h");
    w(bottom, "s-target", "S");
    w(bottom, "ap", "0");
    w(top, "tr", "truncate me");
    w(bottom, "uo", "open");
    for i in 0..10 {
        w(
            if i % 2 == 0 { top } else { bottom },
            &format!("dd/e{i}"),
            "e",
        );
    }
    let big = std::fs::File::create(bottom.join("big")).expect("create");
    big.set_len(5 << 30).expect("5 GiB sparse");
}

fn posix_in(mode_opts: &str, split: bool) {
    let t = TempDir::new(&format!("viewfs-posix-{mode_opts}"));
    let (scratch, target, source) = (t.join("scratch"), t.join("target"), t.join("source"));
    for d in [&scratch, &target, &source] {
        std::fs::create_dir(d).expect("mkdir");
    }
    posix_files(&scratch, &scratch);
    if split {
        posix_files(&source, &target);
    } else {
        posix_files(&target, &target);
    }
    let before = tree_state(&target);
    let py = python3();
    let native = Cmd::new([
        py.as_os_str(),
        "-c".as_ref(),
        POSIX.as_ref(),
        scratch.as_os_str(),
    ])
    .run(Mode::Native);
    native.assert_ok();
    assert!(
        native.out().contains("large 5368709121 b'\\x00\\x00z'"),
        "{}",
        native.dump()
    );
    let spec = format!(
        "viewfs,{mode_opts},source={},target={}",
        source.display(),
        target.display()
    );
    let view = Cmd::new([
        py.as_os_str(),
        "-c".as_ref(),
        POSIX.as_ref(),
        target.as_os_str(),
    ])
    .umview_opts(["-p", &spec])
    .timeout(std::time::Duration::from_secs(120))
    .run(Mode::View);
    view.assert_ok();
    assert_eq!(view.out(), native.out(), "{}", view.dump());
    if mode_opts == "cow" {
        assert_eq!(tree_state(&target), before, "the real TARGET changed");
    }
}

#[test]
fn posix_semantics_in_a_cow_view_match_a_real_directory() {
    posix_in("cow", false);
}

#[test]
fn posix_semantics_in_a_merge_view_match_a_real_directory() {
    posix_in("merge", true);
}

#[test]
fn move_shows_the_source_tree_at_the_target() {
    let t = TempDir::new("viewfs-move");
    let (src, dst) = (t.join("src"), t.join("dst"));
    populate(&src);
    t.write("dst/only-in-target", "hidden by the mount");
    let list = "find . -mindepth 1 -printf '%P %y %s %l\\n' | LC_ALL=C sort; tar cf - . | tar tf - | LC_ALL=C sort";
    let native = Cmd::bash(list).cwd(&src).run(Mode::Native);
    native.assert_ok();
    let spec = format!(
        "viewfs,move,source={},target={}",
        src.display(),
        dst.display()
    );
    for mode in Mode::VIEWS {
        let out = in_view(&spec, &format!("cd {} && {{ {list}; }}", q(&dst)), mode);
        out.assert_ok();
        assert_eq!(out.out(), native.out(), "{}", out.dump());
    }
    // Writes land in SOURCE; the real TARGET is untouched.
    let script = format!(
        "cat {d}/file1 && echo new > {d}/made && mkdir {d}/newdir && mv {d}/file2 {d}/newdir/file2 && ls {d}/newdir && cat {d}/only-in-target",
        d = q(&dst)
    );
    let out = in_view(&spec, &script, Mode::View);
    assert_eq!(out.out(), "content 1\nabc\nfile2\n", "{}", out.dump());
    assert!(
        out.err().contains("No such file or directory"),
        "{}",
        out.dump()
    );
    assert_eq!(
        std::fs::read_to_string(src.join("made")).ok().as_deref(),
        Some("new\n")
    );
    assert!(src.join("newdir/file2").is_file());
    assert!(!dst.join("made").exists());
}

#[test]
fn viewmount_and_viewumount_inside_the_view() {
    let t = TempDir::new("viewfs-viewmount");
    t.write("src/from-source", "s");
    t.write("dst/from-target", "t");
    let script = format!(
        "ls {d}; {vm} -t viewfs -o move {s} {d} && ls {d} && grep -c viewfs /proc/self/mounts; {vu} {d} && ls {d}",
        vm = viewmount(),
        vu = q(&view_command("viewumount")),
        s = q(&t.join("src")),
        d = q(&t.join("dst"))
    );
    let out = in_view("viewfs", &script, Mode::View);
    out.assert_ok();
    assert_eq!(
        out.out(),
        "from-target\nfrom-source\n1\nfrom-target\n",
        "{}",
        out.dump()
    );
}

#[test]
fn hide_makes_the_target_and_below_disappear() {
    let t = TempDir::new("viewfs-hide");
    t.write("tree/secret/file", "secret");
    t.write("tree/other", "other");
    let secret = t.join("tree/secret");
    let script = format!(
        "test -e {s} || echo gone; cat {s}/file; ls {s}; cd {s} || echo no-cd; cat {o}; mkdir {s}; echo x > {s}/new; true",
        s = q(&secret),
        o = q(&t.join("tree/other"))
    );
    let spec = format!("viewfs,hide,target={}", secret.display());
    for mode in Mode::VIEWS {
        let out = in_view(&spec, &script, mode);
        out.assert_ok();
        assert_eq!(out.out(), "gone\nno-cd\nother", "{}", out.dump());
        let err = out.err();
        assert_eq!(
            err.matches("No such file or directory").count(),
            4,
            "{}",
            out.dump()
        );
        assert!(err.contains("Permission denied"), "{}", out.dump());
    }
    assert_eq!(
        std::fs::read_to_string(secret.join("file")).ok().as_deref(),
        Some("secret")
    );
    assert!(!secret.join("new").exists());
}

#[test]
fn hide_removes_the_name_from_the_parent_listing() {
    let t = TempDir::new("viewfs-hide-ls");
    t.write("tree/secret/file", "secret");
    t.write("tree/other", "other");
    let spec = format!("viewfs,hide,target={}", t.join("tree/secret").display());
    let out = in_view(&spec, &format!("ls {}", q(&t.join("tree"))), Mode::View);
    out.assert_ok();
    assert_eq!(out.out(), "other\n", "{}", out.dump());
}

#[test]
fn merge_shows_the_union_without_duplicates() {
    let t = TempDir::new("viewfs-merge");
    t.write("src/both", "from source");
    t.write("src/only-src", "s");
    t.write("src/d/in-src", "1");
    t.write("dst/both", "from target");
    t.write("dst/only-dst", "t");
    t.write("dst/d/in-dst", "2");
    let d = t.join("dst");
    let script = format!(
        "cd {d} && ls -A && ls d && cat both && ls -A | sort | uniq -d | wc -l && find . | LC_ALL=C sort && echo n > d/new && rm only-dst && ls",
        d = q(&d)
    );
    let spec = format!(
        "viewfs,merge,source={},target={}",
        t.join("src").display(),
        d.display()
    );
    let out = in_view(&spec, &script, Mode::View);
    out.assert_ok();
    assert_eq!(
        out.out(),
        "both\nd\nonly-dst\nonly-src\nin-dst\nin-src\nfrom source0\n.\n./both\n./d\n./d/in-dst\n./d/in-src\n./only-dst\n./only-src\nboth\nd\nonly-src\n",
        "{}",
        out.dump()
    );
    assert!(t.join("src/d/new").is_file(), "new names go to SOURCE");
    assert!(!t.join("dst/only-dst").exists(), "merge writes through");
}

/// True if the tests run as root.
fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `argv` run by an unprivileged user: `nobody` (through setpriv, after
/// `owned` is given to it) when the tests run as root, the tests' own user
/// otherwise.
fn unprivileged(t: &TempDir, owned: &[PathBuf], argv: &[&str]) -> Cmd {
    std::fs::set_permissions(
        t.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let mut words: Vec<String> = Vec::new();
    if is_root() {
        for p in owned {
            std::os::unix::fs::chown(p, Some(65534), Some(65534)).expect("chown");
        }
        let setpriv = require_tool("setpriv", "util-linux");
        words.push(setpriv.display().to_string());
        words.extend(["--reuid=65534", "--regid=65534", "--clear-groups"].map(String::from));
    }
    words.push(viewos_tests::umview_bin().display().to_string());
    words.extend(argv.iter().map(|w| w.to_string()));
    Cmd::new(words).cwd("/")
}

#[test]
fn mincow_copies_only_what_the_user_could_not_write() {
    // /etc is root's: an unprivileged user can change nothing there in
    // place. The user's own tree is changed in place.
    let t = TempDir::new("viewfs-mincow");
    t.write("mine/g", "user's");
    t.write("mine/gone", "x");
    t.mkdir("layer-etc");
    t.mkdir("layer-mine");
    let mine = t.join("mine");
    let owned = [
        mine.clone(),
        t.join("mine/g"),
        t.join("mine/gone"),
        t.join("layer-etc"),
        t.join("layer-mine"),
    ];
    let passwd = std::fs::read_to_string("/etc/passwd").expect("/etc/passwd");
    let spec = format!(
        "viewfs,mincow,source={},target=/etc;mincow,source={},target={}",
        t.join("layer-etc").display(),
        t.join("layer-mine").display(),
        mine.display()
    );
    let script = format!(
        "echo 'viewfs:x:1:1::/:/bin/false' >> /etc/passwd && tail -n 1 /etc/passwd && \
         touch /etc/viewfs-new && rm /etc/hostname && ls /etc/viewfs-new && test ! -e /etc/hostname && \
         cd {m} && echo changed > g && touch new && rm gone && ls && cat g",
        m = q(&mine)
    );
    let out = unprivileged(&t, &owned, &["-p", &spec, "bash", "-c", &script]).run(Mode::Native);
    out.assert_ok();
    assert_eq!(
        out.out(),
        "viewfs:x:1:1::/:/bin/false\n/etc/viewfs-new\ng\nnew\nchanged\n",
        "{}",
        out.dump()
    );
    let read = |p: &Path| std::fs::read_to_string(p).ok();
    assert_eq!(
        read(Path::new("/etc/passwd")).as_deref(),
        Some(passwd.as_str())
    );
    assert!(!Path::new("/etc/viewfs-new").exists());
    let layer = t.join("layer-etc");
    assert!(read(&layer.join("passwd")).is_some_and(|p| p.ends_with("/bin/false\n")));
    assert!(layer.join("viewfs-new").is_file(), "made in the layer");
    assert!(layer.join(".wh.hostname").is_file(), "removed in the layer");
    assert_eq!(
        read(&mine.join("g")).as_deref(),
        Some("changed\n"),
        "written in place"
    );
    assert!(mine.join("new").is_file() && !mine.join("gone").exists());
    let untouched = std::fs::read_dir(t.join("layer-mine"))
        .expect("layer")
        .count();
    assert_eq!(untouched, 0, "nothing copied for what the user may write");
}

#[test]
fn permissions_are_redefined_for_stat_and_access() {
    let t = TempDir::new("viewfs-perm");
    t.write("src/f", "data");
    t.write("src/d/g", "g");
    let f = t.join("src/f");
    std::fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .expect("chmod");
    let d = t.join("view");
    std::fs::create_dir(&d).expect("mkdir");
    let spec = format!(
        "viewfs,move,mode=0444,uid=1234,gid=77,source={},target={}",
        t.join("src").display(),
        d.display()
    );
    let script = format!(
        "cd {d} && stat -c '%a %u %g' f d && stat -c '%a' - < f && test -x f || echo no-x; test -r f && echo r; test -w f && echo w; cat f; echo; echo x > f || echo denied",
        d = q(&d)
    );
    let shown = "444 1234 77\n555 1234 77\n444\nno-x\nr\n";
    if is_root() {
        // Root reads and writes whatever the bits say.
        let out = in_view(&spec, &script, Mode::View);
        out.assert_ok();
        assert_eq!(out.out(), format!("{shown}w\ndata\n"), "{}", out.dump());
        std::fs::write(&f, "data").expect("write");
    }
    // A user is checked against the redefined bits (the real file is
    // writable by anyone).
    let out = unprivileged(&t, &[], &["-p", &spec, "bash", "-c", &script]).run(Mode::Native);
    out.assert_ok();
    assert_eq!(
        out.out(),
        format!("{shown}data\ndenied\n"),
        "{}",
        out.dump()
    );
    assert!(out.err().contains("Permission denied"), "{}", out.dump());
    assert_eq!(std::fs::read_to_string(&f).ok().as_deref(), Some("data"));
}

#[test]
fn except_paths_show_the_real_tree() {
    let t = TempDir::new("viewfs-except");
    t.write("target/changed-in-layer", "orig");
    t.write("target/keep/real", "orig");
    t.mkdir("layer");
    let d = t.join("target");
    let script = format!(
        "cd {d} && echo new > changed-in-layer && echo new > keep/real && echo made > keep/made && ls -A . keep",
        d = q(&d)
    );
    let spec = format!(
        "viewfs,cow,except=keep,source={},target={}",
        t.join("layer").display(),
        d.display()
    );
    let out = in_view(&spec, &script, Mode::View);
    out.assert_ok();
    assert_eq!(
        out.out(),
        ".:\nchanged-in-layer\nkeep\n\nkeep:\nmade\nreal\n",
        "{}",
        out.dump()
    );
    let read = |p: &str| std::fs::read_to_string(t.join(p)).ok();
    assert_eq!(read("target/changed-in-layer").as_deref(), Some("orig"));
    assert_eq!(read("layer/changed-in-layer").as_deref(), Some("new\n"));
    assert_eq!(read("target/keep/real").as_deref(), Some("new\n"));
    assert_eq!(read("target/keep/made").as_deref(), Some("made\n"));
    // hide with exceptions: everything but them is gone.
    let spec = format!("viewfs,hide,except=keep,target={}", d.display());
    let out = in_view(
        &spec,
        &format!("ls -A {d} {d}/keep; cat {d}/changed-in-layer", d = q(&d)),
        Mode::View,
    );
    assert_eq!(
        out.out(),
        format!("{0}:\nkeep\n\n{0}/keep:\nmade\nreal\n", d.display()),
        "{}",
        out.dump()
    );
    assert!(out.err().contains("No such file or directory"));
}

#[test]
fn viewfs_mounts_stack_cow_over_move() {
    let t = TempDir::new("viewfs-stack");
    t.write("src/f", "from source");
    t.mkdir("layer");
    t.mkdir("dst");
    let (s, l, d) = (t.join("src"), t.join("layer"), t.join("dst"));
    // The cow mount's TARGET is the move mount: its I/O goes through it.
    let spec = format!(
        "viewfs,move,source={},target={};cow,source={},target={}",
        s.display(),
        d.display(),
        l.display(),
        d.display()
    );
    let script = format!(
        "cat {d}/f && echo changed > {d}/f && cat {d}/f && ls {d}",
        d = q(&d)
    );
    let out = in_view(&spec, &script, Mode::View);
    out.assert_ok();
    assert_eq!(out.out(), "from sourcechanged\nf\n", "{}", out.dump());
    assert_eq!(
        std::fs::read_to_string(s.join("f")).ok().as_deref(),
        Some("from source")
    );
    assert_eq!(
        std::fs::read_to_string(l.join("f")).ok().as_deref(),
        Some("changed\n")
    );
}

#[test]
fn bad_mounts_fail_with_the_errno_of_mount() {
    let t = TempDir::new("viewfs-bad");
    t.write("target/sub/f", "x");
    t.mkdir("layer");
    let d = t.join("target");
    let script = format!(
        "{vm} -t viewfs -o nosuchmode {l} {d}; echo $?; {vm} -t viewfs -o cow,uid=abc {l} {d}; echo $?; \
         {vm} -t viewfs -o cow {t}/missing {d}; echo $?; {vm} -t viewfs -o cow {d}/sub {d}; echo $?; \
         {vm} -t viewfs -o move {d} {d}/sub; echo $?; cat {d}/sub/f",
        vm = viewmount(),
        l = q(&t.join("layer")),
        d = q(&d),
        t = q(t.path())
    );
    let before = tree_state(t.path());
    let out = in_view("viewfs", &script, Mode::View);
    out.assert_ok();
    assert_eq!(out.out(), "32\n32\n32\n32\n32\nx", "{}", out.dump());
    let err = out.err();
    assert_eq!(err.matches("Invalid argument").count(), 2, "{}", out.dump());
    assert_eq!(
        err.matches("No such file or directory").count(),
        1,
        "{}",
        out.dump()
    );
    assert_eq!(
        err.matches("Too many levels of symbolic links").count(),
        2,
        "{}",
        out.dump()
    );
    assert_eq!(tree_state(t.path()), before, "nothing written");
    // At start: umview refuses a bad -p spec, and a missing SOURCE.
    let out = in_view("viewfs,bogus,target=/x", "true", Mode::View);
    assert_eq!(out.status.shell(), 2, "{}", out.dump());
    assert!(out.err().contains("viewfs"), "{}", out.dump());
    let spec = format!(
        "viewfs,cow,source={}/missing,target={}",
        t.path().display(),
        d.display()
    );
    let out = in_view(&spec, "true", Mode::View);
    assert_eq!(out.status.shell(), 2, "{}", out.dump());
}

#[test]
fn a_mount_on_the_root_reshapes_every_path() {
    let t = TempDir::new("viewfs-root");
    t.write("rootfs/etc/os-release", "a moved root\n");
    t.mkdir("rootfs/usr/bin");
    for d in ["proc", "dev", "tmp"] {
        t.mkdir(format!("rootfs/{d}"));
    }
    // Builtins only: running programs from the moved root needs the host
    // (see `programs_run_from_a_moved_root`).
    let script = format!(
        "{vm} -t viewfs -o move,except=/proc:/dev:/tmp {r} / && cd / && echo * && read x < /etc/os-release && echo $x && cd /usr && pwd && test -e /proc/self/status && echo proc",
        vm = viewmount(),
        r = q(&t.join("rootfs"))
    );
    let out = in_view("viewfs", &script, Mode::View);
    out.assert_ok();
    assert_eq!(
        out.out(),
        "dev etc proc tmp usr\na moved root\n/usr\nproc\n",
        "{}",
        out.dump()
    );
}

/// Programs run from a moved root load everything from it: the loader the
/// kernel would take from the real root (`PT_INTERP`), their libraries,
/// `#!` interpreters; `argv[0]` stays what the caller gave.
#[test]
fn programs_run_from_a_moved_root() {
    let t = TempDir::new("viewfs-chroot");
    let rootfs = t.join("rootfs");
    let out = Cmd::bash(&format!(
        "mkdir -p {r}/usr/bin {r}/proc {r}/dev {r}/tmp && ln -s usr/bin {r}/bin && cp /usr/bin/bash /usr/bin/cat {r}/usr/bin/ && \
         for l in $(ldd /usr/bin/bash /usr/bin/cat | grep -o '/[^ ]*'); do mkdir -p {r}$(dirname $l) && cp -L $l {r}$l; done",
        r = q(&rootfs)
    ))
    .run(Mode::Native);
    out.assert_ok();
    t.write("rootfs/etc/os-release", "moved");
    t.write(
        "rootfs/usr/bin/hello",
        "#!/bin/bash\necho \"script $0 $1\"\n",
    );
    std::fs::set_permissions(
        t.join("rootfs/usr/bin/hello"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let spec = format!(
        "viewfs,move,except=/proc:/dev:/tmp,source={},target=/",
        rootfs.display()
    );
    let script = "cat /etc/os-release; echo; cat /proc/self/maps > /tmp/maps; \
                  (exec -a renamed bash -c 'echo $0'); hello arg; cd /usr && bin/hello rel";
    let maps = t.join("maps");
    let script = script.replace("/tmp/maps", &maps.display().to_string());
    let out = Cmd::new(["/bin/bash", "-c", &script])
        .umview_opts(["-p", &spec])
        .timeout(std::time::Duration::from_secs(20))
        .run(Mode::View);
    out.assert_ok();
    assert_eq!(
        out.out(),
        "moved\nrenamed\nscript /usr/bin/hello arg\nscript bin/hello rel\n",
        "{}",
        out.dump()
    );
    // Every file cat mapped (program, loader, libraries) is the moved
    // root's.
    let maps = std::fs::read_to_string(&maps).expect("maps");
    let files: Vec<&str> = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .filter(|f| f.starts_with('/'))
        .collect();
    assert!(files.len() >= 3, "{maps}");
    let root = format!("{}/", rootfs.display());
    for f in files {
        assert!(
            f.starts_with(&root),
            "{f} is not from the moved root:\n{maps}"
        );
    }
}

/// Keeps the path helper used by every test honest.
#[test]
fn tree_state_sees_every_change() {
    let t = TempDir::new("viewfs-state");
    populate(t.path());
    let a = tree_state(t.path());
    std::fs::write(t.join("dir3/keep"), "kepT").expect("write");
    assert_ne!(tree_state(t.path()), a);
    let _: PathBuf = t.join("x");
}

#[test]
fn per_path_permission_rules_from_a_file() {
    let t = TempDir::new("viewfs-rules");
    t.write("src/pub/f", "p");
    t.write("src/secret/s", "s");
    t.write("src/secret/open/o", "o");
    let rules = t.write(
        "rules",
        // Searchable by others: the test also runs as a user who is not 42.
        "# per-path rules\n/secret mode=0711 uid=42\nsecret/open mode=0755\n",
    );
    let d = t.join("view");
    std::fs::create_dir(&d).expect("mkdir");
    let spec = format!(
        "viewfs,move,mode=0644,gid=9,rules={},source={},target={}",
        rules.display(),
        t.join("src").display(),
        d.display()
    );
    let script = format!(
        "cd {d} && stat -c '%n %a %u %g' pub pub/f secret secret/s secret/open/o",
        d = q(&d)
    );
    let out = in_view(&spec, &script, Mode::View);
    out.assert_ok();
    let uid = std::fs::metadata(t.join("src/pub/f")).expect("stat").uid();
    assert_eq!(
        out.out(),
        format!("pub 755 {uid} 9\npub/f 644 {uid} 9\nsecret 711 42 9\nsecret/s 711 42 9\nsecret/open/o 755 42 9\n"),
        "{}",
        out.dump()
    );
    // A rules file that does not parse: the mount fails with EINVAL.
    std::fs::write(&rules, "/x size=1\n").expect("write");
    let script = format!(
        "{vm} -t viewfs -o rules={r} {s} {d}",
        vm = viewmount(),
        r = q(&rules),
        s = q(&t.join("src")),
        d = q(&d)
    );
    let out = in_view("viewfs", &script, Mode::View);
    assert_eq!(out.status.shell(), 32, "{}", out.dump());
    assert!(out.err().contains("Invalid argument"), "{}", out.dump());
}

#[test]
fn a_mount_point_shows_in_its_parent_listing() {
    let t = TempDir::new("viewfs-mountpoint");
    t.write("src/f", "s");
    t.mkdir("parent/existing");
    let target = t.join("parent/virtual");
    let spec = format!(
        "viewfs,move,source={},target={}",
        t.join("src").display(),
        target.display()
    );
    let script = format!("ls {p}; cat {p}/virtual/f", p = q(&t.join("parent")));
    let out = in_view(&spec, &script, Mode::View);
    out.assert_ok();
    assert_eq!(out.out(), "existing\nvirtual\ns", "{}", out.dump());
    assert!(!target.exists());
}

/// `fchmod` on a read-only fd of one of TARGET's files (python's
/// `os.fchmod`, `chmod` through a descriptor).
const FCHMOD_RDONLY: &str = r#"
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.fchmod(fd, 0o600)
print(oct(os.fstat(fd).st_mode & 0o777), oct(os.stat(sys.argv[1]).st_mode & 0o777))
"#;

fn fchmod_through_a_read_only_fd(options: &str) -> (Outcome, TempDir) {
    let t = TempDir::new("viewfs-fchmod");
    let f = t.write("target/f", "data");
    std::fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .expect("chmod");
    t.mkdir("layer");
    let spec = format!(
        "viewfs,{options},source={},target={}",
        t.join("layer").display(),
        t.join("target").display()
    );
    let py = python3();
    let out = Cmd::new([
        py.as_os_str(),
        "-c".as_ref(),
        FCHMOD_RDONLY.as_ref(),
        f.as_os_str(),
    ])
    .umview_opts(["-p", &spec])
    .run(Mode::View);
    (out, t)
}

#[test]
fn cow_served_keeps_fd_changes_out_of_the_target() {
    let (out, t) = fchmod_through_a_read_only_fd("cow,served");
    out.assert_ok();
    assert_eq!(out.out(), "0o600 0o600\n", "{}", out.dump());
    let real = std::fs::metadata(t.join("target/f")).expect("stat").mode();
    assert_eq!(real & 0o777, 0o644, "TARGET changed");
    let copy = std::fs::metadata(t.join("layer/f"))
        .expect("copied up")
        .mode();
    assert_eq!(copy & 0o777, 0o600);
}

/// Metadata changes through a read-only fd of one of a cow mount's
/// unchanged files (a real fd of TARGET's file): fchmod, fchown, futimens,
/// fsetxattr, fremovexattr.
const FD_META: &str = r#"
import os, sys
p = sys.argv[1]
fd = os.open(p, os.O_RDONLY)
os.fchmod(fd, 0o600)
os.fchown(fd, os.getuid(), os.getgid())
os.utime(fd, ns=(1_000_000_000, 2_000_000_000))
os.setxattr(fd, "user.a", b"1")
os.setxattr(fd, "user.b", b"2")
os.removexattr(fd, "user.b")
st = os.stat(p)
print(oct(st.st_mode & 0o777), st.st_mtime_ns, os.listxattr(p), open(p).read())
"#;

#[test]
fn cow_keeps_fd_changes_out_of_the_target() {
    let t = TempDir::new("viewfs-fdmeta");
    let f = t.write("target/f", "data");
    std::fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .expect("chmod");
    t.mkdir("layer");
    let before = tree_state(&t.join("target"));
    let spec = format!(
        "viewfs,cow,source={},target={}",
        t.join("layer").display(),
        t.join("target").display()
    );
    let py = python3();
    let out = Cmd::new([
        py.as_os_str(),
        "-c".as_ref(),
        FD_META.as_ref(),
        f.as_os_str(),
    ])
    .umview_opts(["-p", &spec])
    .run(Mode::View);
    out.assert_ok();
    // The view sees the changes by name (the fd itself still shows the
    // file it was opened on, as overlayfs' read-only fds of lower files
    // do).
    assert_eq!(
        out.out(),
        "0o600 2000000000 ['user.a'] data\n",
        "{}",
        out.dump()
    );
    assert_eq!(tree_state(&t.join("target")), before, "TARGET changed");
    assert!(
        xattr_names(&f).is_empty(),
        "TARGET got xattrs: {:?}",
        xattr_names(&f)
    );
    let copy = t.join("layer/f");
    let meta = std::fs::metadata(&copy).expect("copied up");
    assert_eq!(meta.mode() & 0o777, 0o600);
    assert_eq!(meta.mtime(), 2);
    assert_eq!(xattr_names(&copy), vec!["user.a".to_string()]);
}

/// The extended attribute names of `p`, read outside any view.
fn xattr_names(p: &Path) -> Vec<String> {
    let out = Cmd::new([
        python3().as_os_str(),
        "-c".as_ref(),
        "import os, sys; print(' '.join(os.listxattr(sys.argv[1])))".as_ref(),
        p.as_os_str(),
    ])
    .run(Mode::Native);
    out.assert_ok();
    out.out().split_whitespace().map(str::to_string).collect()
}
