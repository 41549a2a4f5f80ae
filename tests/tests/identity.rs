//! Identities in a view: `--root-id` (a fake root, as fakeroot and PRoot
//! `-0` give) with real programs: id, tar, chown, mknod, stat, dpkg-deb,
//! mount(8), python3's os.setuid; and without the option the view's ids
//! are the real ones.
//!
//! Every test runs as root and as an unprivileged user; as root the host
//! changes owners for real (so the outside checks differ).

use std::os::unix::fs::{FileTypeExt, MetadataExt};

use viewos_tests::{
    python3, quote_path as q, require_tool, run_native_ok, transparent, view_command, Cmd, Mode,
    Outcome, TempDir,
};

/// `sh -c script` in a view with `--root-id` (and `extra` options).
fn root_id(script: &str, extra: &[&str], mode: Mode) -> Outcome {
    let mut opts = vec!["--root-id"];
    opts.extend_from_slice(extra);
    Cmd::sh(script).umview_opts(opts).run(mode)
}

/// True if the tests run as real root.
fn real_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn my_uid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

#[test]
fn id_is_root_with_root_id() {
    for mode in Mode::VIEWS {
        let out = root_id("id; id -u; id -g; id -un", &[], mode);
        out.assert_ok();
        assert!(
            out.out().starts_with("uid=0(root) gid=0(root)"),
            "{}",
            out.dump()
        );
        assert!(out.out().ends_with("\n0\n0\nroot\n"), "{}", out.dump());
    }
}

#[test]
fn id_is_transparent_without_root_id() {
    transparent(&Cmd::new(["id"]));
    transparent(&Cmd::sh(
        "id -u; id -g; id -G; stat -c %u:%g /proc/self/exe .",
    ));
}

#[test]
fn tar_same_owner_keeps_the_archive_owners() {
    let t = TempDir::new("id-tar");
    t.write("src/a", "alpha\n");
    t.write("src/d/b", "beta\n");
    let tar = t.join("t.tar");
    run_native_ok(&[
        "tar",
        "cf",
        &tar.to_string_lossy(),
        "--owner=1234",
        "--group=5678",
        "-C",
        &t.join("src").to_string_lossy(),
        ".",
    ]);
    for mode in Mode::VIEWS {
        let x = t.join(format!("x-{}", mode.tag()));
        let script = format!(
            "mkdir {x} && tar xf {tar} --same-owner -C {x} && stat -c %u:%g {x}/a {x}/d/b {x}/d && \
             tar cf - -C {x} . | tar tvf - --numeric-owner | awk '{{print $2}}' | sort -u",
            x = q(&x),
            tar = q(&tar)
        );
        let out = root_id(&script, &[], mode);
        out.assert_ok();
        assert_eq!(
            out.out(),
            "1234:5678\n1234:5678\n1234:5678\n1234/5678\n",
            "{}",
            out.dump()
        );
        // Outside: the files are the real user's (root really chowns).
        let want = if real_root() { 1234 } else { my_uid() };
        for f in ["a", "d/b", "d"] {
            let meta = std::fs::metadata(x.join(f)).expect("extracted");
            assert_eq!(meta.uid(), want, "{f} outside the view");
        }
    }
}

#[test]
fn chown_is_remembered_and_stat_shows_it() {
    let t = TempDir::new("id-chown");
    for mode in Mode::VIEWS {
        let f = t.write(format!("f-{}", mode.tag()), "x");
        let out = root_id(
            &format!(
                "stat -c %u:%g {f}; chown 42:43 {f} && stat -c %u:%g {f} && chown :44 {f} && \
                 stat -c %u:%g {f} && ls -n {f} | awk '{{print $3, $4}}' && \
                 python3 -c 'import os,sys; s=os.stat(sys.argv[1]); print(s.st_uid, s.st_gid)' {f}",
                f = q(&f)
            ),
            &[],
            mode,
        );
        out.assert_ok();
        assert_eq!(
            out.out(),
            "0:0\n42:43\n42:44\n42 44\n42 44\n",
            "{}",
            out.dump()
        );
        let want = if real_root() { 42 } else { my_uid() };
        assert_eq!(std::fs::metadata(&f).expect("f").uid(), want);
    }
}

