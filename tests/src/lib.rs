//! Helpers for the end-to-end tests: run a real program natively and under
//! `umview`, and compare.
//!
//! Every process a test starts goes through [`Cmd::run`], which gives it a
//! deadline: a process still running then is killed (with its whole process
//! group) and the test fails with a message naming it. Tests write only
//! inside the unique directories [`TempDir`] makes under
//! [`std::env::temp_dir`]; they never assume root or a `HOME`.
//!
//! The usual shape of a test:
//!
//! ```no_run
//! use viewos_tests::{Cmd, transparent};
//! // Runs natively, then under `umview` and `umview --no-seccomp`, and
//! // asserts the same exit status, stdout and stderr.
//! transparent(&Cmd::new(["sort", "-n"]).stdin("3\n1\n2\n"));
//! ```

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

/// The deadline of every process a test starts, unless it sets its own.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// The `umview` binary under test: `$UMVIEW_BIN`, or `umview` in the
/// target directory of the profile the test binary was built with
/// (test binaries live in `target/<profile>/deps/`).
pub fn umview_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("UMVIEW_BIN") {
            let p = PathBuf::from(p);
            assert!(
                p.is_file(),
                "UMVIEW_BIN={} does not exist (run cargo build first)",
                p.display()
            );
            return p;
        }
        let exe = std::env::current_exe().expect("current_exe");
        let deps = exe.parent().expect("test binary has a directory");
        let profile = if deps.file_name() == Some(OsStr::new("deps")) {
            deps.parent().expect("deps has a parent")
        } else {
            deps
        };
        let bin = profile.join("umview");
        assert!(
            bin.is_file(),
            "the umview binary {} does not exist: run `cargo build` first (or set UMVIEW_BIN)",
            bin.display()
        );
        bin
    })
}

/// The in-view command `name` (`viewmount`, ...) built next to umview.
pub fn view_command(name: &str) -> PathBuf {
    let p = umview_bin().with_file_name(name);
    assert!(
        p.is_file(),
        "{} does not exist: run `cargo build` first",
        p.display()
    );
    p
}

/// Fails loudly if `tool` is not on `PATH`, naming the Debian package that
/// provides it. Returns its full path.
pub fn require_tool(tool: &str, package: &str) -> PathBuf {
    if tool.contains('/') {
        let p = PathBuf::from(tool);
        assert!(
            p.is_file(),
            "this test needs {tool}: install the Debian package `{package}` (scripts/install-deps.sh does)"
        );
        return p;
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    for dir in std::env::split_paths(&path) {
        let cand = dir.join(tool);
        if cand.is_file() {
            return cand;
        }
    }
    panic!(
        "this test needs `{tool}`, which is not on PATH: install the Debian package `{package}` (scripts/install-deps.sh does)"
    );
}

/// `/usr/bin/python3`, Debian's (never a pyenv or venv shim).
pub fn python3() -> PathBuf {
    require_tool("/usr/bin/python3", "python3")
}

/// A unique directory under [`std::env::temp_dir`], removed on drop (set
/// `VIEWOS_KEEP_TMP=1` to keep it for a post-mortem).
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// A new empty directory whose name contains `tag`.
    pub fn new(tag: &str) -> TempDir {
        let base = std::env::temp_dir();
        let tag: String = tag
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let template = base.join(format!("viewos-{tag}-XXXXXX"));
        let mut bytes = template.as_os_str().as_bytes().to_vec();
        bytes.push(0);
        // SAFETY: `bytes` is a NUL-terminated writable template ending in
        // XXXXXX, which mkdtemp overwrites in place.
        let r = unsafe { libc::mkdtemp(bytes.as_mut_ptr().cast()) };
        assert!(
            !r.is_null(),
            "cannot create a temporary directory in {}: {}",
            base.display(),
            std::io::Error::last_os_error()
        );
        bytes.pop();
        TempDir {
            path: PathBuf::from(OsStr::from_bytes(&bytes)),
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside the directory.
    pub fn join<P: AsRef<Path>>(&self, rel: P) -> PathBuf {
        self.path.join(rel)
    }

    /// Writes `contents` to `rel` (parent directories are created) and
    /// returns the full path.
    pub fn write<P: AsRef<Path>, C: AsRef<[u8]>>(&self, rel: P, contents: C) -> PathBuf {
        let p = self.path.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("mkdir -p {}: {e}", parent.display()));
        }
        std::fs::write(&p, contents).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        p
    }

    /// Creates the directory `rel` (and its parents) and returns it.
    pub fn mkdir<P: AsRef<Path>>(&self, rel: P) -> PathBuf {
        let p = self.path.join(rel);
        std::fs::create_dir_all(&p).unwrap_or_else(|e| panic!("mkdir -p {}: {e}", p.display()));
        p
    }
}

