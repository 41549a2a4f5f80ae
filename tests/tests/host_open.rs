//! In a view with mounts the host makes opens of real files itself, from
//! the path it checked (issue 9: a second thread cannot swap the path
//! between the host's check and the kernel's read). Those opens must do
//! what the program's own open(2) would: this runs the same Python script
//! (`tests/fixtures/opens.py`: creation with the umask, `O_EXCL`,
//! `O_NOFOLLOW`, `O_DIRECTORY`, `O_TMPFILE`, `O_TRUNC`, fifos that wait
//! for a writer, `/dev/tty`, `openat` with `..`, permissions, the file
//! status flags the program sees) natively and in a view that hides an
//! unrelated directory, and compares.

use viewos_tests::{assert_same, python3, quote_path as q, require_tool, Cmd, Mode, TempDir};

const OPENS: &str = include_str!("../fixtures/opens.py");

/// Runs the script in a fresh directory natively and in a view with a
/// `hide` mount, through `wrap` (a shell word list the command goes into).
fn compare(tag: &str, wrap: impl Fn(&str) -> Cmd) {
    let t = TempDir::new(tag);
    let script = t.write("opens.py", OPENS);
    t.mkdir("native");
    t.mkdir("view");
    t.mkdir("hidden");
    let py = python3();
    let native = wrap(&format!(
        "{} {} {}",
        q(&py),
        q(&script),
        q(&t.join("native"))
    ))
    .run(Mode::Native);
    let view = wrap(&format!(
        "{} -p {} {} {} {}",
        Mode::View.shell_prefix(),
        q(std::path::Path::new(&format!(
            "viewfs,hide,target={}",
            t.join("hidden").display()
        ))),
        q(&py),
        q(&script),
        q(&t.join("view"))
    ))
    .run(Mode::Native);
    native.assert_ok();
    assert!(
        native.out().contains("fifo [b'via fifo']"),
        "{}",
        native.dump()
    );
    assert_same(&native, &view);
}

#[test]
fn opens_in_a_view_with_mounts_are_the_kernels() {
    compare("host-open", Cmd::sh);
}

/// With a controlling terminal (`script` gives one), `/dev/tty` is the
/// program's terminal, not the host's.
#[test]
fn dev_tty_is_the_programs_terminal() {
    let script = require_tool("script", "bsdutils");
    compare("host-open-tty", |cmd| {
        Cmd::new([
            script.as_os_str(),
            "-qec".as_ref(),
            cmd.as_ref(),
            "/dev/null".as_ref(),
        ])
    });
}

/// A root host makes opens for its programs only while their credentials
/// are its own: a program that dropped to `nobody` is refused a root-only
/// file as the kernel refuses it (the host compares once per thread and
/// stops the credential calls to compare again).
#[test]
fn a_root_program_that_changed_ids_gets_the_kernels_answer() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        viewos_tests::report_skipped(
            "host_open: credentials that differ from the host's",
            "only root can change its ids; the root run checks it",
        );
        return;
    }
    let t = TempDir::new("host-open-ids");
    let secret = t.write("root-only", "root's\n");
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");
    t.mkdir("hidden");
    let py = format!(
        "import os\n\
         print(open({s:?}).read().strip())\n\
         os.setgroups([]); os.setgid(65534); os.setuid(65534)\n\
         try:\n    open({s:?}); print('opened')\n\
         except PermissionError: print('EACCES')\n",
        s = secret.display().to_string()
    );
    let run = |mode: Mode| {
        let cmd = Cmd::new([python3().as_os_str(), "-c".as_ref(), py.as_ref()]).umview_opts([
            "-p",
            &format!("viewfs,hide,target={}", t.join("hidden").display()),
        ]);
        cmd.run(mode)
    };
    let native = run(Mode::Native);
    native.assert_ok();
    assert_eq!(native.out(), "root's\nEACCES\n");
    assert_same(&native, &run(Mode::View));
}
