//! Files a service serves itself (`-p unreal,served`): programs hold
//! placeholder fds and every call on them is answered by the service. The
//! unreal battery runs the common programs on served mounts; these cases
//! look at what is particular to served fds: the kernel's errnos for bad
//! fd calls, offsets shared by dup and fork, readiness in poll/select,
//! redirections, and the release of the service's handle at the last close.

use viewos_tests::{compile_c, python3, Cmd, Mode, TempDir};

const VBADFD: &str = include_str!("../fixtures/vbadfd.c");

fn fresh(t: &TempDir, dir: &str) -> String {
    let _ = std::fs::remove_dir_all(t.join(dir));
    t.write(format!("{dir}/file"), "0123456789");
    t.mkdir(format!("{dir}/dir"));
    t.join(dir).display().to_string()
}

#[test]
fn garbage_to_served_fd_calls_gets_the_kernels_errnos() {
    let t = TempDir::new("served-bad");
    let exe = compile_c(t.path(), "vbadfd", VBADFD, &[]);
    let exe = exe.display().to_string();
    let native = Cmd::new([exe.clone(), fresh(&t, "real")]).run(Mode::Native);
    native.assert_ok();
    for mode in Mode::VIEWS {
        let dir = format!("/unreal{}", fresh(&t, "virt"));
        let view = Cmd::new([exe.clone(), dir])
            .umview_opts(["-p", "unreal,served"])
            .run(mode);
        view.assert_ok();
        assert_eq!(view.out(), native.out(), "{}", view.dump());
    }
}

#[test]
fn redirections_pipes_and_readiness() {
    let t = TempDir::new("served-shell");
    t.write("tree/a.txt", "pear\napple\nfig\n");
    let x = t.join("tree").display().to_string();
    let script = r#"
sort < "$X/a.txt"
exec 4< "$X/a.txt"; read -r first <&4; read -r second <&4; echo "$first/$second"; exec 4<&-
cat "$X/a.txt" | wc -l
echo appended >> "$X/a.txt"; tail -n 1 "$X/a.txt"
"$PY" -c '
import os, select, sys
f = open(sys.argv[1], "rb")
r, w, _ = select.select([f], [f], [], 0)
print(len(r), len(w))
p = select.poll(); p.register(f, select.POLLIN | select.POLLOUT)
print(sorted(ev for _, ev in p.poll(0)))
d = os.open(sys.argv[2], os.O_RDONLY)
print(sorted(os.listdir(d)), os.path.exists("/proc/self/fd/%d" % d))
' "$X/a.txt" "$X"
"#;
    let py = python3().display().to_string();
    let native = Cmd::bash(script)
        .env("X", &x)
        .env("PY", &py)
        .run(Mode::Native);
    native.assert_ok();
    for mode in Mode::VIEWS {
        t.write("tree/a.txt", "pear\napple\nfig\n");
        let view = Cmd::bash(script)
            .env("X", format!("/unreal{x}"))
            .env("PY", &py)
            .umview_opts(["-p", "unreal,served"])
            .run(mode);
        view.assert_ok();
        assert_eq!(view.out(), native.out(), "{}", view.dump());
        t.write("tree/a.txt", "pear\napple\nfig\n");
    }
}

#[test]
fn the_handle_is_released_at_the_last_close_only() {
    let t = TempDir::new("served-release");
    t.write("tree/a.txt", "data\n");
    let x = format!("/unreal{}", t.join("tree").display());
    let log = t.join("log.txt");
    // The shell opens the file, a background child inherits it and holds it
    // for a while after the shell closed its copy.
    let script = r#"
exec 3< "$X/a.txt"
( sleep 1; cat <&3 ) &
exec 3<&-
echo closed-in-shell
wait
echo child-done
sleep 0.3
"#;
    for mode in Mode::VIEWS {
        let _ = std::fs::remove_file(&log);
        let view = Cmd::bash(script)
            .env("X", &x)
            .umview_opts(vec![
                "-o".to_string(),
                log.display().to_string(),
                "-p".to_string(),
                "unreal,served".to_string(),
            ])
            .run(mode);
        view.assert_ok();
        assert_eq!(
            view.out(),
            "closed-in-shell\ndata\nchild-done\n",
            "{}",
            view.dump()
        );
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let released = text.lines().filter(|l| l.contains("released")).count();
        assert!(released >= 1, "no release in the log:\n{text}");
        // The release comes after the child's read of the inherited copy
        // (answered by the service, or moved straight from the real file
        // by the thread itself: `Calls`).
        let lines: Vec<&str> = text.lines().collect();
        let last_read = lines.iter().rposition(|l| {
            l.contains(" read(0x0") && (l.contains("Return(5)") || l.contains("Calls("))
        });
        let first_release = lines.iter().position(|l| l.contains("released"));
        assert!(
            matches!((last_read, first_release), (Some(r), Some(f)) if r < f),
            "the file was released before the child read it:\n{text}"
        );
    }
}

#[test]
fn paths_leaving_a_served_directory_reach_the_real_tree() {
    // `..` out of the mount from a served dirfd: the kernel cannot look
    // names up in the placeholder, so the host gives it the real path.
    let prog = r#"
import os
d = os.open("/unreal/tmp", os.O_RDONLY | os.O_DIRECTORY)
same = lambda p, **kw: os.stat(p, **kw).st_ino == os.stat("/etc/hostname").st_ino
print(same("../../etc/hostname", dir_fd=d), same("../etc/hostname", dir_fd=d))
r = os.open("/unreal", os.O_RDONLY | os.O_DIRECTORY)
f = os.open("../etc/hostname", os.O_RDONLY, dir_fd=r)
print(same("../etc/hostname", dir_fd=r), os.read(f, 4096) == open("/etc/hostname", "rb").read())
"#;
    for mode in Mode::VIEWS {
        let out = Cmd::new([python3().display().to_string(), "-c".into(), prog.into()])
            .umview_opts(["-p", "unreal,served"])
            .run(mode);
        out.assert_ok();
        assert_eq!(out.out(), "True True\nTrue True\n", "{}", out.dump());
    }
}