/// Makes every directory under `p` writable and searchable by its owner so
/// that an unprivileged user can remove a tree a test made read-only.
fn make_removable(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::symlink_metadata(p) else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    let mode = meta.permissions().mode();
    if mode & 0o700 != 0o700 {
        let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode | 0o700));
    }
    if let Ok(entries) = std::fs::read_dir(p) {
        for e in entries.flatten() {
            make_removable(&e.path());
        }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("VIEWOS_KEEP_TMP").is_some() {
            eprintln!("keeping {}", self.path.display());
            return;
        }
        make_removable(&self.path);
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// How a command runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Directly, as the reference.
    Native,
    /// Under `umview` (the default seccomp path).
    View,
    /// Under `umview --no-seccomp` (every syscall stops).
    ViewNoSeccomp,
}

impl Mode {
    /// Both ways of running under umview.
    pub const VIEWS: [Mode; 2] = [Mode::View, Mode::ViewNoSeccomp];
    /// Natively, then both view modes.
    pub const ALL: [Mode; 3] = [Mode::Native, Mode::View, Mode::ViewNoSeccomp];

    /// True under umview.
    pub fn is_view(self) -> bool {
        self != Mode::Native
    }

    /// The words that start a command in this mode: nothing, `umview`, or
    /// `umview --no-seccomp`.
    pub fn prefix(self) -> Vec<OsString> {
        match self {
            Mode::Native => vec![],
            Mode::View => vec![umview_bin().into()],
            Mode::ViewNoSeccomp => vec![umview_bin().into(), "--no-seccomp".into()],
        }
    }

    /// [`Mode::prefix`] as one shell word list (paths are quoted), for
    /// scripts that put umview inside a pipeline.
    pub fn shell_prefix(self) -> String {
        self.prefix()
            .iter()
            .map(|w| shell_quote(&w.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// A short name for messages and directory names.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Native => "native",
            Mode::View => "umview",
            Mode::ViewNoSeccomp => "umview --no-seccomp",
        }
    }

    /// A name usable in a file name.
    pub fn tag(self) -> &'static str {
        match self {
            Mode::Native => "native",
            Mode::View => "view",
            Mode::ViewNoSeccomp => "view-noseccomp",
        }
    }
}

/// Quotes the path `p` for `sh`.
pub fn quote_path(p: &Path) -> String {
    shell_quote(&p.to_string_lossy())
}

/// Runs `argv` natively (outside any view) and returns its output; a
/// program that cannot be started fails the test.
pub fn run_native(argv: &[&str]) -> std::process::Output {
    std::process::Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", argv[0]))
}

/// [`run_native`], failing the test (with the program's output) unless
/// the program exits with status 0.
pub fn run_native_ok(argv: &[&str]) -> std::process::Output {
    let out = run_native(argv);
    assert!(out.status.success(), "{}: {out:?}", argv.join(" "));
    out
}

/// Quotes `s` for `sh`.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Exited with this code.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
}

impl Status {
    fn from_exit(st: ExitStatus) -> Status {
        match (st.code(), st.signal()) {
            (Some(c), _) => Status::Code(c),
            (None, Some(s)) => Status::Signal(s),
            _ => unreachable!("a waited process exited or was killed"),
        }
    }

    /// What a shell reports: the code, or 128 + the signal number.
    pub fn shell(self) -> i32 {
        match self {
            Status::Code(c) => c,
            Status::Signal(s) => 128 + s,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Code(c) => write!(f, "exit code {c}"),
            Status::Signal(s) => write!(f, "killed by signal {s}"),
        }
    }
}

