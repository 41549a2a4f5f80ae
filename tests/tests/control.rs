//! The control commands inside a view (`um_ls_service`, `um_add_service`,
//! `um_del_service`, `um_mov_service`, `viewname`, `vuname`) and outside
//! any view (`not inside a view`, exit status 1).

use viewos_tests::{view_command, Cmd, Mode};

/// A shell script with the control commands' directory first on PATH.
fn script(body: &str) -> Cmd {
    let dir = view_command("viewname")
        .parent()
        .expect("a directory")
        .to_string_lossy()
        .to_string();
    let path = format!("{dir}:{}", std::env::var("PATH").unwrap_or_default());
    Cmd::sh(body).env("PATH", path)
}

#[test]
fn outside_a_view_every_command_says_so() {
    for tool in [
        "um_ls_service",
        "viewname",
        "vuname",
        "um_del_service unreal",
        "um_add_service unreal",
        "um_mov_service unreal 1",
    ] {
        let out = script(tool).run(Mode::Native);
        out.assert_code(1);
        let name = tool.split(' ').next().unwrap_or_default();
        assert_eq!(
            out.err(),
            format!("{name}: not inside a view\n"),
            "{}",
            out.dump()
        );
    }
}

#[test]
fn view_name_is_read_set_and_shown_by_vuname() {
    let uname = Cmd::new(["uname", "-a"]).run(Mode::Native);
    uname.assert_ok();
    for mode in Mode::VIEWS {
        let out = script("viewname; viewname renamed; viewname; vuname")
            .umview_opts(["-V", "first"])
            .run(mode);
        out.assert_ok();
        assert_eq!(
            out.out(),
            format!("first\nrenamed\n{} renamed\n", uname.out().trim_end()),
            "{}",
            out.dump()
        );
    }
}

#[test]
fn services_are_listed_moved_refused_while_busy_and_removed() {
    for mode in Mode::VIEWS {
        let out = script(
            "um_ls_service; um_mov_service unreal 1; echo mov $?; \
             um_mov_service nosuch 1; echo mov2 $?; \
             um_del_service unreal; echo del $?; \
             um_add_service unreal; echo add $?; \
             um_add_service nosuch; echo add2 $?",
        )
        .umview_opts(["-p", "unreal"])
        .run(mode);
        out.assert_ok();
        assert_eq!(
            out.out(),
            "unreal: the real file tree, again below /unreal (test service)\n\
             mov 0\nmov2 1\ndel 1\nadd 1\nadd2 1\n",
            "{}",
            out.dump()
        );
        assert_eq!(
            out.err(),
            "um_mov_service: no service named nosuch is loaded\n\
             um_del_service: unreal has mounts in the view: unmount them first\n\
             um_add_service: unreal is already loaded\n\
             um_add_service: no module named nosuch\n",
            "{}",
            out.dump()
        );
    }
}

#[test]
fn a_service_added_at_run_time_mounts_and_leaves() {
    // With --no-seccomp every call stops, so any module can be added later;
    // with the filter, only modules whose calls it stops.
    let body = "test -e /unreal/etc && echo before; um_add_service unreal; echo add $?; \
                test -e /unreal/etc && echo after; um_ls_service";
    let out = script(body).run(Mode::ViewNoSeccomp);
    out.assert_ok();
    assert_eq!(
        out.out(),
        "add 0\nafter\nunreal: the real file tree, again below /unreal (test service)\n",
        "{}",
        out.dump()
    );
    let out = script(body).run(Mode::View);
    out.assert_ok();
    assert_eq!(out.out(), "add 1\n", "{}", out.dump());
    assert!(
        out.err().contains("start umview with -p unreal"),
        "{}",
        out.dump()
    );
}

#[test]
fn garbage_on_the_control_channel_gets_errnos() {
    let prog = r#"
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
buf = ctypes.create_string_buffer(256)
def call(*args):
    r = libc.syscall(ctypes.c_long(0x71e05), *[ctypes.c_long(a) for a in args])
    return r if r >= 0 else -ctypes.get_errno()
print(call(99, 0, 0, ctypes.addressof(buf), 256))       # unknown op
print(call(2, 0, 0, 16, 256))                          # answer to a bad pointer
print(call(3, 16, 5, 0, 0))                            # argument from a bad pointer
print(call(4, ctypes.addressof(buf), 1 << 20, 0, 0))   # huge argument
print(call(2, 0, 0, ctypes.addressof(buf), 0))         # no room for the answer
"#;
    let native = Cmd::new(["python3", "-c", prog]).run(Mode::Native);
    native.assert_ok();
    assert_eq!(
        native.out(),
        "-38\n-38\n-38\n-38\n-38\n",
        "{}",
        native.dump()
    );
    for mode in Mode::VIEWS {
        let out = Cmd::new(["python3", "-c", prog])
            .umview_opts(["-V", "v"])
            .run(mode);
        out.assert_ok();
        assert_eq!(out.out(), "-22\n-14\n-14\n-7\n-34\n", "{}", out.dump());
    }
}
