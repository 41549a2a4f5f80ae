//! Shell scripts under umview: pipes, redirections, subshells, here-docs,
//! command substitution, traps, background jobs, SIGPIPE in `yes | head`,
//! and programs that outlive the program umview started.

use viewos_tests::{mask_numbers, require_tool, transparent, Cmd, Mode, TempDir};

const FEATURES: &str = include_str!("../fixtures/shell_features.sh");

#[test]
fn bash_script_with_pipes_redirections_heredocs_and_jobs() {
    require_tool("bash", "bash");
    let tmp = TempDir::new("shell-features");
    let script = tmp.write("shell_features.sh", FEATURES);
    let mut outputs = Vec::new();
    for mode in Mode::ALL {
        // Each run gets an empty scratch directory of its own.
        let dir = tmp.mkdir(mode.tag());
        let o = Cmd::new(["bash".as_ref(), script.as_os_str()])
            .cwd(&dir)
            .run(mode);
        outputs.push(o);
    }
    let native = &outputs[0];
    native.assert_ok();
    assert!(
        native.out().ends_with("== done\n"),
        "native run incomplete\n{}",
        native.dump()
    );
    assert!(
        native.out().contains("PIPESTATUS 141 0"),
        "{}",
        native.dump()
    );
    for view in &outputs[1..] {
        // bash reports the pids of killed jobs on stderr.
        viewos_tests::assert_same_with(native, view, mask_numbers);
    }
}

#[test]
fn posix_sh_script() {
    let script = r#"
        set -e
        i=0; while [ $i -lt 50 ]; do i=$((i + 1)); done; echo "loop $i"
        for w in $(echo c b a | tr ' ' '\n' | sort); do printf '%s.' "$w"; done; echo
        case "abc" in a*) echo "case ok";; esac
        f() { echo "function $1"; return 3; }
        f arg || echo "returned $?"
        v=$(cat <<EOF
here $i
EOF
)
        echo "$v"
        { echo grouped; } | cat
        ( exit 0 ) && echo "and-list"
        false || echo "or-list"
        exec 5>&1; echo "to fd 5" >&5; exec 5>&-
        echo "${UNSET_VAR:-default} ${#v}"
        read -r line <<EOF
first
EOF
        echo "read $line"
        sh -c 'exit 12' || echo "child $?"
    "#;
    let o = transparent(&Cmd::sh(script));
    o.assert_ok();
    assert!(o.out().contains("child 12"), "{}", o.dump());
}

#[test]
fn yes_head_sigpipe_as_outside() {
    require_tool("bash", "bash");
    // Inside the view: yes dies of SIGPIPE (141), head exits 0.
    let o = transparent(&Cmd::bash(
        "yes | head -n 3; echo \"${PIPESTATUS[*]}\"; yes | head -c 1 >/dev/null; echo \"${PIPESTATUS[*]}\"",
    ));
    assert_eq!(o.out(), "y\ny\ny\n141 0\n141 0\n");
    // The view itself in a pipeline: umview reports yes's death by SIGPIPE
    // as 141, and is not killed itself.
    let native = Cmd::bash("yes | head -n 2; echo \"${PIPESTATUS[*]}\"").run(Mode::Native);
    assert_eq!(native.out(), "y\ny\n141 0\n");
    for mode in Mode::VIEWS {
        let o = Cmd::bash(&format!(
            "{} yes | head -n 2; echo \"${{PIPESTATUS[*]}}\"",
            mode.shell_prefix()
        ))
        .run(Mode::Native);
        viewos_tests::assert_same(&native, &o);
    }
    // A big producer into a short reader, through several stages.
    let o = transparent(&Cmd::bash(
        "seq 1 10000000 | cat | head -n 2; echo \"${PIPESTATUS[*]}\"",
    ));
    assert_eq!(o.out(), "1\n2\n141 141 0\n");
}

#[test]
fn program_that_outlives_the_started_one() {
    // sh exits at once; its background child prints later. umview waits for
    // every process of the view, and reports sh's status.
    let o = transparent(&Cmd::sh("(sleep 0.3; echo late) & echo early; exit 3"));
    assert_eq!(o.out(), "early\nlate\n");
    assert_eq!(o.status.shell(), 3);
    // A double fork: the grandchild's parent is gone when it writes.
    let o = transparent(&Cmd::sh(
        "sh -c '(sleep 0.2; echo orphan; exit 9) & exit 4'; echo \"middle $?\"",
    ));
    assert_eq!(o.out(), "middle 4\norphan\n");
    // A setsid'd child in a new session, still in the view.
    require_tool("setsid", "util-linux");
    let o = transparent(&Cmd::sh(
        "setsid sh -c 'sleep 0.2; echo from-new-session' & echo started",
    ));
    assert_eq!(o.out(), "started\nfrom-new-session\n");
}

#[test]
fn command_substitution_and_redirections_with_many_processes() {
    require_tool("bash", "bash");
    let tmp = TempDir::new("shell-many");
    let script = r#"
        for i in $(seq 1 40); do echo "$(echo $i | tr 0-9 a-j)"; done > out.txt
        sort out.txt | uniq | wc -l
        n=0; for f in $(seq 1 20); do n=$((n + $(printf x | wc -c))); done; echo "n=$n"
        cat out.txt | while read -r l; do printf '%s' "${l:0:1}"; done; echo
        exec 7<out.txt; head -n 2 <&7; exec 7<&-
    "#;
    for mode in Mode::ALL {
        tmp.mkdir(mode.tag());
    }
    let native = Cmd::bash(script).cwd(tmp.join("native")).run(Mode::Native);
    native.assert_ok();
    for mode in Mode::VIEWS {
        let o = Cmd::bash(script).cwd(tmp.join(mode.tag())).run(mode);
        viewos_tests::assert_same(&native, &o);
    }
}

/// A program that signals its own process group (`kill 0`, the usual way a
/// script cleans up its jobs) must get the signal exactly as outside.
/// umview shares the program's process group, so the signal also reaches
/// umview, which must not die (SIGTERM, SIGHUP, SIGUSR1, SIGALRM: then
/// PTRACE_O_EXITKILL SIGKILLs the whole view before the program's trap
/// runs) nor stop (SIGTSTP: the view would hang).
#[test]
fn signal_to_own_process_group() {
    for (sig, want) in [
        ("TERM", "got TERM\nafter\n"),
        ("HUP", "got HUP\nafter\n"),
        ("USR1", "got USR1\nafter\n"),
        ("ALRM", "got ALRM\nafter\n"),
        ("TSTP", "got TSTP\nafter\n"),
    ] {
        let o = transparent(&Cmd::sh(&format!(
            "trap 'echo got {sig}' {sig}; kill -{sig} 0; echo after"
        )));
        assert_eq!(o.out(), want);
    }
    // The usual idiom: kill the background jobs at exit.
    let o = transparent(&Cmd::sh(
        "trap 'kill 0' EXIT; sleep 30 & echo started; exit 4",
    ));
    assert_eq!(o.out(), "started\n");
    assert_eq!(o.status.shell(), 143, "sh is killed by its own kill 0");
}
