//! Process life cycle under umview, with C programs compiled by the test:
//! fork+exec from several threads at once, exec from a non-leader thread,
//! vfork, clone3 (direct, posix_spawn, pthreads), zombies, orphans, process
//! groups and sessions.

use viewos_tests::{compile_c, transparent, Cmd, TempDir};

const PROCS: &str = include_str!("../fixtures/procs.c");
const THREADS_EXEC: &str = include_str!("../fixtures/threads_exec.c");

#[test]
fn fork_exec_from_threads_and_exec_from_a_thread() {
    let tmp = TempDir::new("proc-threads");
    let exe = compile_c(tmp.path(), "threads_exec", THREADS_EXEC, &["-pthread"]);
    // Several rounds: races between threads are what this is about.
    for _ in 0..3 {
        let o = transparent(&Cmd::new([&exe]));
        o.assert_ok();
        assert_eq!(
            o.out(),
            "fork+exec from 4 threads: 32 of 32 children exited right\n\
             posix_spawn from 4 threads: 32 of 32 children exited right\n\
             before exec: at least 3 threads: yes\n\
             after exec from a thread: same pid yes, threads 1, ppid kept yes\n"
        );
    }
    // The same as a grandchild of the started program (not the leader
    // umview waits for).
    let o = transparent(&Cmd::new([
        "sh".as_ref(),
        "-c".as_ref(),
        "\"$0\"; echo \"status $?\"".as_ref(),
        exe.as_os_str(),
    ]));
    assert!(
        o.out().ends_with("threads 1, ppid kept yes\nstatus 0\n"),
        "{}",
        o.dump()
    );
}

fn procs(parts: &[&str], expected: &str) {
    let tmp = TempDir::new("proc-parts");
    let exe = compile_c(tmp.path(), "procs", PROCS, &["-pthread", "-O0"]);
    let mut argv = vec![exe.into_os_string()];
    argv.extend(parts.iter().map(std::ffi::OsString::from));
    let o = transparent(&Cmd::new(argv));
    o.assert_ok();
    assert_eq!(o.out(), expected, "{}", o.dump());
}

#[test]
fn vfork() {
    procs(
        &["vfork"],
        "vfork: child exit 7, parent saw 42\n\
         vfork+exec: child exit 3\n\
         vfork+failed exec: child exit 21\n\
         nested vfork: child exit 15\n",
    );
}

#[test]
fn clone3_posix_spawn_and_pthreads() {
    procs(
        &["clone3"],
        "clone3+pidfd: poll 1, waitid 0, code CLD_EXITED, status 11, pid matches yes\n\
         clone3 size 8: -1 EINVAL\n\
         clone3 unknown flag: -1 EINVAL\n\
         clone3 no exit signal: waited yes, exit 12\n\
         posix_spawn: child exit 4\n\
         posix_spawn missing: ENOENT\n\
         pthreads: 8 joined, sum 56\n",
    );
}

#[test]
fn zombies_and_orphans() {
    procs(
        &["zombie", "orphan", "subreaper"],
        "zombie: state Z before reaping\n\
         zombie: reaped, exit 5\n\
         zombie: after reaping gone\n\
         zombie: waitpid again: -1 ECHILD\n\
         zombies: reaped 20, codes sum 190, then ECHILD\n\
         SIGCHLD ignored: waitpid -1 ECHILD\n\
         orphan's parent: exit 0\n\
         orphan: reparented after its parent exited\n\
         orphan: exiting\n\
         subreaper: reaped its grandchild yes, exit 33\n\
         subreaper process: exit 0\n",
    );
}

#[test]
fn process_groups_and_sessions() {
    procs(
        &["pgrp", "session"],
        "child starts in our group: yes\n\
         setpgid(child, child): 0\n\
         getpgid(child) is child: yes\n\
         child saw itself leading: exit 0\n\
         kill(-group, SIGTERM): 0\n\
         group leader: signal 15\n\
         setpgid(1, 1): -1 ESRCH\n\
         setpgid(0, -1): -1 EINVAL\n\
         getpgid(no such pid): -1 ESRCH\n\
         child exec'd: read 0\n\
         setpgid after child exec: -1 EACCES\n\
         exec'd child: signal 9\n\
         setsid: new session yes, getsid yes, leads group yes; again -1 EPERM; /dev/tty -1 ENXIO\n\
         grandchild in new session: yes\n\
         session child: exit 0\n\
         setsid in a group leader fails with EPERM: exit 0\n\
         setpgid into another session: -1 EPERM\n\
         other-session child: exit 0\n\
         getsid(no such pid): -1 ESRCH\n",
    );
}

#[test]
fn session_tools_and_process_listing() {
    // util-linux setsid and procps ps as real programs.
    viewos_tests::require_tool("setsid", "util-linux");
    viewos_tests::require_tool("ps", "procps");
    let o = transparent(&Cmd::sh(
        "setsid -w sh -c 'test \"$(ps -o sid= -p $$)\" -eq $$ && echo own-session'; \
         sh -c 'test \"$(ps -o pgid= -p $$)\" -ne $$ && echo same-group'; \
         ps -o stat=,comm= -p $$",
    ));
    assert_eq!(
        o.out(),
        "own-session\nsame-group\nS    sh\n",
        "{}",
        o.dump()
    );
}

#[test]
fn leader_thread_exits_first() {
    // main() calls pthread_exit; another thread ends the process later, by
    // exit(7) or by a signal: the process status is that one.
    let tmp = TempDir::new("proc-leader");
    let exe = compile_c(
        tmp.path(),
        "leader_exits",
        "#include <pthread.h>\n#include <signal.h>\n#include <stdio.h>\n#include <stdlib.h>\n#include <unistd.h>\n\
         static void *late(void *a) {\n\
             usleep(100000);\n\
             printf(\"last thread ends the process\\n\");\n\
             fflush(stdout);\n\
             if ((long)a == 0) raise(SIGTERM);\n\
             exit((int)(long)a);\n\
         }\n\
         int main(int c, char **v) {\n\
             pthread_t t;\n\
             pthread_create(&t, 0, late, (void *)(long)(c > 1 ? atoi(v[1]) : 7));\n\
             pthread_exit(0);\n\
         }\n",
        &["-pthread"],
    );
    let o = transparent(&Cmd::new([exe.as_os_str()]));
    assert_eq!(o.status.shell(), 7);
    let o = transparent(&Cmd::new([exe.as_os_str(), "0".as_ref()]));
    assert_eq!(o.status.shell(), 143);
    assert_eq!(o.out(), "last thread ends the process\n");
}
