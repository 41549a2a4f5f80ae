//! Escape attempts (issue 9): a C program (`tests/fixtures/escape.c`) run
//! in a view that hides a directory (viewfs `hide`) and keeps a tree
//! under a copy-on-write layer (viewfs `cow`) tries every way we know to
//! read the hidden file, change the protected tree, or reach the host
//! itself; each attempt prints `blocked` or `ESCAPED`. Afterwards the
//! protected tree is checked byte for byte from outside.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::os::unix::net::UnixListener;
use std::path::Path;

use viewos_tests::{compile_c, Cmd, Mode, Outcome, TempDir};

const ESCAPE: &str = include_str!("../fixtures/escape.c");

/// The attempts the fixture makes; each must print a line.
const CASES: &[&str] = &[
    "raw-syscall-instruction",
    "int80-open",
    "io_uring",
    "openat2-none",
    "openat2-no-xdev",
    "openat2-no-magiclinks",
    "openat2-no-symlinks",
    "openat2-beneath",
    "openat2-in-root",
    "openat2-cached",
    "proc-self-root",
    "proc-pid-root",
    "proc-self-fd-dir",
    "dev-fd-dir",
    "proc-self-cwd",
    "relative-from-cwd",
    "symlink-into-hidden",
    "name-to-handle",
    "open-by-handle",
    "passed-dir-fd",
    "passed-dir-fd-execveat-path",
    "clone-untraced",
    "vfork",
    "clone3-untraced",
    "host-proc-mem",
    "host-proc-environ",
    "host-proc-root",
    "host-process-vm-readv",
    "host-process-vm-writev",
    "host-ptrace-seize",
    "host-kill",
    "host-tgkill",
    "host-pidfd",
    "own-seccomp-filter",
    "personality",
    "nondumpable-open",
    "exec-hidden-program",
    "exec-hidden-loader",
    "exec-hidden-interpreter",
];

/// A program that needs no loader or library, so the kernel can also run
/// it as another program's ELF loader or a script's interpreter; placed in
/// the hidden directory, it must never run in the view.
const HIDDEN_PROGRAM: &str = r#"
static const char msg[] = "TOPSECRET-RAN\n";
void _start(void)
{
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(1), "D"(1), "S"(msg), "d"(sizeof msg - 1) : "rcx", "r11", "memory");
    __asm__ volatile("syscall" : : "a"(60), "D"(0) : "rcx", "r11", "memory");
    for (;;) {}
}
"#;

struct Setup {
    t: TempDir,
    exe: std::path::PathBuf,
}

fn setup(tag: &str) -> Setup {
    let t = TempDir::new(tag);
    t.write("secret/file", "TOPSECRET\n");
    t.write("visible", "visible\n");
    t.write("prot/f", "orig\n");
    t.mkdir("layer");
    let exe = compile_c(t.path(), "escape", ESCAPE, &["-lpthread"]);
    let hidden = compile_c(
        &t.join("secret"),
        "prog",
        HIDDEN_PROGRAM,
        &["-static", "-nostdlib", "-fno-stack-protector"],
    );
    let loader = format!("-Wl,--dynamic-linker={}", hidden.display());
    compile_c(
        t.path(),
        "hidden-loader-user",
        "int main(void) { return 7; }\n",
        &[&loader],
    );
    t.write("hidden-interp.sh", format!("#!{}\n", hidden.display()));
    std::fs::set_permissions(
        t.join("hidden-interp.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    Setup { t, exe }
}

fn spec(t: &TempDir) -> String {
    format!(
        "viewfs,hide,target={};cow,source={},target={}",
        t.join("secret").display(),
        t.join("layer").display(),
        t.join("prot").display()
    )
}

/// A handle of `p` as `TYPE:HEX`, made outside any view.
fn handle_of(exe: &Path, p: &Path) -> String {
    let out = Cmd::new([exe.as_os_str(), "--handle".as_ref(), p.as_os_str()]).run(Mode::Native);
    out.assert_ok();
    out.out().trim().to_string()
}

/// Serves one connection on `sock`: sends an fd of `dir` over it.
fn send_dir_fd_once(sock: &Path, dir: &Path) -> std::thread::JoinHandle<()> {
    let listener = UnixListener::bind(sock).expect("bind");
    let dir = std::fs::File::open(dir).expect("open dir");
    std::thread::spawn(move || {
        let Ok((mut conn, _)) = listener.accept() else {
            return;
        };
        let fd = dir.as_raw_fd();
        let mut cmsg = vec![0u8; 64];
        let mut byte = *b"x";
        let mut iov = libc::iovec {
            iov_base: byte.as_mut_ptr().cast(),
            iov_len: 1,
        };
        // SAFETY: msghdr and its control buffer are ours and sized for one
        // fd; sendmsg only reads them.
        unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = cmsg.as_mut_ptr().cast();
            msg.msg_controllen = libc::CMSG_SPACE(4) as usize;
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(4) as usize;
            std::ptr::copy_nonoverlapping(&fd as *const i32 as *const u8, libc::CMSG_DATA(c), 4);
            libc::sendmsg(conn.as_raw_fd(), &msg, 0);
        }
        let _ = conn.flush();
    })
}

fn run_attempts(s: &Setup, env: &[(&str, &str)]) -> Outcome {
    let sock = s.t.join("sock");
    let server = send_dir_fd_once(&sock, s.t.path());
    let handle = handle_of(&s.exe, &s.t.join("secret/file"));
    let mut cmd = Cmd::new([
        s.exe.as_os_str(),
        s.t.join("secret/file").as_os_str(),
        s.t.join("prot/f").as_os_str(),
        sock.as_os_str(),
        handle.as_ref(),
    ])
    .umview_opts(["-p", &spec(&s.t)])
    .timeout(std::time::Duration::from_secs(120));
    for (k, v) in env {
        cmd = cmd.env(k, v);
    }
    let out = cmd.run(Mode::View);
    let _ = server.join();
    out
}

#[test]
fn no_attempt_escapes_the_view() {
    let s = setup("escape");
    let before = std::fs::metadata(s.t.join("prot/f")).expect("stat");
    let out = run_attempts(&s, &[]);
    out.assert_ok();
    let text = out.out();
    for case in CASES {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(case))
            .unwrap_or_else(|| panic!("no line for {case}:\n{}", out.dump()));
        assert!(
            line.split_whitespace().nth(1) == Some("blocked"),
            "{line}\n{}",
            out.dump()
        );
    }
    assert!(!text.contains("ESCAPED"), "{}", out.dump());
    // The protected file: as it was, bytes, mode and times; the changes
    // are in the layer.
    let f = s.t.join("prot/f");
    assert_eq!(std::fs::read_to_string(&f).expect("read"), "orig\n");
    let after = std::fs::metadata(&f).expect("stat");
    assert_eq!(after.mode(), before.mode());
    assert_eq!(after.mtime(), before.mtime());
    assert_eq!(after.mtime_nsec(), before.mtime_nsec());
    assert!(s.t.join("layer/f").exists(), "{}", out.dump());
    assert_eq!(
        std::fs::read_to_string(s.t.join("secret/file")).expect("read"),
        "TOPSECRET\n"
    );
}

