//! Debian's /usr/bin/python3 under umview: threads, subprocesses,
//! multiprocessing (fork, spawn, forkserver), signals.

use viewos_tests::{python3, transparent, Cmd, TempDir};

const PY_THREADS: &str = include_str!("../fixtures/py_threads.py");

#[test]
fn threads_subprocesses_and_multiprocessing() {
    let py = python3();
    let tmp = TempDir::new("python");
    let script = tmp.write("py_threads.py", PY_THREADS);
    let o = transparent(&Cmd::new([py.as_os_str(), script.as_os_str()]).cwd(tmp.path()));
    o.assert_ok();
    let out = o.out();
    for line in [
        "queue workers: sum 9900 count 100",
        "sort via subprocess: ['1', '2', '10', '33'] rc 0",
        "child python exit: 17",
        "child killed by signal: -15",
        "shell pipeline: 1 a | 2 b",
        "cat round trip of 1 MB: True rc 0",
        "subprocess timeout: child killed",
        "missing program: FileNotFoundError 2",
        "subprocess from threads: True",
        "fork with a thread running: exit 23",
        "posix_spawn exit: 5",
        "multiprocessing fork: 285 True",
        "multiprocessing spawn: 285 True",
        "multiprocessing forkserver: 285 True",
        "SIGUSR1 handled: 2 times",
        "read in a thread across a signal: b'hello'",
    ] {
        assert!(
            out.lines().any(|l| l == line),
            "missing line {line:?} in:\n{out}"
        );
    }
}

#[test]
fn interpreter_basics() {
    let py = python3();
    // Exit codes, an uncaught exception (status 1, traceback on stderr),
    // death by signal, stdin.
    transparent(&Cmd::new([
        py.as_os_str(),
        "-c".as_ref(),
        "import sys; sys.exit(42)".as_ref(),
    ]));
    let o = transparent(&Cmd::new([
        py.as_os_str(),
        "-c".as_ref(),
        "raise ValueError('boom')".as_ref(),
    ]));
    assert_eq!(o.status.shell(), 1);
    assert!(o.err().contains("ValueError: boom"), "{}", o.dump());
    let o = transparent(&Cmd::new([
        py.as_os_str(),
        "-c".as_ref(),
        "import os, signal; os.kill(os.getpid(), signal.SIGTERM)".as_ref(),
    ]));
    assert_eq!(o.status.shell(), 143);
    let o = transparent(
        &Cmd::new([
            py.as_os_str(),
            "-c".as_ref(),
            "import sys; print(sum(int(l) for l in sys.stdin))".as_ref(),
        ])
        .stdin("1\n2\n3\n"),
    );
    assert_eq!(o.out(), "6\n");
}