/// What a finished command left.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The command line, for messages.
    pub what: String,
    /// How it ended.
    pub status: Status,
    /// Everything it wrote on stdout.
    pub stdout: Vec<u8>,
    /// Everything it wrote on stderr.
    pub stderr: Vec<u8>,
}

impl Outcome {
    /// stdout as text (lossy).
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// stderr as text (lossy).
    pub fn err(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// Panics unless the command exited with `code`.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.status,
            Status::Code(code),
            "{}: expected exit code {code}\n{}",
            self.what,
            self.dump()
        );
        self
    }

    /// Panics unless the command exited with 0.
    #[track_caller]
    pub fn assert_ok(&self) -> &Self {
        self.assert_code(0)
    }

    /// stdout and stderr, for failure messages (long outputs are cut).
    pub fn dump(&self) -> String {
        format!(
            "--- status: {}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.status,
            cut(&self.out(), 4000),
            cut(&self.err(), 4000)
        )
    }
}

fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}\n[... {} more bytes]", &s[..end], s.len() - end)
}

/// A command to run natively or in a view, with a deadline.
#[derive(Clone, Debug)]
pub struct Cmd {
    argv: Vec<OsString>,
    umview_opts: Vec<OsString>,
    cwd: Option<PathBuf>,
    env: Vec<(OsString, Option<OsString>)>,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
}

impl Cmd {
    /// `argv[0]` is searched on `PATH` (natively by the test, in a view by
    /// umview).
    pub fn new<I, S>(argv: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Cmd {
            argv: argv.into_iter().map(|a| a.as_ref().to_owned()).collect(),
            umview_opts: vec![],
            cwd: None,
            env: vec![(OsString::from("BASH_ENV"), None), ("ENV".into(), None)],
            stdin: None,
            timeout: DEADLINE,
        }
    }

    /// `sh -c script`.
    pub fn sh(script: &str) -> Cmd {
        Cmd::new(["sh", "-c", script])
    }

    /// `bash -c script`.
    pub fn bash(script: &str) -> Cmd {
        Cmd::new(["bash", "-c", script])
    }

    /// Runs in `dir`.
    pub fn cwd<P: AsRef<Path>>(mut self, dir: P) -> Cmd {
        self.cwd = Some(dir.as_ref().to_owned());
        self
    }

    /// Sets an environment variable.
    pub fn env<K: AsRef<OsStr>, V: AsRef<OsStr>>(mut self, k: K, v: V) -> Cmd {
        self.env
            .push((k.as_ref().to_owned(), Some(v.as_ref().to_owned())));
        self
    }

    /// Removes an environment variable.
    pub fn env_remove<K: AsRef<OsStr>>(mut self, k: K) -> Cmd {
        self.env.push((k.as_ref().to_owned(), None));
        self
    }

    /// Feeds `data` on stdin (default: /dev/null).
    pub fn stdin<D: AsRef<[u8]>>(mut self, data: D) -> Cmd {
        self.stdin = Some(data.as_ref().to_vec());
        self
    }

    /// Options given to umview before the program (view modes only).
    pub fn umview_opts<I, S>(mut self, opts: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.umview_opts = opts.into_iter().map(|a| a.as_ref().to_owned()).collect();
        self
    }

    /// Replaces the default deadline.
    pub fn timeout(mut self, t: Duration) -> Cmd {
        self.timeout = t;
        self
    }

    /// The full argv in `mode`.
    pub fn argv(&self, mode: Mode) -> Vec<OsString> {
        let mut v = mode.prefix();
        if mode.is_view() {
            v.extend(self.umview_opts.iter().cloned());
        }
        v.extend(self.argv.iter().cloned());
        v
    }

