//! A path service mounted in the view (`-p unreal`: the real tree again at
//! `/unreal`): path calls reach it however the path is spelled (absolute,
//! relative to the cwd, through `..`, through a symlink of the real file
//! system that points into the mount), and the host's memory of real paths
//! follows changes made while the view runs.
//!
//! `/unreal` does not exist on the real file system, so a command that
//! succeeds on a `/unreal/...` path proves that the view answered it.

use viewos_tests::{python3, quote_path as q, Cmd, Mode, TempDir};

fn in_view(script: &str) -> Cmd {
    Cmd::sh(script).umview_opts(["-p", "unreal"])
}

/// Runs `script` in both view modes and returns stdout (the same in both).
fn view_out(script: &str) -> String {
    let mut first: Option<String> = None;
    for mode in Mode::VIEWS {
        let out = in_view(script).run(mode);
        out.assert_ok();
        match &first {
            None => first = Some(out.out()),
            Some(f) => assert_eq!(f, &out.out(), "{}", out.dump()),
        }
    }
    first.unwrap_or_default()
}

#[test]
fn mount_point_exists_only_in_the_view() {
    let native = Cmd::sh("test -e /unreal && echo yes || echo no").run(Mode::Native);
    assert_eq!(native.out(), "no\n", "{}", native.dump());
    let out = view_out("test -d /unreal && echo yes; cd / && test -d unreal && echo rel");
    assert_eq!(out, "yes\nrel\n");
}

#[test]
fn stat_through_the_mount_matches_the_real_file() {
    let t = TempDir::new("pathsvc-stat");
    let f = t.write("data/file", "twelve bytes");
    let real = Cmd::sh(&format!("stat -c '%s %a %F' {}", q(&f))).run(Mode::Native);
    real.assert_ok();
    let script = format!("stat -c '%s %a %F' /unreal{f}", f = q(&f));
    assert_eq!(view_out(&script), real.out());
}

#[test]
fn relative_paths_and_dotdot_reach_the_mount() {
    let t = TempDir::new("pathsvc-rel");
    let f = t.write("data/file", "x");
    let dir = t.path().to_string_lossy().to_string();
    // From the real cwd: up to / with .., then down into /unreal.
    let ups = "../".repeat(dir.matches('/').count());
    let script = format!(
        "cd {d} && stat -c %s {ups}unreal{f} && cd / && stat -c %s unreal{f} && stat -c %s ./unreal/../unreal{f}",
        d = q(t.path()),
        f = q(&f),
    );
    assert_eq!(view_out(&script), "1\n1\n1\n");
}

#[test]
fn real_symlink_into_the_mount_is_followed_into_it() {
    let t = TempDir::new("pathsvc-link");
    t.write("data/file", "abc");
    let link = t.join("link");
    std::os::unix::fs::symlink(format!("/unreal{}", t.join("data").display()), &link).unwrap();
    // Natively the link dangles.
    let native =
        Cmd::sh(&format!("test -e {}/file && echo yes || echo no", q(&link))).run(Mode::Native);
    assert_eq!(native.out(), "no\n");
    let script = format!(
        "stat -c %s {l}/file; cd {d} && stat -c %s link/file && stat -L -c %F link",
        l = q(&link),
        d = q(t.path()),
    );
    assert_eq!(view_out(&script), "3\n3\ndirectory\n");
}

#[test]
fn changes_during_the_view_are_seen_at_once() {
    // The host remembers which real paths have no symlink on the way; a
    // directory replaced by a symlink into the mount (and back) must be
    // seen by the very next call.
    let t = TempDir::new("pathsvc-change");
    t.write("data/file", "abcd");
    let d = t.join("d");
    let target = format!("/unreal{}", t.join("data").display());
    let script = format!(
        "rm -rf {d} {d}.old; mkdir {d}; for i in 1 2 3; do stat -c %s {d}/file 2>/dev/null || echo missing; done; \
         rmdir {d}; ln -s {target} {d}; stat -c %s {d}/file; \
         rm {d}; mkdir {d}; stat -c %s {d}/file 2>/dev/null || echo missing-again; \
         rmdir {d}; mkdir -p {d}/x; mv {d} {d}.old; ln -s {target} {d}; stat -c %s {d}/file; \
         rm {d}; mv {d}.old {d}; stat -c %F {d}/x",
        d = q(&d),
        target = viewos_tests::shell_quote(&target),
    );
    assert_eq!(
        view_out(&script),
        "missing\nmissing\nmissing\n4\nmissing-again\n4\ndirectory\n"
    );
}

