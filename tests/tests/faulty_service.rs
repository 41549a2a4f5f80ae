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