    /// The command as a `std::process::Command` in `mode` (cwd and
    /// environment applied; stdio left to the caller).
    pub fn command(&self, mode: Mode) -> Command {
        let argv = self.argv(mode);
        let mut c = Command::new(&argv[0]);
        c.args(&argv[1..]);
        if let Some(d) = &self.cwd {
            c.current_dir(d);
        }
        for (k, v) in &self.env {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        c
    }

    /// Describes the command in `mode`, for messages.
    pub fn describe(&self, mode: Mode) -> String {
        let words: Vec<String> = self
            .argv(mode)
            .iter()
            .map(|w| shell_quote(&w.to_string_lossy()))
            .collect();
        let mut s = format!("[{}] {}", mode.name(), cut(&words.join(" "), 300));
        if let Some(d) = &self.cwd {
            s.push_str(&format!(" (in {})", d.display()));
        }
        s
    }

    /// Runs the command in `mode` to its end (or its deadline: then it is
    /// killed and the test fails).
    pub fn run(&self, mode: Mode) -> Outcome {
        let mut c = self.command(mode);
        run_with_deadline(
            &mut c,
            self.stdin.clone(),
            self.timeout,
            &self.describe(mode),
        )
    }
}

/// Lets the child start its own process group and never dump core (a core
/// file would land in the test's directory; RLIMIT_CORE 0 is the same
/// natively and in a view).
fn prepare_child(c: &mut Command) {
    c.process_group(0);
    // SAFETY: setrlimit is async-signal-safe and touches only the child.
    unsafe {
        c.pre_exec(|| {
            let zero = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &zero);
            Ok(())
        });
    }
}

/// Kills the process group led by `child` and the child itself.
pub fn kill_tree(child: &mut Child) {
    let pid = child.id() as i32;
    // SAFETY: signalling a process group we created.
    unsafe { libc::kill(-pid, libc::SIGKILL) };
    let _ = child.kill();
    let _ = child.wait();
}

/// Spawns `c` (in its own process group, stdin from `stdin` or /dev/null,
/// stdout and stderr captured) and waits for it and for the end of its
/// output until `timeout`.
pub fn run_with_deadline(
    c: &mut Command,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
    what: &str,
) -> Outcome {
    prepare_child(c);
    c.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = c
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        std::thread::spawn(move || {
            // The program may not read it all (EPIPE): that is its business.
            let _ = pipe.write_all(&data);
        });
    }
    let (tx, rx) = mpsc::channel::<(usize, Vec<u8>)>();
    let readers: Vec<(usize, Box<dyn Read + Send>)> = vec![
        (1, Box::new(child.stdout.take().expect("stdout piped"))),
        (2, Box::new(child.stderr.take().expect("stderr piped"))),
    ];
    for (fd, mut r) in readers {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            let _ = tx.send((fd, buf));
        });
    }
    drop(tx);
    let deadline = start + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) => {}
            Err(e) => panic!("waiting for {what}: {e}"),
        }
        if Instant::now() > deadline {
            kill_tree(&mut child);
            panic!(
                "{what}: still running after {} s: killed (a hang)",
                timeout.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    for _ in 0..2 {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left.max(Duration::from_secs(1))) {
            Ok((1, b)) => stdout = b,
            Ok((_, b)) => stderr = b,
            Err(_) => {
                // SAFETY: signalling the process group we created.
                unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
                panic!(
                    "{what}: ended with {}, but its stdout/stderr were still open after {} s \
                     (a process it left behind holds them)",
                    Status::from_exit(status),
                    timeout.as_secs()
                );
            }
        }
    }
    Outcome {
        what: what.to_string(),
        status: Status::from_exit(status),
        stdout,
        stderr,
    }
}

/// Asserts that `view` (a run under umview) ended as `native` did: umview
/// itself exits normally with the status a shell would report for the
/// native run (code, or 128 + signal), and stdout and stderr are equal.
#[track_caller]
pub fn assert_same(native: &Outcome, view: &Outcome) {
    assert_same_with(native, view, |s| s.to_string());
}

/// [`assert_same`] with both outputs passed through `normalize` first.
#[track_caller]
pub fn assert_same_with<F: Fn(&str) -> String>(native: &Outcome, view: &Outcome, normalize: F) {
    let mut problems = Vec::new();
    match view.status {
        Status::Code(c) if c == native.status.shell() => {}
        other => problems.push(format!(
            "status differs: native {} (shell status {}), view {}",
            native.status,
            native.status.shell(),
            other
        )),
    }
    let (no, vo) = (normalize(&native.out()), normalize(&view.out()));
    if no != vo {
        problems.push(format!("stdout differs:\n{}", diff(&no, &vo)));
    }
    let (ne, ve) = (normalize(&native.err()), normalize(&view.err()));
    if ne != ve {
        problems.push(format!("stderr differs:\n{}", diff(&ne, &ve)));
    }
    if !problems.is_empty() {
        panic!(
            "not transparent:\n  native: {}\n  view:   {}\n{}\n=== native\n{}\n=== view\n{}",
            native.what,
            view.what,
            problems.join("\n"),
            native.dump(),
            view.dump()
        );
    }
}