#[test]
fn changes_through_the_mount_land_on_the_real_tree() {
    let t = TempDir::new("pathsvc-write");
    t.write("a", "1");
    let script = format!(
        "mkdir /unreal{d}/newdir && mv /unreal{d}/a /unreal{d}/newdir/b && \
         ln -s b /unreal{d}/newdir/c && readlink /unreal{d}/newdir/c && \
         chmod 600 /unreal{d}/newdir/b && stat -c %a /unreal{d}/newdir/b",
        d = q(t.path())
    );
    assert_eq!(view_out_once(&script), "b\n600\n");
    assert!(t.join("newdir/b").is_file());
    assert!(!t.join("a").exists());
    assert_eq!(
        std::fs::read_link(t.join("newdir/c")).unwrap(),
        std::path::PathBuf::from("b")
    );
}

/// For scripts that change the real tree: one run in the default mode.
fn view_out_once(script: &str) -> String {
    let out = in_view(script).run(Mode::View);
    out.assert_ok();
    out.out()
}

#[test]
fn cross_mount_rename_is_exdev() {
    let t = TempDir::new("pathsvc-exdev");
    t.write("a", "1");
    let script = format!(
        "python3 -c 'import os,sys\ntry:\n os.rename(sys.argv[1], sys.argv[2])\nexcept OSError as e: print(e.errno)' {d}/a /unreal{d}/b",
        d = q(t.path())
    );
    assert_eq!(view_out_once(&script), format!("{}\n", libc::EXDEV));
    assert!(t.join("a").exists());
}

#[test]
fn files_opened_through_the_mount_read_write_and_list() {
    let t = TempDir::new("pathsvc-open");
    t.write("file", "first line\nsecond line\n");
    t.write("sub/inner", "inner\n");
    let native = Cmd::sh(&format!(
        "cat {d}/file; ls {d}; ls -R {d}/sub",
        d = q(t.path())
    ))
    .run(Mode::Native);
    native.assert_ok();
    let script = format!(
        "cat /unreal{d}/file; ls /unreal{d}; ls -R /unreal{d}/sub | sed 's,^/unreal,,'",
        d = q(t.path())
    );
    assert_eq!(view_out(&script), native.out());
    // Writes, appends, O_EXCL (noclobber), fds inherited over fork and exec.
    let script = format!(
        "echo hello > /unreal{d}/new && echo more >> /unreal{d}/new && \
         (set -C; echo x > /unreal{d}/new) 2>/dev/null || echo refused; \
         exec 3< /unreal{d}/new; head -n1 <&3; cat <&3",
        d = q(t.path())
    );
    assert_eq!(view_out_once(&script), "refused\nhello\nmore\n");
    assert_eq!(
        std::fs::read_to_string(t.join("new")).unwrap(),
        "hello\nmore\n"
    );
}

