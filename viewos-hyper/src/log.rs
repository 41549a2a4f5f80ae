//! The debug log (`umview -o FILE`): one line per thing the host does.

use std::fs::File;
use std::io::{BufWriter, Write};

use parking_lot::Mutex;

use crate::error::HyperError;

/// Where debug lines go; a disabled log costs one branch per call site.
/// Shared by the tracer and the supervisor threads: lines are whole.
#[derive(Default)]
pub struct Log {
    out: Option<Mutex<BufWriter<File>>>,
}

impl Log {
    /// A log that writes nothing.
    pub fn disabled() -> Log {
        Log { out: None }
    }

    /// A log writing to `path` (created or truncated).
    pub fn to_file(path: &str) -> Result<Log, HyperError> {
        let file = File::create(path).map_err(|source| HyperError::Log {
            path: path.to_string(),
            source,
        })?;
        Ok(Log {
            out: Some(Mutex::new(BufWriter::new(file))),
        })
    }

    /// True if lines are written; callers test it before formatting.
    #[inline]
    pub fn enabled(&self) -> bool {
        self.out.is_some()
    }

    /// Writes one line (a newline is added).
    pub fn line(&self, args: std::fmt::Arguments<'_>) {
        if let Some(out) = self.out.as_ref() {
            let mut out = out.lock();
            // A full disk must not stop the view: log errors are dropped.
            let _ = out.write_fmt(args);
            let _ = out.write_all(b"\n");
        }
    }

    /// Pushes buffered lines to the file.
    pub fn flush(&self) {
        if let Some(out) = self.out.as_ref() {
            let _ = out.lock().flush();
        }
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        self.flush();
    }
}