#[test]
fn chown_of_another_users_file_fails() {
    if real_root() {
        // Root's chown is the kernel's: nothing of the view's own to test.
        let out = root_id("chown 42 /etc/hostname.none 2>&1; echo $?", &[], Mode::View);
        assert!(out.out().ends_with("1\n"), "{}", out.dump());
        return;
    }
    // /etc/passwd belongs to real root: the view may not say otherwise.
    let out = root_id(
        "chown 42 /etc/passwd; echo $?; stat -c %u /etc/passwd",
        &[],
        Mode::View,
    );
    assert!(
        out.err().contains("Operation not permitted"),
        "{}",
        out.dump()
    );
    assert_eq!(out.out(), "1\n0\n", "{}", out.dump());
}

#[test]
fn mknod_makes_device_nodes_stat_reports() {
    let t = TempDir::new("id-mknod");
    for mode in Mode::VIEWS {
        let d = t.mkdir(mode.tag());
        let out = Cmd::sh(
            "umask 022; mknod n c 1 3 && mknod b b 8 1 && mkfifo p && stat -c %F:%t:%T:%a n b && \
             stat -c %F p && ls -l n | cut -c1 && mknod n c 1 3; echo $?",
        )
        .umview_opts(["--root-id"])
        .cwd(&d)
        .run(mode);
        out.assert_ok();
        assert_eq!(
            out.out(),
            "character special file:1:3:644\nblock special file:8:1:644\nfifo\nc\n1\n",
            "{}",
            out.dump()
        );
        assert!(out.err().contains("File exists"), "{}", out.dump());
    }
}

#[test]
fn mknod_in_a_directory() {
    let t = TempDir::new("id-mknod-dir");
    for mode in Mode::VIEWS {
        let d = t.mkdir(mode.tag());
        let out = Cmd::sh("mknod null c 1 3 && stat -c %F:%t:%T null && echo hi > null; cat null")
            .umview_opts(["--root-id"])
            .cwd(&d)
            .run(mode);
        out.assert_ok();
        // Root makes a real null device; otherwise the placeholder is a
        // regular file, and what is written stays.
        let read_back = if real_root() { "" } else { "hi\n" };
        assert_eq!(
            out.out(),
            format!("character special file:1:3\n{read_back}"),
            "{}",
            out.dump()
        );
        let meta = std::fs::symlink_metadata(d.join("null")).expect("made");
        if real_root() {
            assert!(meta.file_type().is_char_device());
        } else {
            assert!(meta.file_type().is_file());
        }
    }
}

#[test]
fn dpkg_deb_builds_root_owned_packages() {
    require_tool("dpkg-deb", "dpkg");
    let t = TempDir::new("id-dpkg");
    t.write(
        "pkg/DEBIAN/control",
        "Package: viewos-id-test\nVersion: 1.0\nArchitecture: all\nMaintainer: V <v@example.invalid>\nDescription: test\n",
    );
    t.write("pkg/usr/share/viewos-id-test/README", "hello\n");
    for mode in Mode::VIEWS {
        let deb = t.join(format!("p-{}.deb", mode.tag()));
        let out = root_id(
            &format!("dpkg-deb -b {} {} >/dev/null", q(&t.join("pkg")), q(&deb)),
            &[],
            mode,
        );
        out.assert_ok();
        let listing = run_native_ok(&["dpkg-deb", "-c", &deb.to_string_lossy()]);
        let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
        assert!(listing.contains("README"), "{listing}");
        for line in listing.lines() {
            assert!(line.contains(" root/root "), "{listing}");
        }
    }
}

