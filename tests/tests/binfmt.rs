//! umbinfmt: binfmt_misc inside a view. Formats registered in the view
//! (never on the host) run `.foo` files with Debian's python3 and aarch64
//! binaries with Debian's qemu-aarch64; interpreters nest with `#!`
//! scripts; bad registrations and bad interpreters fail with the kernel's
//! errno values. Outputs are compared with running the interpreter
//! directly, natively.

use std::path::Path;

use viewos_tests::{
    python3, quote_path, require_tool, run_native, view_command, Cmd, Mode, TempDir,
};

const MNT: &str = "/proc/sys/fs/binfmt_misc";

/// A python script that prints its argv.
const SHOW_ARGV: &str =
    "import sys\nprint('argv', sys.argv[1:], sys.argv[0].endswith(('.foo', '.foop')))\n";

/// A python program that execs argv[1:] and prints the errno if it fails
/// (unlike a shell, which runs a file the kernel refuses as a script).
const EXEC_TRY: &str = "import os, sys, errno\ntry:\n    os.execv(sys.argv[1], sys.argv[1:])\nexcept OSError as e:\n    print('exec', errno.errorcode[e.errno])\n";

/// Runs `script` with bash in a view with umbinfmt mounted on the usual
/// place, in `dir`.
fn in_view(mode: Mode, dir: &Path, script: &str) -> viewos_tests::Outcome {
    let mount = format!(
        "{} -t umbinfmt none {MNT} || exit 99\n",
        quote_path(&view_command("viewmount"))
    );
    Cmd::bash(&format!("{mount}{script}"))
        .umview_opts(["-p", "umbinfmt"])
        .cwd(dir)
        .run(mode)
}

