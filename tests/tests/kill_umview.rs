//! Killing umview (SIGKILL, SIGTERM, SIGHUP) ends every process of the view:
//! running, stopped, in another session, multithreaded.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use viewos_tests::{kill_marked, procs_with_marker, python3, unique_token, Mode};

const SETTLE: Duration = Duration::from_secs(30);

/// The state letter of /proc/PID/stat.
fn state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

fn kill_view(mode: Mode, signal: i32) {
    // `sleep 1000.<digits>`: a unique marker that is also a valid duration.
    let marker = format!("1000.{}", unique_token());
    let py = python3();
    let script = format!(
        "sleep {marker} & \
         sh -c 'kill -STOP $$' stopped-{marker} & \
         setsid sleep {marker} & \
         {py} -c 'import threading, time; [threading.Thread(target=time.sleep, args=(1000,)).start() for _ in range(3)]' {marker} & \
         wait",
        py = py.display()
    );
    let mut argv = mode.prefix();
    argv.extend(["sh".into(), "-c".into(), script.into()]);
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start umview");
    let pid = child.id() as i32;
    let fail = |child: &mut std::process::Child, msg: String| -> ! {
        viewos_tests::kill_tree(child);
        kill_marked(&marker);
        panic!("[{}] {msg}", mode.name());
    };

    // Everything started: two sleeps (one in a session of its own), a
    // stopped sh, python with its threads.
    let deadline = Instant::now() + SETTLE;
    loop {
        let procs = procs_with_marker(&marker);
        let sleeps = procs
            .iter()
            .filter(|(_, l)| l.starts_with("sleep "))
            .count();
        let pys = procs
            .iter()
            .filter(|(_, l)| l.starts_with(py.to_str().unwrap()))
            .count();
        let stopped = procs
            .iter()
            .filter(|(p, l)| l.contains("stopped-") && matches!(state(*p), Some('T' | 't')))
            .count();
        if sleeps == 2 && pys == 1 && stopped == 1 {
            break;
        }
        if Instant::now() > deadline {
            fail(
                &mut child,
                format!("the view did not start its processes: {procs:?}"),
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }

    // SAFETY: signalling the umview process this test started.
    unsafe { libc::kill(pid, signal) };
    let deadline = Instant::now() + SETTLE;
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if Instant::now() > deadline {
            fail(
                &mut child,
                format!(
                    "umview still runs {} s after signal {signal}",
                    SETTLE.as_secs()
                ),
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let deadline = Instant::now() + SETTLE;
    loop {
        let left = procs_with_marker(&marker);
        if left.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            fail(
                &mut child,
                format!(
                    "umview ended ({status}) after signal {signal}, but processes of the view are still alive {} s later: {left:?}",
                    SETTLE.as_secs()
                ),
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigkill_to_umview_ends_the_view() {
    kill_view(Mode::View, libc::SIGKILL);
}

#[test]
fn sigkill_to_umview_no_seccomp_ends_the_view() {
    kill_view(Mode::ViewNoSeccomp, libc::SIGKILL);
}

#[test]
fn sigterm_to_umview_ends_the_view() {
    kill_view(Mode::View, libc::SIGTERM);
}

#[test]
fn sigterm_to_umview_no_seccomp_ends_the_view() {
    kill_view(Mode::ViewNoSeccomp, libc::SIGTERM);
}

#[test]
fn sighup_to_umview_ends_the_view() {
    kill_view(Mode::View, libc::SIGHUP);
}

#[test]
fn sighup_to_umview_no_seccomp_ends_the_view() {
    kill_view(Mode::ViewNoSeccomp, libc::SIGHUP);
}

/// umview ignores SIGINT and SIGQUIT sent to it alone (they are the
/// keyboard's, meant for the foreground programs): the view goes on.
fn keyboard_signals_spare_the_view(mode: Mode) {
    use std::io::{BufRead, BufReader, Write};
    let mut argv = mode.prefix();
    argv.extend([
        "sh".into(),
        "-c".into(),
        "echo ready; read x; echo \"done $x\"".into(),
    ]);
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start umview");
    let pid = child.id() as i32;
    let mut stdin = child.stdin.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let _ = tx.send(line.unwrap_or_default());
        }
    });
    let first = rx.recv_timeout(SETTLE);
    if first.as_deref() != Ok("ready") {
        viewos_tests::kill_tree(&mut child);
        panic!("[{}] no \"ready\" from the program: {first:?}", mode.name());
    }
    for sig in [libc::SIGINT, libc::SIGQUIT] {
        // SAFETY: signalling the umview process this test started.
        unsafe { libc::kill(pid, sig) };
    }
    stdin.write_all(b"go\n").unwrap();
    drop(stdin);
    let last = rx.recv_timeout(SETTLE);
    let deadline = Instant::now() + SETTLE;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            viewos_tests::kill_tree(&mut child);
            panic!("[{}] umview did not end", mode.name());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(
        last.as_deref(),
        Ok("done go"),
        "[{}] the program did not finish",
        mode.name()
    );
    assert_eq!(status.code(), Some(0), "[{}] umview: {status}", mode.name());
}

#[test]
fn sigint_and_sigquit_to_umview_spare_the_view() {
    keyboard_signals_spare_the_view(Mode::View);
    keyboard_signals_spare_the_view(Mode::ViewNoSeccomp);
}