#[test]
fn mount_command_works_as_fake_root() {
    let t = TempDir::new("id-mount");
    let mnt = t.mkdir("mnt");
    t.write("mnt/hidden", "hidden");
    for mode in Mode::VIEWS {
        let out = root_id(
            &format!(
                "/usr/bin/mount -t umfusenull none {m} && ls -A {m} && echo listed && grep -c umfusenull /proc/self/mounts && /usr/bin/umount {m} && ls {m}",
                m = q(&mnt)
            ),
            &["-p", "umfuse"],
            mode,
        );
        out.assert_ok();
        assert_eq!(out.out(), "listed\n1\nhidden\n", "{}", out.dump());
    }
    let _ = view_command("viewmount");
}

#[test]
fn python_setuid_and_capabilities() {
    let py = python3();
    let script = r#"
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
hdr = (ctypes.c_uint32 * 2)(0x20080522, 0)
data = (ctypes.c_uint32 * 6)()
print(libc.capget(hdr, data), data[0] == 0xffffffff, data[1] == 0xffffffff)
os.setgroups([5, 6]); os.setgid(7); os.setuid(1000)
print(os.getuid(), os.geteuid(), os.getgid(), os.getgroups(), os.getresuid())
print(libc.capget(hdr, data), data[0], data[1])
try:
    os.setuid(0)
except PermissionError as e:
    print("EPERM", e.errno)
pid = os.fork()
if pid == 0:
    print("child", os.getuid())
    os._exit(0)
os.waitpid(pid, 0)
"#;
    for mode in Mode::VIEWS {
        let out = Cmd::new([py.to_str().unwrap_or("python3"), "-c", script])
            .umview_opts(["--root-id"])
            .run(mode);
        out.assert_ok();
        assert_eq!(
            out.out(),
            "0 True True\n1000 1000 7 [5, 6] (1000, 1000, 1000)\n0 0 0\nEPERM 1\nchild 1000\n",
            "{}",
            out.dump()
        );
    }
}

#[test]
fn bad_identity_arguments_get_the_kernels_errors() {
    let py = python3();
    let script = r#"
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
def err(r):
    return ctypes.get_errno() if r < 0 else r
print(err(libc.syscall(105, 0xffffffff)))           # setuid(-1): EINVAL
print(err(libc.syscall(118, 8, 8, 8)))              # getresuid to bad pointers: EFAULT
print(err(libc.syscall(116, -1, 0)))                # setgroups(-1): EINVAL
print(err(libc.syscall(115, 0, 0)))                 # getgroups(0): the count
hdr = (ctypes.c_uint32 * 2)(0x1234, 0)
print(err(libc.syscall(125, hdr, 0)), hex(hdr[0]))  # capget bad version: EINVAL
print(err(libc.syscall(125, 8, 0)))                 # capget bad header: EFAULT
"#;
    for mode in Mode::VIEWS {
        let out = Cmd::new([py.to_str().unwrap_or("python3"), "-c", script])
            .umview_opts(["--root-id"])
            .run(mode);
        out.assert_ok();
        assert_eq!(
            out.out(),
            "22\n14\n22\n0\n22 0x20080522\n14\n",
            "{}",
            out.dump()
        );
    }
}

// ---- Human mode (-s) ----

/// `bash -c script` in `umview -s` (and `extra` options), with the view's
/// commands on PATH.
fn secure(script: &str, extra: &[&str], mode: Mode) -> Outcome {
    let mut opts = vec!["-s"];
    opts.extend_from_slice(extra);
    let dir = view_command("viewsu");
    let dir = dir.parent().expect("a directory");
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into())
    );
    Cmd::bash(script)
        .umview_opts(opts)
        .env("PATH", path)
        .run(mode)
}

#[test]
fn secure_mode_starts_as_root_and_viewsu_becomes_nobody() {
    for mode in Mode::VIEWS {
        let out = secure(
            "id; viewsu nobody -c 'id; id -un'; viewsu 65534 -c 'id -u'; viewsu nosuchuser -c id; echo $?",
            &[],
            mode,
        );
        let text = out.out();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines.len() == 5
                && lines[0].starts_with("uid=0(root) gid=0(root)")
                && lines[1].starts_with("uid=65534(nobody) gid=65534(")
                && lines[2] == "nobody"
                && lines[3] == "65534"
                && lines[4] == "1",
            "{}",
            out.dump()
        );
        assert!(
            out.err().contains("user nosuchuser does not exist"),
            "{}",
            out.dump()
        );
    }
}

