//! Syscall-number hooks (`-p hostname,NAME`: the service hooks uname(2)
//! and sethostname(2)). Programs in the view see the view's host name and
//! may change it without privileges; the real host name stays; garbage
//! arguments get the kernel's errnos; a hooking service added after the
//! start is refused when the view's filter does not stop its numbers.

use viewos_tests::{python3, view_command, Cmd, Mode};

#[test]
fn hooked_calls_are_answered_by_the_service() {
    let real = Cmd::new(["uname", "-n"]).run(Mode::Native);
    real.assert_ok();
    let py = python3().display().to_string();
    let script = format!(
        r#"hostname; uname -n
hostname renamed && uname -n
"{py}" -c '
import ctypes, errno, socket
libc = ctypes.CDLL(None, use_errno=True)
print(socket.gethostname())
print("uname NULL", libc.uname(None), errno.errorcode[ctypes.get_errno()])
print("sethostname long", libc.sethostname(b"x" * 100, 100), errno.errorcode[ctypes.get_errno()])
print("sethostname bad pointer", libc.sethostname(ctypes.c_void_p(8), 5), errno.errorcode[ctypes.get_errno()])
'"#
    );
    for mode in Mode::VIEWS {
        let view = Cmd::bash(&script)
            .umview_opts(["-p", "hostname,inner"])
            .run(mode);
        view.assert_ok();
        assert_eq!(
            view.out(),
            "inner\ninner\nrenamed\nrenamed\nuname NULL -1 EFAULT\n\
             sethostname long -1 EINVAL\nsethostname bad pointer -1 EFAULT\n",
            "{}",
            view.dump()
        );
    }
    let after = Cmd::new(["uname", "-n"]).run(Mode::Native);
    assert_eq!(after.out(), real.out(), "the real host name changed");
}

#[test]
fn hooks_need_a_filter_that_stops_their_numbers() {
    let add = view_command("um_add_service").display().to_string();
    let script = format!("{add} hostname,late; echo rc=$?; uname -n");
    let real = Cmd::new(["uname", "-n"]).run(Mode::Native);
    // The filter made at start does not stop uname: refused, loudly.
    let view = Cmd::bash(&script)
        .umview_opts(["-p", "unreal"])
        .run(Mode::View);
    assert!(view.out().starts_with("rc=1\n"), "{}", view.dump());
    assert!(view.err().contains("does not stop"), "{}", view.dump());
    assert!(view.out().ends_with(&real.out()), "{}", view.dump());
    // Without seccomp every call stops: the service works once added.
    let view = Cmd::bash(&script)
        .umview_opts(["-p", "unreal"])
        .run(Mode::ViewNoSeccomp);
    assert_eq!(view.out(), "rc=0\nlate\n", "{}", view.dump());
}
