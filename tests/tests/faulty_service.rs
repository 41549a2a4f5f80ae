//! A failing or panicking service does not take the host down: the call
//! gets the service's errno, or `EIO` for a panic, and the view goes on.

use viewos_tests::{view_command, Cmd, Mode, TempDir};

#[test]
fn errors_and_panics_of_a_service_become_errnos() {
    let t = TempDir::new("faulty");
    t.mkdir("mnt");
    let vm = view_command("viewmount");
    let script = format!(
        "stat /faulty/panic 2>&1 | sed 's/.*: //'; stat /faulty/panic 2>/dev/null; echo again $?; \
         stat /faulty/eio 2>&1 | sed 's/.*: //'; ls -d /faulty; \
         {vm} -t faulty -o panic none {d}/mnt 2>&1 | sed 's/.*failed: //'; \
         {vm} -t faulty none {d}/mnt && stat -c %F {d}/mnt; echo still here",
        vm = vm.display(),
        d = t.path().display()
    );
    for mode in Mode::VIEWS {
        let out = Cmd::sh(&script).umview_opts(["-p", "faulty"]).run(mode);
        out.assert_ok();
        assert_eq!(
            out.out(),
            "Input/output error\nagain 1\nInput/output error\n/faulty\n\
             Input/output error (os error 5)\ndirectory\nstill here\n",
            "{}",
            out.dump()
        );
        assert!(
            out.err().contains("umview: internal error"),
            "{}",
            out.dump()
        );
    }
}

/// A service call that takes long (here: until another call releases it)
/// does not stop the other processes of the view: another supervisor thread
/// takes their calls meanwhile. With one thread, the release could never
/// come and the blocked call would time out (ETIMEDOUT after 20 s).
/// Only with seccomp: with `--no-seccomp` every call stops at the one
/// tracer thread, and a long call there holds up the view (documented in
/// README's `--no-seccomp` entry).
#[test]
fn a_long_service_call_does_not_stop_the_view() {
    let script = "stat /faulty/block 2>&1 | sed 's/.*: //' & \
         n=0; until stat /faulty/blocked >/dev/null 2>&1; do \
           n=$((n+1)); [ $n -lt 400 ] || { echo never blocked; break; }; sleep 0.05; done; \
         cat /etc/hostname >/dev/null && echo others run; \
         stat /faulty/release 2>/dev/null; wait; echo done";
    {
        let mode = Mode::View;
        let out = Cmd::sh(script).umview_opts(["-p", "faulty"]).run(mode);
        out.assert_ok();
        assert_eq!(
            out.out(),
            "others run\nNo such file or directory\ndone\n",
            "{}",
            out.dump()
        );
    }
}