/// A short line diff: the first differing lines with their numbers.
pub fn diff(a: &str, b: &str) -> String {
    let al: Vec<&str> = a.lines().collect();
    let bl: Vec<&str> = b.lines().collect();
    let mut out = String::new();
    let mut shown = 0;
    for i in 0..al.len().max(bl.len()) {
        let (x, y) = (al.get(i), bl.get(i));
        if x != y {
            out.push_str(&format!(
                "  line {}: native {:?}\n  line {}:   view {:?}\n",
                i + 1,
                x.map(|s| cut(s, 300)),
                i + 1,
                y.map(|s| cut(s, 300))
            ));
            shown += 1;
            if shown == 8 {
                out.push_str("  ...\n");
                break;
            }
        }
    }
    if out.is_empty() {
        out.push_str("  (the same lines; differs in the final newline)\n");
    }
    out
}

/// Runs `cmd` natively, then under `umview` and `umview --no-seccomp`,
/// asserts each view run ended like the native one with the same output,
/// and returns the native outcome (for further checks).
#[track_caller]
pub fn transparent(cmd: &Cmd) -> Outcome {
    transparent_with(cmd, |s| s.to_string())
}

/// [`transparent`] with outputs passed through `normalize` before the
/// comparison.
#[track_caller]
pub fn transparent_with<F: Fn(&str) -> String>(cmd: &Cmd, normalize: F) -> Outcome {
    let native = cmd.run(Mode::Native);
    for mode in Mode::VIEWS {
        let view = cmd.run(mode);
        assert_same_with(&native, &view, &normalize);
    }
    native
}

/// Polls `cond` every few milliseconds until it holds; fails the test with
/// `what` if it does not within `timeout`.
#[track_caller]
pub fn wait_until<F: FnMut() -> bool>(timeout: Duration, what: &str, mut cond: F) {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return;
        }
        if Instant::now() > deadline {
            panic!("timed out after {} s waiting for {what}", timeout.as_secs());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Compiles the C source `src` to `dir/name` with gcc (natively, not in a
/// view) and returns the executable's path.
pub fn compile_c(dir: &Path, name: &str, src: &str, extra: &[&str]) -> PathBuf {
    require_tool("gcc", "gcc");
    let c_file = dir.join(format!("{name}.c"));
    std::fs::write(&c_file, src).unwrap_or_else(|e| panic!("write {}: {e}", c_file.display()));
    let exe = dir.join(name);
    let mut args: Vec<OsString> = vec![
        "-O1".into(),
        "-Wall".into(),
        "-D_GNU_SOURCE".into(),
        "-o".into(),
        exe.clone().into(),
        c_file.into(),
    ];
    args.extend(extra.iter().map(OsString::from));
    let out = Cmd::new(std::iter::once(OsString::from("gcc")).chain(args)).run(Mode::Native);
    assert_eq!(
        out.status,
        Status::Code(0),
        "compiling fixture {name}.c failed\n{}",
        out.dump()
    );
    exe
}

/// A random-enough token for markers and names: pid, time and a counter.
pub fn unique_token() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}{:06}{}", std::process::id(), t % 1_000_000, n)
}

/// The processes whose command line contains `marker`: (pid, argv joined
/// with spaces). Processes that vanish while being read are skipped.
pub fn procs_with_marker(marker: &str) -> Vec<(i32, String)> {
    let mut found = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    let me = std::process::id() as i32;
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let words: Vec<String> = cmdline
            .split(|&b| b == 0)
            .filter(|w| !w.is_empty())
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect();
        let line = words.join(" ");
        if line.contains(marker) {
            found.push((pid, line));
        }
    }
    found
}