#[test]
fn nobody_may_not_become_root_again() {
    for mode in Mode::VIEWS {
        let out = secure(
            "python3 -c 'import os; os.setuid(65534); print(os.getuid()); os.setuid(0)'; echo $?; \
             viewsu nobody -c 'viewsu root -c id; echo $?; viewsu daemon -c id; echo $?; viewsudo id -u'",
            &[],
            mode,
        );
        assert_eq!(out.out(), "65534\n1\n1\n1\n0\n", "{}", out.dump());
        assert!(out.err().contains("PermissionError"), "{}", out.dump());
        assert!(
            out.err().contains("viewsu: permission denied"),
            "{}",
            out.dump()
        );
    }
}

#[test]
fn human_mounts_check_the_view_identity() {
    let t = TempDir::new("id-human");
    t.write("src/secret", "secret\n");
    t.write("src/public", "public\n");
    std::fs::set_permissions(
        t.join("src/secret"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .expect("chmod");
    t.mkdir("mnt");
    let script = format!(
        "cd {d} && viewmount -t umfusereal -o human src mnt && stat -c %U:%a mnt/secret && \
         cat mnt/secret && viewsu nobody -c 'cat mnt/public; cat mnt/secret; echo $?' && \
         python3 -c 'import os; os.setuid(65534); open(\"mnt/secret\")' 2>&1 | tail -1; \
         cat mnt/secret",
        d = q(t.path())
    );
    for (opt, mode) in [
        ("-s", Mode::View),
        ("-s", Mode::ViewNoSeccomp),
        ("--root-id", Mode::View),
    ] {
        let out = if opt == "-s" {
            secure(&script, &["-p", "umfuse"], mode)
        } else {
            let dir = view_command("viewmount");
            let dir = dir.parent().expect("a directory").display().to_string();
            Cmd::bash(&script)
                .umview_opts(["--root-id", "-p", "umfuse"])
                .env("PATH", format!("{dir}:/usr/local/bin:/usr/bin:/bin"))
                .run(mode)
        };
        assert_eq!(
            out.out(),
            "root:600\nsecret\npublic\n1\nPermissionError: [Errno 13] Permission denied: 'mnt/secret'\nsecret\n",
            "{opt}: {}",
            out.dump()
        );
        assert!(out.err().contains("Permission denied"), "{}", out.dump());
    }
}

#[test]
fn only_root_changes_the_view() {
    let t = TempDir::new("id-admin");
    let mnt = t.mkdir("mnt");
    for mode in Mode::VIEWS {
        let out = secure(
            &format!(
                "viewsu nobody -c 'viewmount -t umfusenull none {m}; echo $?; um_add_service viewfs; echo $?; \
                 viewname other; echo $?; viewname'; viewmount -t umfusenull none {m} && echo mounted",
                m = q(&mnt)
            ),
            &["-p", "umfuse", "-V", "v1"],
            mode,
        );
        assert_eq!(out.out(), "32\n1\n1\nv1\nmounted\n", "{}", out.dump());
        assert!(
            out.err().contains("Operation not permitted"),
            "{}",
            out.dump()
        );
    }
}

#[test]
fn fuse_requests_carry_the_callers_ids() {
    let t = TempDir::new("id-fuse2fs");
    let img = t.join("disk.img");
    run_native_ok(&[
        "/usr/sbin/mkfs.ext4",
        "-q",
        "-F",
        &img.to_string_lossy(),
        "16M",
    ]);
    t.mkdir("mnt");
    let script = format!(
        "{tree}cd {d}\n\
         fuse2fs -f disk.img mnt -o fakeroot >f.out 2>f.err & pid=$!\n\
         wait_for mnt/lost+found || {{ cat f.err; exit 1; }}\n\
         mkdir mnt/pub && chmod 1777 mnt/pub && touch mnt/pub/byroot && \
         viewsu nobody -c 'touch mnt/pub/bynobody' && \
         stat -c %n:%u:%g mnt/pub/byroot mnt/pub/bynobody\n\
         viewumount mnt; wait $pid\n",
        tree = viewos_tests::TREE_SH,
        d = q(t.path())
    );
    let out = secure(&script, &["-p", "umfuse"], Mode::View);
    assert!(
        out.out()
            .starts_with("mnt/pub/byroot:0:0\nmnt/pub/bynobody:65534:65534\n"),
        "{}",
        out.dump()
    );
}

#[test]
fn proc_status_shows_the_view_ids() {
    let py = python3();
    let script = r#"
import os
def ids(path):
    lines = open(path).read().splitlines()
    return [l.split(":", 1)[1].split() for l in lines if l.split(":")[0] in ("Uid", "Gid", "Groups")]
print(ids("/proc/self/status"))
os.setgroups([4, 5]); os.setgid(7); os.setuid(1000)
print(ids("/proc/self/status"))
print(ids("/proc/%d/status" % os.getpid()) == ids("/proc/thread-self/status"))
print(ids("/proc/self/task/%d/status" % os.getpid())[0])
"#;
    for mode in Mode::VIEWS {
        let out = Cmd::new([py.to_str().unwrap_or("python3"), "-c", script])
            .umview_opts(["--root-id"])
            .run(mode);
        out.assert_ok();
        assert_eq!(
            out.out(),
            "[['0', '0', '0', '0'], ['0', '0', '0', '0'], []]\n\
             [['1000', '1000', '1000', '1000'], ['7', '7', '7', '7'], ['4', '5']]\n\
             True\n['1000', '1000', '1000', '1000']\n",
            "{}",
            out.dump()
        );
    }
    // Without identities the file is the kernel's.
    let native = Cmd::sh("grep -E '^(Uid|Gid|Groups)' /proc/self/status");
    transparent(&native);
}

#[test]
fn a_view_user_may_not_chown_or_mknod() {
    let t = TempDir::new("id-user-chown");
    for mode in Mode::VIEWS {
        let d = t.mkdir(mode.tag());
        std::fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .expect("chmod");
        let out = secure(
            &format!(
                "cd {d} && touch f && viewsu nobody -c 'chown 65534 f; echo $?; chown :65534 f; echo $?; \
                 mknod n c 1 3; echo $?'; stat -c %u:%g f; test -e n || echo no-node",
                d = q(&d)
            ),
            &[],
            mode,
        );
        assert_eq!(out.out(), "1\n1\n1\n0:0\nno-node\n", "{}", out.dump());
        assert!(
            out.err().contains("Operation not permitted"),
            "{}",
            out.dump()
        );
    }
}

#[test]
fn a_removed_files_owner_is_forgotten() {
    let t = TempDir::new("id-forget");
    for mode in Mode::VIEWS {
        let d = t.mkdir(mode.tag());
        let out = Cmd::sh(
            "touch f && chown 42:43 f && ln f h && ino=$(stat -c %i f) && rm f && stat -c %u:%g h && \
             rm h && for i in $(seq 40); do touch n$i; [ $(stat -c %i n$i) = $ino ] && echo reused $(stat -c %u:%g n$i); done; \
             touch a && chown 5 a && mv a b && stat -c %u b && touch c && mv c b && stat -c %u b && \
             mkdir d && chown 7 d && rmdir d && mkdir d && stat -c %u d",
        )
        .umview_opts(["--root-id"])
        .cwd(&d)
        .run(mode);
        out.assert_ok();
        let text = out.out();
        let mut lines: Vec<&str> = text.lines().collect();
        // A new file on the removed file's inode (if the file system gave
        // it out again) is the user's, shown as root's.
        lines.retain(|l| {
            assert!(
                !l.starts_with("reused ") || *l == "reused 0:0",
                "{}",
                out.dump()
            );
            !l.starts_with("reused ")
        });
        assert_eq!(lines, ["42:43", "5", "0", "0"], "{}", out.dump());
    }
}

#[test]
fn files_a_view_user_creates_are_theirs() {
    let t = TempDir::new("id-create");
    let inner = "umask 022; touch f && echo hello > g && mkdir d && ln -s f l && mkfifo p && \
                 python3 -c 'open(\"h\", \"x\").write(\"x\")' && echo again >> g && \
                 touch f && mkdir d 2>/dev/null; chown :0 f; echo $?; \
                 stat -c %n:%u:%g:%A d f g h l p";
    for mode in Mode::VIEWS {
        let d = t.mkdir(mode.tag());
        let out = secure(
            &format!(
                "cd {d} && touch byroot && viewsu nobody -c {inner} && stat -c %n:%u:%g byroot && cat g",
                d = q(&d),
                inner = viewos_tests::shell_quote(inner)
            ),
            &[],
            mode,
        );
        out.assert_ok();
        assert_eq!(
            out.out(),
            "1\nd:65534:65534:drwxr-xr-x\nf:65534:65534:-rw-r--r--\ng:65534:65534:-rw-r--r--\n\
             h:65534:65534:-rw-r--r--\nl:65534:65534:lrwxrwxrwx\np:65534:65534:prw-r--r--\n\
             byroot:0:0\nhello\nagain\n",
            "{}",
            out.dump()
        );
        // Outside they are the real user's.
        let meta = std::fs::metadata(d.join("g")).expect("g");
        assert_eq!(meta.uid(), my_uid());
    }
}

#[test]
fn stat_of_self_names_is_the_callers() {
    let t = TempDir::new("id-self");
    let f = t.write("input", "data\n");
    let script = format!(
        "stat -L -c %i:%F /dev/stdin /proc/self/fd/0 /dev/fd/0 /proc/thread-self/fd/0 < {f}; \
         stat -c %i {f}; stat -c %F /dev/stdin /proc/self; test -d /proc/self/fd && echo dir",
        f = q(&f)
    );
    let native = Cmd::sh(&script).run(Mode::Native);
    native.assert_ok();
    for mode in Mode::VIEWS {
        let out = Cmd::sh(&script).umview_opts(["--root-id"]).run(mode);
        out.assert_ok();
        assert_eq!(out.out(), native.out(), "{}", out.dump());
    }
}

#[test]
fn bad_file_arguments_get_the_kernels_errors() {
    let py = python3();
    // Calls whose answer does not depend on who the caller is: the same
    // errors natively and with identities.
    let script = r#"
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
buf = ctypes.create_string_buffer(512)
def call(*a):
    r = libc.syscall(*a)
    return ctypes.get_errno() if r < 0 else r
print(call(4, None, buf))                               # stat(NULL): EFAULT
print(call(4, b"/", None))                              # stat into NULL: EFAULT
print(call(4, b"/nonexistent/x", buf))                  # ENOENT
print(call(262, -5, b"x", buf, 0))                      # newfstatat bad dirfd: EBADF
print(call(262, -100, b"/", buf, 0xffff))               # bad flags: EINVAL
print(call(262, -100, b"", buf, 0))                     # empty path: ENOENT
print(call(332, -100, b"/", 0x7fff0000, 0x7ff, buf))    # statx bad flags: EINVAL
print(call(332, -100, b"/", 0, 0x7ff, 8))               # statx into a bad pointer: EFAULT
print(call(5, 999, buf))                                # fstat bad fd: EBADF
print(call(260, -100, b"/", 0, 0, 0x7000))              # fchownat bad flags: EINVAL
print(call(133, None, 0o20644, 0))                      # mknod(NULL): EFAULT
print(call(133, b"/nonexistent/n", 0o20644, 0x103))     # mknod in no directory: ENOENT
print(call(83, b"/nonexistent/d", 0o755))               # mkdir in no directory: ENOENT
print(call(87, b"/nonexistent/f"))                      # unlink: ENOENT
"#;
    let cmd = Cmd::new([py.to_str().unwrap_or("python3"), "-c", script]);
    let native = cmd.run(Mode::Native);
    native.assert_ok();
    for (opt, mode) in [
        ("--root-id", Mode::View),
        ("--root-id", Mode::ViewNoSeccomp),
        ("-s", Mode::View),
    ] {
        let out = cmd.clone().umview_opts([opt]).run(mode);
        out.assert_ok();
        assert_eq!(out.out(), native.out(), "{opt}: {}", out.dump());
    }
}

#[test]
fn set_user_id_programs_change_the_view_ids() {
    let t = TempDir::new("id-setuid");
    let nosuid = {
        let c = std::ffi::CString::new(t.path().to_string_lossy().as_bytes()).expect("path");
        // SAFETY: an all-integer struct the kernel fills, and our path.
        let mut fs: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        unsafe { libc::statvfs(c.as_ptr(), &mut fs) == 0 && fs.f_flag & libc::ST_NOSUID != 0 }
    };
    for mode in Mode::VIEWS {
        let d = t.mkdir(mode.tag());
        let out = secure(
            &format!(
                "cd {d} && cp /usr/bin/id myid && chmod u+s myid && viewsu nobody -c './myid -u; id -u; ./myid -ru'",
                d = q(&d)
            ),
            &[],
            mode,
        );
        out.assert_ok();
        let euid = if nosuid { "65534" } else { "0" };
        assert_eq!(
            out.out(),
            format!("{euid}\n65534\n65534\n"),
            "{}",
            out.dump()
        );
    }
}

/// Prints the capability sets `/proc/self/status` shows.
const CAPSELF: &str = r#"
#include <stdio.h>
#include <string.h>
int main(void)
{
    char line[256];
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "CapPrm:", 7) || !strncmp(line, "CapEff:", 7))
            fputs(line, stdout);
    return 0;
}
"#;

