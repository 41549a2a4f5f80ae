//! Garbage given to the system calls the host looks at (execve, execveat,
//! mount, umount2) and unknown system call numbers: the program gets the
//! same result and errno as natively, and umview neither crashes nor hangs.
//! Also with the debug log on, where the host reads the bad paths itself.

use viewos_tests::{assert_same, compile_c, Cmd, Mode, TempDir};

const BADCALLS: &str = include_str!("../fixtures/badcalls.c");

#[test]
fn garbage_arguments_get_native_errors() {
    let tmp = TempDir::new("badcalls");
    let exe = compile_c(tmp.path(), "badcalls", BADCALLS, &[]);
    let scratch = |m: &str| tmp.mkdir(format!("scratch-{m}"));
    // The scratch directory's name appears in no output line, so each run
    // may have its own.
    let native = Cmd::new([exe.as_os_str(), scratch("native").as_os_str()])
        .cwd(tmp.path())
        .run(Mode::Native);
    native.assert_ok();
    let out = native.out();
    assert!(out.contains("execve(NULL): -1 EFAULT\n"), "{out}");
    assert!(out.contains("syscall(-1): -1 ENOSYS\n"), "{out}");
    assert!(
        out.ends_with("syscall(getpid) still works: 1 ok\n"),
        "{out}"
    );
    for mode in Mode::VIEWS {
        let o = Cmd::new([exe.as_os_str(), scratch(mode.tag()).as_os_str()])
            .cwd(tmp.path())
            .run(mode);
        assert_same(&native, &o);
        let log = tmp.join(format!("{}.log", mode.tag()));
        let o = Cmd::new([
            exe.as_os_str(),
            scratch(&format!("{}-log", mode.tag())).as_os_str(),
        ])
        .cwd(tmp.path())
        .umview_opts(["-o".as_ref(), log.as_os_str()])
        .run(mode);
        assert_same(&native, &o);
        assert!(log.is_file(), "[{}] no log written", mode.name());
    }
}