#[test]
fn python_opens_maps_and_scans_through_the_mount() {
    let t = TempDir::new("pathsvc-py");
    t.write("a.txt", "alpha");
    t.write("b.txt", "beta");
    let prog = r#"
import mmap, os, sys
d = sys.argv[1]
with open(d + "/a.txt", "rb") as f:
    m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
    print(m[:].decode())
print(sorted(e.name for e in os.scandir(d)))
fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
g = os.open("b.txt", os.O_RDONLY, dir_fd=fd)
print(os.read(g, 100).decode())
with open(d + "/c.txt", "w") as f:
    f.write("gamma")
print(os.stat(d + "/c.txt").st_size)
"#;
    let run = |dir: String, mode: Mode| {
        let out = Cmd::new(["python3", "-c", prog, &dir])
            .umview_opts(["-p", "unreal"])
            .run(mode);
        out.assert_ok();
        out.out()
    };
    let native = run(t.path().to_string_lossy().to_string(), Mode::Native);
    std::fs::remove_file(t.join("c.txt")).unwrap();
    for mode in Mode::VIEWS {
        let view = run(format!("/unreal{}", t.path().display()), mode);
        assert_eq!(view, native);
        std::fs::remove_file(t.join("c.txt")).unwrap();
    }
}

#[test]
fn viewmount_mounts_and_viewumount_unmounts_in_the_view_only() {
    let t = TempDir::new("pathsvc-mount");
    t.write("src/hello", "hello from the source\n");
    t.mkdir("mnt");
    let vm = viewos_tests::view_command("viewmount");
    let vu = viewos_tests::view_command("viewumount");
    let script = format!(
        "{vm} -t unreal {d}/src {d}/mnt && cat {d}/mnt/hello && ls {d}/mnt && \
         cd {d} && cat mnt/hello && cd / && \
         {vm} -t unreal {d}/src {d}/mnt/nested 2>&1; \
         {vu} {d}/mnt && test ! -e {d}/mnt/hello && echo unmounted; \
         {vu} {d}/mnt 2>&1; \
         {vm} -t unreal none {d}/no-such-dir 2>&1; echo status $?",
        vm = q(&vm),
        vu = q(&vu),
        d = q(t.path()),
    );
    let out = view_out_once(&script);
    let d = t.path().display();
    assert_eq!(
        out,
        format!(
            "hello from the source\nhello\nhello from the source\n\
             viewmount: mounting {d}/src on {d}/mnt/nested failed: No such file or directory (os error 2)\n\
             unmounted\n\
             viewumount: {d}/mnt: {eperm}\n\
             viewmount: mounting none on {d}/no-such-dir failed: No such file or directory (os error 2)\n\
             status 32\n",
            eperm = if is_root() {
                "Invalid argument (os error 22)"
            } else {
                "Operation not permitted (os error 1)"
            }
        )
    );
    // Nothing happened outside the view.
    assert!(!t.join("mnt/hello").exists());
}

/// umount2 of a directory that is not a mount point: the kernel says
/// EINVAL to root and EPERM to others.
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn mount_listings_show_the_view_mounts() {
    let t = TempDir::new("pathsvc-listing");
    t.mkdir("mnt dir");
    let vm = viewos_tests::view_command("viewmount");
    let script = format!(
        "{vm} -t unreal -o ro /usr {d}/'mnt dir' && \
         tail -n 3 /proc/self/mounts && tail -n 1 /proc/mounts && tail -n 1 /etc/mtab && \
         tail -n 1 /proc/$$/mountinfo | cut -d' ' -f4- && \
         findmnt -n -o TARGET,FSTYPE -M /unreal && \
         df --output=target /unreal | tail -n 1 && \
         test \"$(stat -f -c %b /unreal/usr)\" = \"$(stat -f -c %b /usr)\" && echo statfs-same",
        vm = q(&vm),
        d = q(t.path()),
    );
    let d = t.path().display().to_string().replace(' ', "\\040");
    let expected = format!(
        "/ /unreal unreal rw 0 0\n\
         /unreal /unreal/unreal unreal rw 0 0\n\
         /usr {d}/mnt\\040dir unreal ro 0 0\n\
         /usr {d}/mnt\\040dir unreal ro 0 0\n\
         /usr {d}/mnt\\040dir unreal ro 0 0\n\
         / {d}/mnt\\040dir ro - unreal /usr ro\n\
         /unreal unreal\n\
         /unreal\n\
         statfs-same\n"
    );
    for mode in Mode::VIEWS {
        let out = in_view(&script).run(mode);
        out.assert_ok();
        assert_eq!(out.out(), expected, "{}", out.dump());
    }
    // Outside the view the listing has no trace of either mount.
    let native = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(!native.contains(" unreal "));
}

