//! Job control of an interactive bash on a terminal (tmux): C-z, jobs, bg,
//! fg, C-c and exit statuses, with bash inside the view, and with umview
//! as a job of a native interactive bash. Each scenario also runs fully
//! natively, as a check of the scenario itself.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use viewos_tests::{
    kill_marked, procs_with_marker, require_tool, run_with_deadline, shell_quote, unique_token,
    Mode, TempDir,
};

/// How long any one expected change of the screen may take.
const STEP: Duration = Duration::from_secs(20);
const PROMPT: &str = "VTEST> ";

/// A private tmux server (its socket in the test's temp dir), killed on
/// drop with everything in it.
struct Tmux {
    socket: PathBuf,
    marker: String,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> viewos_tests::Outcome {
        let mut c = Command::new("tmux");
        c.arg("-S")
            .arg(&self.socket)
            .arg("-f")
            .arg("/dev/null")
            .args(args);
        c.env("TERM", "xterm");
        run_with_deadline(
            &mut c,
            None,
            Duration::from_secs(20),
            &format!("tmux {args:?}"),
        )
    }

    fn start(dir: &Path, marker: &str, shell_command: &str) -> Tmux {
        require_tool("tmux", "tmux");
        let t = Tmux {
            socket: dir.join("tmux.sock"),
            marker: marker.to_string(),
        };
        t.cmd(&["new-session", "-d", "-x", "160", "-y", "50", shell_command])
            .assert_ok();
        t
    }