/// A file with capabilities (`setcap cap_net_raw+ep`) run by a user of a
/// `-s` view gives that user's process the file's capabilities in the
/// view, as the kernel's exec does; a file without them gives none.
#[test]
fn file_capabilities_are_given_at_exec() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        viewos_tests::report_skipped(
            "identity: file capabilities",
            "making a file with capabilities (setcap) needs CAP_SETFCAP, so only the root run has one",
        );
        return;
    }
    let setcap = require_tool("/usr/sbin/setcap", "libcap2-bin");
    let t = TempDir::new("id-filecaps");
    let capped = viewos_tests::compile_c(t.path(), "capped", CAPSELF, &[]);
    let plain = t.join("plain");
    std::fs::copy(&capped, &plain).expect("copy");
    run_native_ok(&[
        setcap.to_str().expect("utf-8"),
        "cap_net_raw+ep",
        capped.to_str().expect("utf-8"),
    ]);
    for mode in Mode::VIEWS {
        let out = secure(
            &format!(
                "chmod 755 {d} && viewsu nobody -c '{c}; {p}'",
                d = q(t.path()),
                c = q(&capped),
                p = q(&plain)
            ),
            &[],
            mode,
        );
        out.assert_ok();
        assert_eq!(
            out.out(),
            "CapPrm:\t0000000000002000\nCapEff:\t0000000000002000\n\
             CapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n",
            "{}",
            out.dump()
        );
    }
}

/// access(2) answers for the view's ids and the owners and modes the view
/// shows: a user of a `-s` view may not read another user's 0600 file
/// (though the real user, who owns it, may), a fake root may write a file
/// the view shows as its own.
#[test]
fn access_answers_for_the_view_s_identity() {
    let t = TempDir::new("id-access");
    for mode in Mode::VIEWS {
        let d = t.mkdir(mode.tag());
        let out = secure(
            &format!(
                "cd {d} && touch f && chmod 600 f && chmod 755 . && viewsu nobody -c \
                 'test -e f && echo exists; test -r f && echo r || echo not-r; test -w f && echo w || echo not-w; \
                  python3 -c \"import os; print(os.access(\\\"f\\\", os.R_OK), os.access(\\\"/\\\", os.X_OK))\"'; \
                 test -r f && echo root-r",
                d = q(&d)
            ),
            &[],
            mode,
        );
        out.assert_ok();
        assert_eq!(
            out.out(),
            "exists\nnot-r\nnot-w\nFalse True\nroot-r\n",
            "{}",
            out.dump()
        );
    }
}