#[test]
fn a_read_only_mount_refuses_changes_with_erofs() {
    let t = TempDir::new("pathsvc-ro");
    t.write("src/f", "content\n");
    t.mkdir("mnt");
    let vm = viewos_tests::view_command("viewmount");
    let script = format!(
        "{vm} -r -t unreal {d}/src {d}/mnt && cat {d}/mnt/f && \
         for c in 'touch {d}/mnt/new' 'mkdir {d}/mnt/dir' 'rm {d}/mnt/f' 'chmod 600 {d}/mnt/f' \
                  'ln -s f {d}/mnt/l' 'mv {d}/mnt/f {d}/mnt/g' 'truncate -s 0 {d}/mnt/f'; do \
           sh -c \"$c\" 2>&1 | grep -c 'Read-only file system'; done; \
         test -w {d}/mnt/f || echo not-writable",
        vm = q(&vm),
        d = q(t.path()),
    );
    for mode in Mode::VIEWS {
        let out = in_view(&script).run(mode);
        out.assert_ok();
        assert_eq!(
            out.out(),
            "content\n1\n1\n1\n1\n1\n1\n1\nnot-writable\n",
            "{}",
            out.dump()
        );
    }
    assert_eq!(
        std::fs::read_to_string(t.join("src/f")).unwrap(),
        "content\n"
    );
    assert!(!t.join("src/new").exists());
}