/// Sends SIGKILL to every process whose command line contains `marker`
/// (cleanup after a failed test).
pub fn kill_marked(marker: &str) {
    for (pid, _) in procs_with_marker(marker) {
        // SAFETY: signalling a process this test started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// Shell functions for scripts that inspect a mounted tree (prepend them
/// to the script):
/// - `describe DIR [nomtime]`: one line per entry under DIR in byte order
///   (name, type, mode, owner, group, for non-directories size and link
///   count, mtime in seconds), then the target of a symlink or the sha256
///   of a regular file. Directory sizes and link counts are left out: they
///   are the file system's own business, not the tree's. Run on a native
///   tree and on a mount of the same tree, the outputs must be equal.
/// - `wait_for PATH`: waits up to 20 s for PATH to exist (a FUSE program
///   mounting in the background), or returns 1 saying so.
pub const TREE_SH: &str = r#"
describe() (
  cd "$1" || exit 1
  if [ "$2" = nomtime ]; then t=; else t='|%Y'; fi
  find . -mindepth 1 -print0 | LC_ALL=C sort -z | while IFS= read -r -d '' p; do
    if [ -d "$p" ] && [ ! -L "$p" ]; then stat -c "%n|%F|%a|%u|%g$t" -- "$p"
    else stat -c "%n|%F|%a|%u|%g|%s|%h$t" -- "$p"; fi
    if [ -L "$p" ]; then printf 'link|%s\n' "$(readlink -- "$p")"
    elif [ -f "$p" ]; then sha256sum -- "$p"; fi
  done
)
wait_for() {
  n=0
  until [ -e "$1" ]; do
    n=$((n+1)); [ $n -lt 400 ] || { echo "never mounted: $1"; return 1; }
    sleep 0.05
  done
}
"#;

/// Reports that a test could not check what it is about on this machine,
/// and why, as one line `SKIPPED (what): reason` on the real stderr of the
/// test process: the harness does not capture it, so it shows even though
/// the test passes, and `scripts/test.sh` counts such lines.
pub fn report_skipped(what: &str, reason: &str) {
    let line = format!("SKIPPED ({what}): {reason}\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// Replaces every run of ASCII digits in `s` with `N` (pids, times), and
/// the blanks padding it with one.
pub fn mask_numbers(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_num = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            if !in_num {
                // Padding before a number (bash's "%5d" job pids) depends
                // on its width: any run of blanks before it becomes one.
                if out.ends_with(' ') {
                    let trimmed = out.trim_end_matches(' ').len();
                    out.truncate(trimmed);
                    out.push(' ');
                }
                out.push('N');
            }
            in_num = true;
        } else {
            in_num = false;
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("abc/d.e"), "abc/d.e");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn numbers_are_masked() {
        assert_eq!(mask_numbers("pid 123 t=4.5"), "pid N t=N.N");
        assert_eq!(mask_numbers("line 3:   812 Killed"), "line N: N Killed");
    }

    #[test]
    fn native_run_reports_code_signal_and_output() {
        let o = Cmd::sh("echo out; echo err >&2; exit 3").run(Mode::Native);
        assert_eq!(o.status, Status::Code(3));
        assert_eq!(o.out(), "out\n");
        assert_eq!(o.err(), "err\n");
        let o = Cmd::sh("kill -TERM $$").run(Mode::Native);
        assert_eq!(o.status, Status::Signal(libc::SIGTERM));
        assert_eq!(o.status.shell(), 143);
        let o = Cmd::new(["cat"]).stdin("abc").run(Mode::Native);
        assert_eq!(o.out(), "abc");
    }

    #[test]
    fn deadline_kills_and_fails() {
        let r = std::panic::catch_unwind(|| {
            Cmd::new(["sleep", "30"])
                .timeout(Duration::from_millis(300))
                .run(Mode::Native)
        });
        let msg = r.expect_err("a hang must fail");
        let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(msg.contains("still running"), "{msg}");
    }

    #[test]
    fn temp_dirs_are_unique_and_removed() {
        let a = TempDir::new("x");
        let b = TempDir::new("x");
        assert_ne!(a.path(), b.path());
        let p = a.path().to_owned();
        a.write("d/f", "1");
        drop(a);
        assert!(!p.exists());
    }
}
