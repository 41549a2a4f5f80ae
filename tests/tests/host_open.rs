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