#[test]
fn cd_into_the_mount_with_a_correct_getcwd() {
    let t = TempDir::new("pathsvc-cd");
    t.write("top/sub/file", "in sub\n");
    t.write("top/other", "other\n");
    let body = |root: &str| {
        format!(
            "cd {root}{d}/top/sub && pwd && /bin/pwd && ls && cat file ../other && \
             python3 -c 'import os; print(os.getcwd()); print(sorted(os.listdir(\".\")))' && \
             cd .. && /bin/pwd && ls && cd sub && /bin/pwd && \
             (cd {root}{d}/top/other 2>&1 | sed 's,^.*: ,,'); (cd {root}{d}/none 2>&1 | sed 's,^.*: ,,')",
            d = q(t.path())
        )
    };
    let native = Cmd::bash(&body("")).run(Mode::Native);
    native.assert_ok();
    let expected = native
        .out()
        .lines()
        .map(|l| {
            if l.starts_with('/') {
                format!("/unreal{l}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect::<String>();
    for mode in Mode::VIEWS {
        let out = Cmd::bash(&body("/unreal"))
            .umview_opts(["-p", "unreal"])
            .run(mode);
        out.assert_ok();
        assert_eq!(out.out(), expected, "{}", out.dump());
    }
}

#[test]
fn programs_run_from_the_mount() {
    let t = TempDir::new("pathsvc-exec");
    let script = t.write("bin/hello.sh", "#!/bin/sh\necho \"script says $1\"\n");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    t.write("bin/data", "not a program\n");
    let body = format!(
        "/unreal/bin/echo elf && /unreal{d}/bin/hello.sh hi && \
         cd /unreal/usr/bin && ./true && echo relative && \
         python3 -c 'import subprocess; print(subprocess.run([\"/unreal/bin/ls\", \"-d\", \"/unreal/etc\"], capture_output=True, text=True).stdout.strip())'; \
         /unreal{d}/bin/data 2>/dev/null; echo \"not executable: $?\"; \
         /unreal{d}/bin/none 2>/dev/null; echo \"missing: $?\"; \
         /unreal{d}/bin 2>/dev/null; echo \"directory: $?\"",
        d = q(t.path())
    );
    for mode in Mode::VIEWS {
        let out = Cmd::sh(&body).umview_opts(["-p", "unreal"]).run(mode);
        out.assert_ok();
        assert_eq!(
            out.out(),
            "elf\nscript says hi\nrelative\n/unreal/etc\nnot executable: 126\nmissing: 127\ndirectory: 126\n",
            "{}",
            out.dump()
        );
    }
}

#[test]
fn times_xattrs_and_special_files_through_the_mount() {
    // The same steps natively in one directory and through /unreal in
    // another must print the same (including the errors a user without
    // root gets from mknod of a device).
    let steps = r#"
import os, stat, sys
d = sys.argv[1]
os.chdir(d)
open("f", "w").write("data")
os.utime("f", (1000000000, 1200000000))
st = os.stat("f"); print("times", int(st.st_atime), int(st.st_mtime))
os.utime("f", ns=(5 * 10**9 + 123, 6 * 10**9 + 456)); print("ns", os.stat("f").st_mtime_ns)
os.symlink("f", "l")
os.utime("l", (7, 8), follow_symlinks=False); print("link mtime", int(os.lstat("l").st_mtime))
try:
    os.setxattr("f", "user.colour", b"blue")
    print("xattr", os.getxattr("f", "user.colour"), sorted(os.listxattr("f")))
    os.setxattr("f", "user.colour", b"red", os.XATTR_REPLACE); print("replaced", os.getxattr("f", "user.colour"))
    try: os.setxattr("f", "user.colour", b"x", os.XATTR_CREATE)
    except OSError as e: print("create existing", e.errno)
    os.removexattr("f", "user.colour"); print("after remove", os.listxattr("f"))
    try: os.getxattr("f", "user.none")
    except OSError as e: print("missing attr", e.errno)
except OSError as e:
    print("xattrs unsupported here", e.errno)
os.mkfifo("p"); print("fifo", stat.S_ISFIFO(os.lstat("p").st_mode))
os.mknod("r", 0o600 | stat.S_IFREG); print("regular", oct(os.lstat("r").st_mode))
try:
    os.mknod("c", 0o600 | stat.S_IFCHR, os.makedev(1, 3)); print("chardev", os.major(os.lstat("c").st_rdev))
except OSError as e:
    print("chardev refused", e.errno)
"#;
    let native_dir = TempDir::new("pathsvc-times-native");
    let view_dir = TempDir::new("pathsvc-times-view");
    let native =
        Cmd::new(["python3", "-c", steps, &native_dir.path().to_string_lossy()]).run(Mode::Native);
    native.assert_ok();
    let view = Cmd::new([
        "python3",
        "-c",
        steps,
        &format!("/unreal{}", view_dir.path().display()),
    ])
    .umview_opts(["-p", "unreal"])
    .run(Mode::View);
    view.assert_ok();
    assert_eq!(view.out(), native.out(), "{}", view.dump());
}

#[test]
fn a_mount_can_use_files_that_exist_only_in_the_view() {
    // The source directory /unreal/... exists only in the view: the new
    // mount reaches it through the view (nesting); with -x it cannot.
    let t = TempDir::new("pathsvc-nest");
    t.write("src/inside", "nested\n");
    t.mkdir("mnt");
    let vm = viewos_tests::view_command("viewmount");
    let script = format!(
        "{vm} -t unreal /unreal{d}/src {d}/mnt && cat {d}/mnt/inside",
        vm = q(&vm),
        d = q(t.path())
    );
    assert_eq!(view_out(&script), "nested\n");
    let out = Cmd::sh(&script)
        .umview_opts(["-x", "-p", "unreal"])
        .run(Mode::View);
    assert_eq!(out.status.shell(), 1, "{}", out.dump());
    assert!(
        out.err().contains("No such file or directory"),
        "{}",
        out.dump()
    );
}

#[test]
fn garbage_to_virtual_path_calls_gets_the_kernels_errnos() {
    let t = TempDir::new("pathsvc-bad");
    let exe = viewos_tests::compile_c(t.path(), "vbad", include_str!("../fixtures/vbad.c"), &[]);
    t.mkdir("real");
    t.mkdir("virt");
    let native = Cmd::new([
        exe.display().to_string(),
        t.join("real").display().to_string(),
    ])
    .run(Mode::Native);
    native.assert_ok();
    for mode in Mode::VIEWS {
        let _ = std::fs::remove_dir_all(t.join("virt"));
        t.mkdir("virt");
        let view = Cmd::new([
            exe.display().to_string(),
            format!("/unreal{}", t.join("virt").display()),
        ])
        .umview_opts(["-p", "unreal"])
        .run(mode);
        view.assert_ok();
        assert_eq!(view.out(), native.out(), "{}", view.dump());
    }
}

#[test]
fn threads_run_programs_from_the_mount_at_the_same_time() {
    // Each exec from a virtual path is handed from the supervisor to the
    // tracer; many at once, from threads of one process, must all work.
    let prog = r#"
import threading, subprocess
def run(i):
    for j in range(5):
        out = subprocess.run(["/unreal/bin/echo", str(i)], capture_output=True, text=True).stdout
        assert out.strip() == str(i), out
ts = [threading.Thread(target=run, args=(i,)) for i in range(6)]
[t.start() for t in ts]; [t.join() for t in ts]
print("all ran")
"#;
    for mode in Mode::VIEWS {
        let out = Cmd::new(["python3", "-c", prog])
            .umview_opts(["-p", "unreal"])
            .run(mode);
        out.assert_ok();
        assert_eq!(out.out(), "all ran\n", "{}", out.dump());
    }
}

#[test]
fn mount_points_show_in_their_parents_listing() {
    // /unreal and /unreal/unreal exist on no real file system; their
    // parents list them, and names below a listed real directory still
    // resolve from it.
    let script = r#"
ls / | grep -x unreal
ls -a /unreal | grep -x unreal
ls /unreal/unreal | grep -cx unreal
python3 -c 'import os; print("unreal" in os.listdir("/"), "unreal" in os.listdir("/unreal"))'
cd / && python3 -c '
import os
d = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
print(sorted(os.listdir(d)) == sorted(set(os.listdir("/"))), os.stat("etc", dir_fd=d).st_ino == os.stat("/etc").st_ino)
print(open("etc/hostname").read() == open("/etc/hostname").read(), os.path.isdir("unreal/unreal/etc"))
'
"#;
    // Also when the mount serves its directories itself.
    for module in ["unreal", "unreal,served"] {
        for mode in Mode::VIEWS {
            let out = Cmd::sh(script).umview_opts(["-p", module]).run(mode);
            assert_eq!(
                out.out(),
                "unreal\nunreal\n0\nTrue True\nTrue True\nTrue True\n",
                "-p {module}: {}",
                out.dump()
            );
        }
    }
    // Outside a view the real root has no such entry.
    let native = Cmd::sh("ls / | grep -cx unreal").run(Mode::Native);
    assert_eq!(native.out(), "0\n", "{}", native.dump());
}

#[test]
fn o_path_opens_and_moves_into_directories_work_on_a_mount() {
    // The kernel's fd passing refuses O_PATH files: the program opens them
    // itself through the host's /proc fd. coreutils' `mv FILE DIR/` opens
    // DIR with O_PATH.
    let t = TempDir::new("opath");
    let py = python3().display().to_string();
    for mode in Mode::VIEWS {
        t.write("x/f", "data\n");
        t.mkdir("x/d");
        let x = format!("/unreal{}", t.join("x").display());
        let script = format!(
            r#"mv "{x}/f" "{x}/d/" && ls "{x}/d"
"{py}" -c '
import os, sys
fd = os.open(sys.argv[1], os.O_PATH)
print(os.path.samestat(os.fstat(fd), os.stat(sys.argv[1])), os.listdir(sys.argv[1] + "/d"))
' "{x}""#
        );
        let view = Cmd::bash(&script).umview_opts(["-p", "unreal"]).run(mode);
        view.assert_ok();
        assert_eq!(view.out(), "f\nTrue ['f']\n", "{}", view.dump());
        let _ = std::fs::remove_dir_all(t.join("x"));
    }
}
