//! Signals under umview, with a C program compiled by the test: delivery
//! and handlers, SIGSTOP/SIGCONT, SIGCHLD, restart of a blocking call a
//! signal interrupted (SA_RESTART and not), deaths by signal.

use viewos_tests::{compile_c, transparent, Cmd, Outcome, TempDir};

const SIGNALS: &str = include_str!("../fixtures/signals.c");

fn signals(parts: &[&str]) -> Outcome {
    let tmp = TempDir::new("signals");
    let exe = compile_c(tmp.path(), "signals", SIGNALS, &["-pthread"]);
    let mut argv = vec![exe.into_os_string()];
    argv.extend(parts.iter().map(std::ffi::OsString::from));
    let o = transparent(&Cmd::new(argv));
    o.assert_ok();
    o
}

#[test]
fn delivery_and_handlers() {
    let o = signals(&["handlers"]);
    assert_eq!(
        o.out(),
        "raise: handler ran 1 time(s), signo SIGUSR1, code SI_TKILL\n\
         kill self: handler ran 1 time(s), code SI_USER, pid is ours yes\n\
         sigqueue: handler ran 1 time(s), code SI_QUEUE, value 1234\n\
         blocked: pending yes, handler ran 0\n\
         unblocked: handler ran 1 (standard signals do not queue)\n\
         realtime: 3 delivered, values 10 20 30\n\
         ignored SIGUSR2: still alive\n\
         sigwaitinfo: SIGUSR2, from child yes, value 77\n\
         sender: exit 0\n\
         signalfd: read 128, signo SIGUSR2, from child yes\n\
         sender: exit 0\n\
         SA_ONSTACK|SA_RESETHAND: ran 1, handler now SIG_DFL\n\
         alarm+pause: pause -1 EINTR, handler ran 1, code SI_KERNEL\n"
    );
}

#[test]
fn stop_and_continue() {
    let o = signals(&["stopcont"]);
    assert_eq!(
        o.out(),
        "child raised SIGSTOP: stopped by 19\n\
         after SIGCONT: continued\n\
         then: exit 3\n\
         SIGSTOP to a child in read: stopped by 19\n\
         SIGCONT: continued\n\
         its read went on: exit 0\n\
         SIGTSTP default: stopped by 20\n\
         then: exit 4\n\
         SIGTSTP ignored: exit 5\n\
         stopped: stopped by 19\n\
         SIGKILL while stopped: signal 9\n\
         stopped: stopped by 19\n\
         SIGTERM+SIGCONT while stopped: signal 15\n\
         group member: exit 18\n"
    );
}

#[test]
fn stop_and_continue_a_multithreaded_process() {
    let o = signals(&["mtstop"]);
    assert_eq!(
        o.out(),
        "threads, round 0: stopped by 19, continued, stopped by 19, then exit 9\n\
         threads, round 1: stopped by 19, continued, stopped by 19, then exit 9\n\
         threads, round 2: stopped by 19, continued, stopped by 19, then exit 9\n"
    );
}

#[test]
fn sigchld() {
    let o = signals(&["sigchld"]);
    assert_eq!(
        o.out(),
        "SIGCHLD exit: 1 signal(s), CLD_EXITED, status 42\n\
         reaped: exit 42\n\
         SIGCHLD stop: CLD_STOPPED, status 19\n\
         waitpid: stopped by 19\n\
         SIGCHLD continue: CLD_CONTINUED\n\
         SIGCHLD exit: CLD_EXITED, status 1\n\
         reaped: exit 1\n\
         SIGCHLD killed: CLD_KILLED, status 15\n\
         reaped: signal 15\n\
         SA_NOCLDSTOP: stopped by 19\n\
         continued: exit 2\n\
         SA_NOCLDSTOP: first SIGCHLD is CLD_EXITED\n\
         waitid WNOWAIT: CLD_EXITED status 9\n\
         still waitable: exit 9\n"
    );
}

#[test]
fn restart_after_interrupted_blocking_calls() {
    let o = signals(&["restart"]);
    assert_eq!(
        o.out(),
        "SA_RESTART handler: read 5 , handler ran 1\n\
         handler without SA_RESTART: read -1 EINTR, handler ran 1\n\
         ignored signal: read 5 , handler ran 0\n\
         SIGSTOP+SIGCONT, no handler: read 5 , handler ran 0\n\
         SIGSTOP+SIGCONT, SIGCONT handler without SA_RESTART: read -1 EINTR, handler ran 1\n\
         SIGSTOP+SIGCONT, SIGCONT handler with SA_RESTART: read 5 , handler ran 1\n\
         nanosleep + handler: -1 EINTR, time left yes\n\
         nanosleep across SIGSTOP/SIGCONT: 0 0\n\
         waitpid + handler without SA_RESTART: -1 EINTR\n"
    );
}

#[test]
fn deaths_by_signal() {
    let o = signals(&["deaths"]);
    assert_eq!(
        o.out(),
        "raise(SEGV): signal 11\n\
         raise(ABRT): signal 6\n\
         raise(TERM): signal 15\n\
         raise(KILL): signal 9\n\
         raise(INT): signal 2\n\
         raise(PIPE): signal 13\n\
         raise(USR1): signal 10\n\
         NULL write: signal 11\n\
         write to a closed pipe: signal 13\n\
         exit(255): exit 255\n\
         exit_group(300): exit 44\n"
    );
    // The started program itself dying: umview exits 128+N.
    let tmp = TempDir::new("signals-self");
    let exe = compile_c(
        tmp.path(),
        "die",
        "#include <signal.h>\n#include <stdlib.h>\n#include <stdio.h>\n\
         int main(int c, char **v) { if (c > 1) raise(atoi(v[1])); return 42; }\n",
        &[],
    );
    for (arg, want) in [
        (None, 42),
        (Some("11"), 139),
        (Some("15"), 143),
        (Some("6"), 134),
        (Some("9"), 137),
    ] {
        let mut argv = vec![exe.clone().into_os_string()];
        argv.extend(arg.map(std::ffi::OsString::from));
        let native = transparent(&Cmd::new(argv));
        assert_eq!(native.status.shell(), want);
    }
}