    fn send(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "0"];
        args.extend(keys);
        self.cmd(&args).assert_ok();
    }

    fn screen(&self) -> String {
        let o = self.cmd(&["capture-pane", "-p", "-S", "-", "-t", "0"]);
        if o.status.shell() != 0 {
            return String::new();
        }
        o.out()
    }

    /// Polls the screen until `cond` holds, or fails with the screen.
    fn wait_screen(&self, what: &str, cond: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + STEP;
        loop {
            let s = self.screen();
            if cond(&s) {
                return s;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}; the screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    /// How many prompts the screen shows (a prompt may follow "^C" on the
    /// same line).
    fn prompts(s: &str) -> usize {
        s.matches(PROMPT.trim_end()).count()
    }

    /// Sends a command line and waits for the next prompt.
    fn run_line(&self, line: &str) -> String {
        let before = Self::prompts(&self.screen());
        self.send(&[line, "Enter"]);
        self.wait_screen(&format!("the prompt after {line:?}"), |s| {
            Self::prompts(s) > before
        })
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let mut c = Command::new("tmux");
        c.arg("-S").arg(&self.socket).arg("kill-server");
        let _ = run_with_deadline(&mut c, None, Duration::from_secs(20), "tmux kill-server");
        kill_marked(&self.marker);
    }
}

/// The sleep process of the scenario: (pid, state, is in the terminal's
/// foreground process group).
fn sleeper(marker: &str) -> Option<(i32, char, bool)> {
    for (pid, line) in procs_with_marker(marker) {
        if !line.starts_with("sleep ") {
            continue;
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let rest: Vec<&str> = stat[stat.rfind(')')? + 2..].split(' ').collect();
        // after the name: state ppid pgrp session tty_nr tpgid
        let state = rest[0].chars().next()?;
        let pgrp: i32 = rest[2].parse().ok()?;
        let tpgid: i32 = rest[5].parse().ok()?;
        return Some((pid, state, pgrp == tpgid));
    }
    None
}

fn wait_sleeper(marker: &str, what: &str, cond: impl Fn(char, bool) -> bool) {
    viewos_tests::wait_until(STEP, what, || {
        sleeper(marker).is_some_and(|(_, st, fg)| cond(st, fg))
    });
}

/// The outer command of the tmux pane: `inner` with a fixed prompt and no
/// history file outside the temp dir; its exit status lands in `status`.
fn pane_command(dir: &Path, inner: &str) -> String {
    let status = dir.join("status");
    format!(
        "env PS1={} HISTFILE={} {inner}; echo \"EXITED $?\" > {}",
        shell_quote(PROMPT),
        shell_quote(&dir.join("history").to_string_lossy()),
        shell_quote(&status.to_string_lossy())
    )
}

fn wait_exit_status(dir: &Path) -> String {
    let status = dir.join("status");
    viewos_tests::wait_until(STEP, "the pane's command to end", || {
        std::fs::read_to_string(&status).is_ok_and(|s| s.ends_with('\n'))
    });
    std::fs::read_to_string(&status).unwrap().trim().to_string()
}

/// `[umview] bash -i`: sleep, C-z, jobs, bg, jobs, fg, C-c, echo $?, a
/// stopped pipeline killed with kill %1, exit.
fn bash_in_view(mode: Mode) {
    require_tool("bash", "bash");
    let tmp = TempDir::new(&format!("jobs-{}", mode.tag()));
    let marker = format!("100.{}", unique_token());
    let inner = format!("{} bash --norc --noprofile -i", mode.shell_prefix());
    let t = Tmux::start(
        tmp.path(),
        &marker,
        &pane_command(tmp.path(), inner.trim_start()),
    );
    let ctx = mode.name();
    t.wait_screen("the first prompt", |s| Tmux::prompts(s) == 1);

    t.send(&[&format!("sleep {marker}"), "Enter"]);
    wait_sleeper(&marker, "sleep to run in the foreground", |st, fg| {
        st == 'S' && fg
    });
    t.send(&["C-z"]);
    let s = t.wait_screen("Stopped after C-z", |s| {
        s.contains("Stopped") && Tmux::prompts(s) == 2
    });
    assert!(s.contains(&format!("sleep {marker}")), "[{ctx}] {s}");
    wait_sleeper(&marker, "sleep to be stopped", |st, fg| {
        matches!(st, 'T' | 't') && !fg
    });

    let s = t.run_line("jobs");
    assert!(
        s.contains(&format!("[1]+  Stopped                 sleep {marker}")),
        "[{ctx}] {s}"
    );
    let s = t.run_line("bg");
    assert!(s.contains(&format!("[1]+ sleep {marker} &")), "[{ctx}] {s}");
    wait_sleeper(&marker, "sleep to run in the background", |st, fg| {
        st == 'S' && !fg
    });
    let s = t.run_line("jobs");
    assert!(
        s.contains(&format!("[1]+  Running                 sleep {marker} &")),
        "[{ctx}] {s}"
    );

    let before = Tmux::prompts(&t.screen());
    t.send(&["fg", "Enter"]);
    wait_sleeper(&marker, "sleep to be in the foreground again", |st, fg| {
        st == 'S' && fg
    });
    t.send(&["C-c"]);
    t.wait_screen("the prompt after C-c", |s| Tmux::prompts(s) > before);
    viewos_tests::wait_until(STEP, "sleep to die of C-c", || sleeper(&marker).is_none());
    let s = t.run_line("echo \"status=$?\"");
    assert!(
        s.lines().any(|l| l == "status=130"),
        "[{ctx}] after C-c, $? is not 130:\n{s}"
    );

    // A stopped pipeline, killed from the prompt.
    t.send(&[&format!("sleep {marker} | cat"), "Enter"]);
    wait_sleeper(
        &marker,
        "the pipeline to run in the foreground",
        |st, fg| st == 'S' && fg,
    );
    let before = Tmux::prompts(&t.screen());
    t.send(&["C-z"]);
    t.wait_screen("Stopped pipeline", |s| Tmux::prompts(s) > before);
    wait_sleeper(&marker, "the pipeline to be stopped", |st, _| {
        matches!(st, 'T' | 't')
    });
    t.run_line("kill %1");
    viewos_tests::wait_until(STEP, "the killed pipeline to end", || {
        sleeper(&marker).is_none()
    });
    let s = t.run_line("jobs; echo jobs-done");
    assert!(s.contains("jobs-done"), "[{ctx}] {s}");
    t.run_line("(exit 7)");
    t.send(&["exit", "Enter"]);
    // bash exits with the last status (7), and umview with bash's.
    assert_eq!(
        wait_exit_status(tmp.path()),
        "EXITED 7",
        "[{ctx}] {}",
        t.screen()
    );
}

#[test]
fn interactive_bash_job_control_native_reference() {
    bash_in_view(Mode::Native);
}

#[test]
fn interactive_bash_job_control_in_view() {
    bash_in_view(Mode::View);
}

#[test]
fn interactive_bash_job_control_in_view_no_seccomp() {
    bash_in_view(Mode::ViewNoSeccomp);
}

/// A native `bash -i` runs `[umview] sleep` as a job: C-z stops the job
/// (umview and sleep), bg and fg continue it, C-c ends it with 130.
fn view_as_a_job(mode: Mode) {
    require_tool("bash", "bash");
    let tmp = TempDir::new(&format!("job-{}", mode.tag()));
    let marker = format!("100.{}", unique_token());
    let t = Tmux::start(
        tmp.path(),
        &marker,
        &pane_command(tmp.path(), "bash --norc --noprofile -i"),
    );
    let ctx = mode.name();
    t.wait_screen("the first prompt", |s| Tmux::prompts(s) == 1);
    let job = format!("{} sleep {marker}", mode.shell_prefix());
    let job = job.trim_start().to_string();
    t.send(&[&job, "Enter"]);
    wait_sleeper(&marker, "sleep to run in the foreground", |st, fg| {
        st == 'S' && fg
    });
    t.send(&["C-z"]);
    let s = t.wait_screen("Stopped after C-z", |s| {
        s.contains("Stopped") && Tmux::prompts(s) == 2
    });
    assert!(
        s.contains(&format!("Stopped                 {job}")),
        "[{ctx}] {s}"
    );
    let s = t.run_line("bg");
    assert!(s.contains(&format!("[1]+ {job} &")), "[{ctx}] {s}");
    wait_sleeper(&marker, "sleep to run in the background", |st, fg| {
        st == 'S' && !fg
    });
    let s = t.run_line("jobs");
    assert!(s.contains("Running"), "[{ctx}] {s}");
    let before = Tmux::prompts(&t.screen());
    t.send(&["fg", "Enter"]);
    wait_sleeper(&marker, "sleep to be in the foreground again", |st, fg| {
        st == 'S' && fg
    });
    t.send(&["C-c"]);
    t.wait_screen("the prompt after C-c", |s| Tmux::prompts(s) > before);
    let s = t.run_line("echo \"status=$?\"");
    assert!(
        s.lines().any(|l| l == "status=130"),
        "[{ctx}] after C-c, $? is not 130:\n{s}"
    );
    viewos_tests::wait_until(STEP, "sleep to be gone", || {
        procs_with_marker(&marker).is_empty()
    });
    t.send(&["exit", "Enter"]);
    assert_eq!(
        wait_exit_status(tmp.path()),
        "EXITED 0",
        "[{ctx}] {}",
        t.screen()
    );
}

#[test]
fn view_as_a_job_of_interactive_bash() {
    view_as_a_job(Mode::View);
}

#[test]
fn view_as_a_job_of_interactive_bash_no_seccomp() {
    view_as_a_job(Mode::ViewNoSeccomp);
}