/// A second thread changes the path between the host's check and the
/// kernel's use of it: the string itself, or the page it lies in; and a
/// new file's name flips into the protected tree. The host opens real
/// files itself from the bytes it checked (`syscalls::host_open`).
#[test]
fn a_path_changed_after_the_check_does_not_escape() {
    let s = setup("escape-toctou");
    let listing = |d: &Path| {
        let mut names: Vec<String> = std::fs::read_dir(d)
            .map(|r| {
                r.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    };
    let prot_before = listing(&s.t.join("prot"));
    let f = s.t.join("prot/f");
    let meta_before = std::fs::metadata(&f).expect("stat");
    let out = run_attempts(&s, &[("ESCAPE_TOCTOU", "1")]);
    out.assert_ok();
    for case in [
        "toctou-path-flip",
        "toctou-unmapped-page",
        "toctou-exec",
        "toctou-opath-reopen",
    ] {
        let line = out
            .out()
            .lines()
            .find(|l| l.starts_with(case))
            .map(str::to_string)
            .unwrap_or_default();
        assert!(line.contains("blocked"), "{case}: {}", out.dump());
    }
    assert!(
        out.out().contains("toctou-create-in-protected made"),
        "{}",
        out.dump()
    );
    assert_eq!(
        listing(&s.t.join("prot")),
        prot_before,
        "a file was made in the protected tree\n{}",
        out.dump()
    );
    assert!(
        out.out().contains("toctou-change-protected made"),
        "{}",
        out.dump()
    );
    assert_eq!(std::fs::read_to_string(&f).expect("read"), "orig\n");
    let meta_after = std::fs::metadata(&f).expect("stat");
    assert_eq!(meta_after.mode(), meta_before.mode());
    assert_eq!(
        std::fs::read_to_string(s.t.join("secret/file")).expect("read"),
        "TOPSECRET\n"
    );
}

/// In a view without mounts the host stops no path call, and is still out
/// of reach: it is not dumpable, so the kernel refuses its memory,
/// environment and fds to the programs of its user (the guards refuse
/// signals, ptrace and `process_vm_*` as in every view). Root is let into
/// any process by the kernel, so only the user run checks it.
#[test]
fn the_host_is_out_of_reach_in_a_view_without_mounts() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        viewos_tests::report_skipped(
            "escape: the host in a view without mounts",
            "root has CAP_SYS_PTRACE, which the kernel lets into any process; the unprivileged run checks it",
        );
        return;
    }
    let s = setup("escape-host-only");
    let out = Cmd::new([s.exe.as_os_str(), "x/y/z".as_ref(), "p".as_ref()])
        .env("ESCAPE_HOST_ONLY", "1")
        .timeout(std::time::Duration::from_secs(60))
        .run(Mode::View);
    out.assert_ok();
    let text = out.out();
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("host-")).collect();
    assert!(lines.len() >= 8, "{}", out.dump());
    for l in lines {
        assert!(
            l.split_whitespace().nth(1) == Some("blocked"),
            "{l}\n{}",
            out.dump()
        );
    }
}
