//! One `fuser::Filesystem` (`examples/hello_fs.rs`), the same code served
//! three ways, compared with a native tree that holds what it should show:
//! - registered as the umfuse submodule `umfusehello` of a host of its own
//!   (`hello_fs COMMAND`, `viewmount -t umfusehello`);
//! - mounted by fuser's own mount code (`hello_fs --kernel MNT`: open
//!   `/dev/fuse`, mount(2)) inside `umview -p umfuse`, where the view's
//!   `/dev/fuse` answers: no kernel FUSE;
//! - the same `--kernel` on the host's kernel FUSE, when this machine
//!   lets the test use it (root, `/dev/fuse`): otherwise that test prints
//!   `SKIPPED (no kernel FUSE): reason` on stderr (uncaptured, counted by
//!   scripts/test.sh) and checks nothing else.

use std::path::{Path, PathBuf};

use viewos_tests::{
    quote_path as q, report_skipped, view_command, Cmd, Mode, Outcome, TempDir, TREE_SH,
};

/// The mtime of every node of the hello tree (2005-06-01 UTC).
const MTIME: &str = "1117584000";

/// Builds, natively with coreutils, the tree hello_fs serves: `ref` in
/// `t`, with the same names, bytes, modes, mtimes and symlink.
fn reference_tree(t: &TempDir) -> PathBuf {
    let r = t.mkdir("ref");
    let script = format!(
        r#"set -e; cd {r}
        printf 'Hello from a fuser file system, served in a view or by the kernel.\n' > hello.txt
        ln -s hello.txt hello
        : > empty
        seq 1 30000 > numbers.txt
        mkdir greetings
        printf 'Hello, world!\n' > greetings/english
        printf 'Ciao, mondo!\n' > greetings/italiano
        printf 'Bonjour, le monde !\n' > greetings/français
        printf 'こんにちは、世界！\n' > greetings/日本語
        chmod 444 hello.txt empty numbers.txt greetings/*
        touch -d @{MTIME} greetings/* hello.txt empty numbers.txt
        touch -h -d @{MTIME} hello
        chmod 555 greetings; touch -d @{MTIME} greetings
        "#,
        r = q(&r),
    );
    Cmd::bash(&script).run(Mode::Native).assert_ok();
    r
}

/// What is checked in a mount, run with the mount point as the cwd:
/// reads through a symlink and at offsets, the read-only answers, access
/// checks, statfs and the order of a listing.
const BEHAVIOUR: &str = r#"
export LC_ALL=C
cat hello
dd if=numbers.txt bs=1 skip=150002 count=20 status=none | tr '\n' ' '; echo
tail -c 12 numbers.txt | tr '\n' ' '; echo
sh -c ': > new' 2>&1
mkdir dir 2>&1
rm -f hello.txt 2>&1
if [ -w hello.txt ]; then echo writable; else echo not writable; fi
if [ -r greetings/english ]; then echo readable; else echo not readable; fi
stat -f -c 'bsize %S blocks %b free %f files %c' .
ls -f greetings | sort | tr '\n' ' '; echo
"#;

/// What [`BEHAVIOUR`] prints on every mount of hello_fs.
const BEHAVIOUR_OUT: &str = "\
Hello from a fuser file system, served in a view or by the kernel.\n\
852 26853 26854 2685\n\
29999 30000 \n\
sh: 1: cannot create new: Read-only file system\n\
mkdir: cannot create directory 'dir': Read-only file system\n\
rm: cannot remove 'hello.txt': Read-only file system\n\
not writable\n\
readable\n\
bsize 4096 blocks 42 free 0 files 10\n\
. .. english français italiano 日本語 \n";

fn hello_fs() -> PathBuf {
    view_command("hello_fs")
}

/// The script that inspects the mount `mnt` (then back to the cwd).
fn inspect(mnt: &str) -> String {
    format!("describe {mnt}\n(cd {mnt} && {BEHAVIOUR}) || exit 1\n")
}

/// `describe` of the reference tree followed by [`BEHAVIOUR_OUT`].
fn expected(t: &TempDir) -> String {
    let r = reference_tree(t);
    let out = Cmd::bash(&format!("{TREE_SH}\ndescribe {}", q(&r))).run(Mode::Native);
    out.assert_ok();
    assert!(
        out.out().contains("./greetings|directory|555|"),
        "{}",
        out.dump()
    );
    format!("{}{BEHAVIOUR_OUT}", out.out())
}

#[track_caller]
fn assert_output(out: &Outcome, expected: &str, tail: &str) {
    out.assert_ok();
    assert_eq!(out.out(), format!("{expected}{tail}"), "{}", out.dump());
}

/// `hello_fs bash -c SCRIPT`: the file system registered as umfusehello.
fn run_registered(t: &TempDir) -> Outcome {
    t.mkdir("mnt");
    let script = format!(
        "{TREE_SH}cd {d}\n\
         {vm} -r -t umfusehello none mnt || exit 1\n\
         {inspect}\
         {vu} mnt && echo unmounted; ls -A mnt | wc -l\n",
        d = q(t.path()),
        vm = q(&view_command("viewmount")),
        vu = q(&view_command("viewumount")),
        inspect = inspect("mnt"),
    );
    Cmd::new([
        hello_fs().as_os_str(),
        "bash".as_ref(),
        "-c".as_ref(),
        script.as_ref(),
    ])
    .run(Mode::Native)
}

#[test]
fn hello_fs_registered_as_umfusehello_in_a_view() {
    let t = TempDir::new("hello-registered");
    let expected = expected(&t);
    let out = run_registered(&t);
    assert_output(&out, &expected, "unmounted\n0\n");
}

#[test]
fn hello_fs_mounted_by_fuser_through_the_views_dev_fuse() {
    let t = TempDir::new("hello-devfuse");
    let expected = expected(&t);
    t.mkdir("mnt");
    let script = format!(
        "cd {d}\n\
         {hf} --kernel mnt 2>hello.err & pid=$!\n\
         wait_for mnt/hello.txt || {{ cat hello.err; exit 1; }}\n\
         {inspect}\
         df mnt | tail -1 | awk '{{print $1}}'\n\
         {vu} mnt && echo unmounted\n\
         wait $pid; echo \"hello_fs exited $?\"; cat hello.err\n",
        d = q(t.path()),
        hf = q(&hello_fs()),
        vu = q(&view_command("viewumount")),
        inspect = inspect("mnt"),
    );
    let out = Cmd::bash(&format!("{TREE_SH}{script}"))
        .umview_opts(["-p", "umfuse"])
        .run(Mode::View);
    assert_output(&out, &expected, "hello\nunmounted\nhello_fs exited 0\n");
}

/// Why the host's kernel FUSE cannot be used by this test here, if so.
fn kernel_fuse_unusable() -> Option<String> {
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        return Some(format!(
            "not root (euid {euid}): fuser's mount(2) needs root, and no fusermount3 is used"
        ));
    }
    match std::fs::read_to_string("/proc/filesystems") {
        Ok(s)
            if s.lines()
                .any(|l| l.split_whitespace().last() == Some("fuse")) => {}
        Ok(_) => return Some("the kernel lists no `fuse` in /proc/filesystems".into()),
        Err(e) => return Some(format!("/proc/filesystems: {e}")),
    }
    if let Err(e) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
    {
        return Some(format!("cannot open /dev/fuse: {e}"));
    }
    None
}

/// Detaches a kernel mount left behind by a failed test, before its
/// directory is removed.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        if let Ok(c) = std::ffi::CString::new(self.0.as_os_str().as_encoded_bytes()) {
            // SAFETY: a NUL-terminated path; failure (not mounted) is fine.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

fn is_mount_point(p: &Path) -> bool {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return false;
    };
    let target = p.to_string_lossy();
    mounts
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some(&*target))
}

#[test]
fn hello_fs_on_kernel_fuse_matches_the_view() {
    if let Some(reason) = kernel_fuse_unusable() {
        report_skipped("no kernel FUSE", &reason);
        return;
    }
    let t = TempDir::new("hello-kernel");
    let expected = expected(&t);
    let mnt = t.mkdir("kmnt");
    let _unmount = Unmount(mnt.clone());
    let script = format!(
        "{TREE_SH}cd {d}\n\
         {hf} --kernel kmnt 2>hello.err & pid=$!\n\
         wait_for kmnt/hello.txt || {{ cat hello.err; exit 1; }}\n\
         {inspect}\
         grep -c ' {mnt} fuse ' /proc/self/mounts\n\
         umount kmnt && echo unmounted\n\
         wait $pid; echo \"hello_fs exited $?\"; cat hello.err\n",
        d = q(t.path()),
        hf = q(&hello_fs()),
        mnt = mnt.display(),
        inspect = inspect("kmnt"),
    );
    let kernel = Cmd::bash(&script).run(Mode::Native);
    assert!(!is_mount_point(&mnt), "the kernel mount is still there");
    assert_output(&kernel, &expected, "1\nunmounted\nhello_fs exited 0\n");
    // The same file system served in a view: the same tree, the same
    // answers.
    let view = run_registered(&t);
    assert_output(&view, &expected, "unmounted\n0\n");
    let strip = |s: &str, tail: &str| s.strip_suffix(tail).map(str::to_owned);
    assert_eq!(
        strip(&kernel.out(), "1\nunmounted\nhello_fs exited 0\n"),
        strip(&view.out(), "unmounted\n0\n"),
        "kernel FUSE and the view differ"
    );
}