fn native_out(argv: &[&str], dir: &Path) -> String {
    let o = std::process::Command::new(argv[0])
        .args(&argv[1..])
        .current_dir(dir)
        .output()
        .expect("runs natively");
    assert!(o.status.success(), "{argv:?}: {o:?}");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn executable(tmp: &TempDir, name: &str, text: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = tmp.write(name, text);
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    p
}

#[test]
fn extension_entry_runs_python() {
    let py = python3();
    let tmp = TempDir::new("binfmt-ext");
    executable(&tmp, "hello.foo", SHOW_ARGV);
    executable(&tmp, "hello.foop", SHOW_ARGV);
    // What binfmt_misc gives: `python3 FILE ARGS` without P, `python3
    // FILE ARGV0 ARGS` with P.
    let plain = native_out(
        &[py.to_str().unwrap(), "./hello.foo", "a", "b c"],
        tmp.path(),
    );
    let kept = native_out(
        &[py.to_str().unwrap(), "./hello.foop", "myname", "a"],
        tmp.path(),
    );
    let py = py.display();
    for mode in Mode::VIEWS {
        let o = in_view(
            mode,
            tmp.path(),
            &format!(
                "echo ':foo:E::foo::{py}:' > {MNT}/register || exit 2\n\
                 echo '|foop|E||foop||{py}|P' > {MNT}/register || exit 3\n\
                 ls {MNT}; echo ---; cat {MNT}/foo {MNT}/foop {MNT}/status; echo ---\n\
                 ./hello.foo a 'b c' || exit 4\n\
                 (exec -a myname ./hello.foop a) || exit 5\n"
            ),
        );
        o.assert_ok();
        let expected = format!(
            "foo\nfoop\nregister\nstatus\n---\n\
             enabled\ninterpreter {py}\nflags: \nextension .foo\n\
             enabled\ninterpreter {py}\nflags: P\nextension .foop\n\
             enabled\n---\n{plain}{kept}"
        );
        assert_eq!(o.out(), expected, "[{}] {}", mode.name(), o.dump());
    }
}

#[test]
fn status_and_entry_commands() {
    let py = python3();
    let tmp = TempDir::new("binfmt-cmd");
    executable(&tmp, "hello.foo", SHOW_ARGV);
    tmp.write("exectry.py", EXEC_TRY);
    let try_exec = format!("{} exectry.py ./hello.foo x", py.display());
    for mode in Mode::VIEWS {
        let o = in_view(
            mode,
            tmp.path(),
            &format!(
                "echo ':foo:E::foo::{py}:' > {MNT}/register\n\
                 {try_exec}\n\
                 echo 0 > {MNT}/foo; head -1 {MNT}/foo; {try_exec}\n\
                 echo 1 > {MNT}/foo; head -1 {MNT}/foo; {try_exec}\n\
                 echo 0 > {MNT}/status; cat {MNT}/status; {try_exec}\n\
                 echo 1 > {MNT}/status; cat {MNT}/status; {try_exec}\n\
                 echo -1 > {MNT}/foo; ls {MNT}/foo 2>/dev/null || echo removed; {try_exec}\n\
                 echo ':a:E::a::/bin/sh:' > {MNT}/register; echo ':b:E::b::/bin/sh:' > {MNT}/register\n\
                 echo -1 > {MNT}/status; ls {MNT} | tr '\\n' ' '; echo\n",
                py = py.display()
            ),
        );
        o.assert_ok();
        let ran = "argv ['x'] True\n";
        let refused = "exec ENOEXEC\n";
        let expected = format!(
            "{ran}disabled\n{refused}enabled\n{ran}disabled\n{refused}enabled\n{ran}removed\n{refused}register status \n"
        );
        assert_eq!(o.out(), expected, "[{}] {}", mode.name(), o.dump());
    }
}

#[test]
fn bad_registrations_are_refused_as_by_the_kernel() {
    let py = python3();
    let tmp = TempDir::new("binfmt-bad");
    tmp.write("exectry.py", EXEC_TRY);
    executable(&tmp, "a.nx", "data\n");
    // Each string is written in one write(2); the errno is printed.
    let writer = "import os, sys, errno\nfd = os.open(sys.argv[1], os.O_WRONLY)\n\
                  for s in sys.argv[2:]:\n    try:\n        os.write(fd, s.encode().decode('unicode_escape').encode('latin-1'))\n        print('ok')\n    except OSError as e:\n        print(errno.errorcode[e.errno])\n";
    tmp.write("writer.py", writer);
    let cases: &[(&str, &str)] = &[
        (":n:X::foo::/bin/sh:", "EINVAL"),          // bad type
        ("::E::foo::/bin/sh:", "EINVAL"),           // empty name
        (":..:E::foo::/bin/sh:", "EINVAL"),         // reserved name
        (":a/b:E::foo::/bin/sh:", "EINVAL"),        // a slash in the name
        (":n:E::::/bin/sh:", "EINVAL"),             // empty extension
        (":n:E::foo::/bin/sh", "EINVAL"),           // no last delimiter
        (":n:E::foo::/bin/sh:Z", "EINVAL"),         // unknown flag
        (":n:E::foo:::", "EINVAL"),                 // empty interpreter
        (":n:M:-1:ab::/bin/sh:", "EINVAL"),         // negative offset
        (":n:M:255:ab::/bin/sh:", "EINVAL"),        // past the 256-byte buffer
        (":n:M::ab:\\\\xff:/bin/sh:", "EINVAL"),    // mask shorter than magic
        (":n:M::\\\\x7::/bin/sh:", "EINVAL"),       // a cut escape
        (":n:E:", "EINVAL"),                        // too short
        (":n:E::foo::/no/such/interp:F", "ENOENT"), // F opens it now
        (":status:E::foo::/bin/sh:", "EEXIST"),     // the name is taken
        (":nx:E::nx::/no/such/interp:", "ok"),
        (":nx:E::nx::/bin/sh:", "EEXIST"),
    ];
    let args: Vec<String> = cases.iter().map(|(s, _)| format!("'{s}'")).collect();
    let py = py.display();
    for mode in Mode::VIEWS {
        let o = in_view(
            mode,
            tmp.path(),
            &format!(
                "{py} writer.py {MNT}/register {}\n\
                 {py} writer.py {MNT}/nx 2 '0\\n\\n' 1\n\
                 ls {MNT} | tr '\\n' ' '; echo\n\
                 {py} exectry.py ./a.nx\n",
                args.join(" ")
            ),
        );
        o.assert_ok();
        let mut expected: String = cases.iter().map(|(_, e)| format!("{e}\n")).collect();
        // Commands other than 0, 1, -1 are EINVAL; a missing interpreter
        // is the exec's ENOENT, as the kernel's open_exec gives.
        expected.push_str("EINVAL\nEINVAL\nok\nnx register status \nexec ENOENT\n");
        assert_eq!(o.out(), expected, "[{}] {}", mode.name(), o.dump());
    }
}

#[test]
fn interpreters_nest_with_scripts() {
    let py = python3();
    let tmp = TempDir::new("binfmt-nest");
    let dir = tmp.path().display().to_string();
    executable(&tmp, "run.foo", SHOW_ARGV);
    executable(&tmp, "x.bar", "");
    executable(&tmp, "x.wr", "");
    executable(&tmp, "x.loop", "");
    // An interpreter that is a #! script.
    executable(&tmp, "wrap.sh", "#!/bin/sh\necho \"wrap: $*\"\n");
    // A #! script whose interpreter is a claimed file.
    executable(
        &tmp,
        "script",
        &format!("#!{dir}/run.foo opt one\nignored\n"),
    );
    tmp.write("exectry.py", EXEC_TRY);
    let py_s = py.display();
    // What the kernel would run natively if it had the entries.
    let chained = native_out(
        &[
            py.to_str().unwrap(),
            &format!("{dir}/run.foo"),
            "./x.bar",
            "a",
        ],
        tmp.path(),
    );
    let scripted = native_out(
        &[
            py.to_str().unwrap(),
            &format!("{dir}/run.foo"),
            "opt one",
            "./script",
            "a",
        ],
        tmp.path(),
    );
    for mode in Mode::VIEWS {
        let o = in_view(
            mode,
            tmp.path(),
            &format!(
                "echo ':foo:E::foo::{py_s}:' > {MNT}/register\n\
                 echo ':bar:E::bar::{dir}/run.foo:' > {MNT}/register\n\
                 echo ':wr:E::wr::{dir}/wrap.sh:' > {MNT}/register\n\
                 echo ':loop:E::loop::{dir}/x.loop:' > {MNT}/register\n\
                 ./x.bar a\n./script a\n./x.wr a b\n\
                 {py_s} exectry.py ./x.loop\n"
            ),
        );
        o.assert_ok();
        let expected = format!("{chained}{scripted}wrap: ./x.wr a b\nexec ELOOP\n");
        assert_eq!(o.out(), expected, "[{}] {}", mode.name(), o.dump());
    }
}

/// The magic and mask of Debian's qemu-aarch64 binfmt entry (ELF64,
/// little-endian, executable or shared object, machine 183).
const AARCH64_MAGIC: &str =
    "\\x7fELF\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\xb7\\x00";
const AARCH64_MASK: &str = "\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff";

#[test]
fn magic_entry_runs_aarch64_under_qemu() {
    let gcc = require_tool("aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu");
    let qemu = require_tool("qemu-aarch64", "qemu-user");
    let tmp = TempDir::new("binfmt-qemu");
    let src = tmp.write(
        "hello.c",
        "#include <stdio.h>\nint main(int argc, char **argv) {\n\
         printf(\"hello from aarch64, argc %d:\", argc);\n\
         for (int i = 1; i < argc; i++) printf(\" %s\", argv[i]);\n\
         printf(\"\\n\");\n return 3;\n}\n",
    );
    let bin = tmp.join("hello-arm64");
    let o = run_native(&[
        gcc.to_str().unwrap(),
        "-static",
        "-O2",
        "-o",
        bin.to_str().unwrap(),
        src.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "aarch64 build failed: {o:?}");
    tmp.write("exectry.py", EXEC_TRY);
    // The host has no entry for it: natively the kernel refuses it.
    let native = native_out(
        &[python3().to_str().unwrap(), "exectry.py", "./hello-arm64"],
        tmp.path(),
    );
    assert_eq!(
        native, "exec ENOEXEC\n",
        "the host runs aarch64 binaries by itself"
    );
    let reference = std::process::Command::new(&qemu)
        .args(["./hello-arm64", "x", "y"])
        .current_dir(tmp.path())
        .output()
        .expect("qemu runs");
    assert_eq!(reference.status.code(), Some(3));
    let reference = String::from_utf8_lossy(&reference.stdout).into_owned();
    assert_eq!(reference, "hello from aarch64, argc 3: x y\n");
    let qemu = qemu.display();
    for mode in Mode::VIEWS {
        for flags in ["", "F", "OF"] {
            let o = in_view(
                mode,
                tmp.path(),
                &format!(
                    "printf '%s' ':qemu-aarch64:M::{AARCH64_MAGIC}:{AARCH64_MASK}:{qemu}:{flags}' > {MNT}/register || exit 2\n\
                     grep -v interpreter {MNT}/qemu-aarch64\n\
                     ./hello-arm64 x y; echo \"rc $?\"\n"
                ),
            );
            o.assert_ok();
            let expected = format!(
                "enabled\nflags: {flags}\noffset 0\n\
                 magic 7f454c460201010000000000000000000200b700\n\
                 mask ffffffffffffff00fffffffffffffffffeffffff\n\
                 {reference}rc 3\n"
            );
            assert_eq!(o.out(), expected, "[{}] {}", mode.name(), o.dump());
        }
    }
}

/// The `C` flag in a view with identities (`--root-id`): a set-user-ID
/// file run through an entry gives the view's effective uid of the
/// file's owner (as the view shows it), not the interpreter's; without
/// the flag the effective uid stays the caller's. The real ids never
/// change.
#[test]
fn credentials_flag_takes_set_id_bits_from_the_file() {
    let t = TempDir::new("binfmt-cred");
    let py = viewos_tests::python3().display().to_string();
    let prog = executable(
        &t,
        "prog.foo",
        "import os\nprint(os.getuid(), os.geteuid())\n",
    );
    let mount = format!(
        "{} -t umbinfmt none {MNT} || exit 99\n",
        quote_path(&view_command("viewmount"))
    );
    for (flags, want) in [("C", "1000 1234\n"), ("", "1000 1000\n")] {
        let script = format!(
            "{mount}chown 1234 prog.foo && chmod 4755 prog.foo || exit 2\n\
             echo ':foo:E::foo::{py}:{flags}' > {MNT}/register || exit 3\n\
             {py} -c 'import os; os.setuid(1000); os.execv(\"./prog.foo\", [\"prog.foo\"])'\n"
        );
        let out = Cmd::bash(&script)
            .umview_opts(["--root-id", "-p", "umbinfmt"])
            .cwd(t.path())
            .run(Mode::View);
        out.assert_ok();
        assert_eq!(out.out(), want, "flags {flags:?}: {}", out.dump());
    }
    // A user's view remembers the chown; real root's chowns for real.
    let real = std::fs::metadata(&prog).expect("prog.foo");
    use std::os::unix::fs::MetadataExt;
    // SAFETY: getuid has no preconditions.
    let me = unsafe { libc::getuid() };
    let want = if me == 0 { 1234 } else { me };
    assert_eq!(real.uid(), want, "the real owner");
}

/// An interpreter that reports what binfmt_misc's `O` flag gives it: the
/// program as an open fd named by `AT_EXECFD` in its auxiliary vector.
const EXECFD_INTERP: &str = r#"
#include <stdio.h>
#include <sys/auxv.h>
#include <unistd.h>
int main(int argc, char **argv)
{
    long fd = (long)getauxval(AT_EXECFD);
    char buf[64] = {0};
    ssize_t n = fd > 2 ? pread((int)fd, buf, sizeof buf - 1, 0) : -1;
    printf("argc=%d argv1=%s execfd=%s data=%s", argc, argc > 1 ? argv[1] : "-",
           fd > 2 ? "yes" : "no", n > 0 ? buf : "none\n");
    return 0;
}
"#;

#[test]
fn open_binary_flag_passes_the_program_as_an_fd() {
    let t = TempDir::new("binfmt-execfd");
    let interp = viewos_tests::compile_c(t.path(), "interp", EXECFD_INTERP, &[]);
    executable(&t, "x.foo", "payload\n");
    for mode in Mode::VIEWS {
        for (flags, want) in [
            ("O", "argc=2 argv1=./x.foo execfd=yes data=payload\n"),
            ("", "argc=2 argv1=./x.foo execfd=no data=none\n"),
        ] {
            let script = format!(
                "echo ':foo:E::foo::{}:{flags}' > {MNT}/register || exit 3\n./x.foo\n",
                interp.display()
            );
            let out = in_view(mode, t.path(), &script);
            out.assert_ok();
            assert_eq!(out.out(), want, "{mode:?} flags {flags:?}: {}", out.dump());
        }
    }
}
