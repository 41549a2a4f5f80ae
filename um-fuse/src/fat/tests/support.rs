//! Helpers for tests that run real tools on images in a temporary
//! directory (no root needed). Shared with the iso9660 tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// A directory under `$TMPDIR`, removed when dropped.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    /// A new, empty directory named after `tag`.
    pub(crate) fn new(tag: &str) -> TempDir {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("umfuse-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The path of the tool `name`, also looked for in the sbin directories
/// an unprivileged user's PATH often lacks.
fn tool(name: &str) -> PathBuf {
    let path = std::env::var("PATH").unwrap_or_default();
    let dirs = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"]);
    for dir in dirs {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("{name} not found: run scripts/install-deps.sh (dosfstools mtools genisoimage xorriso)");
}

/// Runs `name args` (with `TZ=UTC` and mtools' geometry check off) and
/// returns its output; panics, with its stderr, if it fails.
pub(crate) fn run(name: &str, args: &[&str]) -> Output {
    let out = try_run(name, args);
    assert!(
        out.status.success(),
        "{name} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `name args` as [`run`] does, whatever its exit status.
pub(crate) fn try_run(name: &str, args: &[&str]) -> Output {
    Command::new(tool(name))
        .args(args)
        .env("TZ", "UTC")
        .env("MTOOLS_SKIP_CHECK", "1")
        .env("LC_ALL", "C.UTF-8")
        .output()
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// `len` bytes of a reproducible pseudo-random sequence.
pub(crate) fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Creates a sparse file of `len` bytes.
pub(crate) fn blank(path: &Path, len: u64) {
    std::fs::File::create(path)
        .and_then(|f| f.set_len(len))
        .expect("image file");
}

/// Opens an image read-write.
pub(crate) fn open_rw(path: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open image")
}
