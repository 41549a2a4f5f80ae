//! System calls that come by a foreign entry path (32-bit `int $0x80`,
//! x32) or that would run work the host never sees (io_uring) fail with
//! ENOSYS in a view, with and without --no-seccomp, in the started program
//! and in its descendants. Natively they work (or fail otherwise): no
//! comparison with native here, on purpose.

use viewos_tests::{compile_c, Cmd, Mode, TempDir};

const FOREIGN: &str = include_str!("../fixtures/foreign_abi.c");

const IN_VIEW: &str = "int80 getpid: -38\n\
                       int80 getpid in a thread: -38\n\
                       x32 getpid in a thread: -38\n\
                       int80 write: -38\n\
                       x32 getpid: -38\n\
                       x32 write: -38\n\
                       io_uring_setup: -38\n\
                       io_uring_enter: -38\n\
                       io_uring_register: -38\n\
                       native getpid after: pid\n\
                       int80 exit: -38\n";

#[test]
fn foreign_entry_paths_get_enosys() {
    let tmp = TempDir::new("foreign");
    let exe = compile_c(tmp.path(), "foreign_abi", FOREIGN, &["-pthread"]);
    // Natively: the program itself is right (int 0x80 reaches the kernel,
    // and its 32-bit exit(7) ends the program).
    let native = Cmd::new([&exe]).run(Mode::Native);
    assert_eq!(native.status.shell(), 7, "{}", native.dump());
    assert!(
        native
            .out()
            .starts_with("int80 getpid: pid\nint80 getpid in a thread: pid\n"),
        "{}",
        native.dump()
    );
    assert!(
        native.out().contains("int80 write went through\n"),
        "{}",
        native.dump()
    );
    for mode in Mode::VIEWS {
        let o = Cmd::new([&exe]).run(mode);
        o.assert_ok();
        assert_eq!(o.out(), IN_VIEW, "[{}]\n{}", mode.name(), o.dump());
        // In a grandchild, after fork and exec.
        let o = Cmd::new([
            "sh".as_ref(),
            "-c".as_ref(),
            "sh -c '\"$0\"' \"$0\" & wait $!; echo \"status $?\"".as_ref(),
            exe.as_os_str(),
        ])
        .run(mode);
        o.assert_ok();
        assert_eq!(
            o.out(),
            format!("{IN_VIEW}status 0\n"),
            "[{}] in a grandchild\n{}",
            mode.name(),
            o.dump()
        );
    }
}
