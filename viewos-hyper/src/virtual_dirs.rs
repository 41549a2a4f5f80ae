//! Virtual current directories.
//!
//! The kernel's cwd of a process must be a real directory. When a program
//! changes into a virtual one (`cd /unreal/usr`), the host makes its cwd an
//! empty placeholder directory of its own, one per virtual directory, and
//! remembers which virtual path the placeholder stands for. Every path the
//! process then gives relative to its cwd is resolved from the virtual
//! path (the host sees those calls anyway), and `getcwd` answers the
//! virtual path. The placeholders live in a private directory the host
//! removes when the view ends.

use std::collections::HashMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use viewos_core::Errno;

#[derive(Default)]
struct Inner {
    /// The private directory, made on first use.
    root: Option<PathBuf>,
    /// Virtual path -> placeholder.
    by_virtual: HashMap<PathBuf, PathBuf>,
    /// Placeholder -> virtual path.
    by_placeholder: HashMap<PathBuf, PathBuf>,
    /// Real directory a mount handed out as a real fd -> the view's path
    /// it was opened by.
    backed: HashMap<PathBuf, PathBuf>,
}

/// The placeholders of one view.
#[derive(Default)]
pub struct VirtualDirs {
    inner: Mutex<Inner>,
}

impl VirtualDirs {
    /// No placeholders yet.
    pub fn new() -> VirtualDirs {
        VirtualDirs::default()
    }

    /// The placeholder standing for the virtual directory `virt`, made if
    /// needed.
    pub fn placeholder_for(&self, virt: &Path) -> Result<PathBuf, Errno> {
        let mut inner = self.inner.lock();
        if let Some(p) = inner.by_virtual.get(virt) {
            if p.is_dir() {
                return Ok(p.clone());
            }
        }
        let root = match &inner.root {
            Some(r) => r.clone(),
            None => {
                let r = make_private_dir()?;
                inner.root = Some(r.clone());
                r
            }
        };
        let p = root.join(format!("cwd{}", inner.by_virtual.len()));
        match std::fs::create_dir(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Errno::from(e)),
        }
        inner.by_virtual.insert(virt.to_path_buf(), p.clone());
        inner.by_placeholder.insert(p.clone(), virt.to_path_buf());
        Ok(p)
    }

    /// Records that the fd link text `link` (a served file's placeholder,
    /// `pipe:[INODE]`) stands for the virtual file `virt`: paths relative
    /// to that fd resolve from it (a directory), and its
    /// `/proc/PID/fd/N` link leads there.
    pub fn add_link(&self, link: PathBuf, virt: PathBuf) {
        self.inner.lock().by_placeholder.insert(link, virt);
    }

    /// Records that the real directory `real`, which a mount handed out as
    /// a real fd, is the view's `virt`: names relative to such an fd (or a
    /// cwd there) resolve from `virt`, as from a directory of a bind
    /// mount. This matters where `real` is not the view's own path for it
    /// (a mount on `/` hides every real path). Kept until the mount goes
    /// ([`VirtualDirs::forget_below`]).
    pub fn add_backed_dir(&self, real: PathBuf, virt: PathBuf) {
        if real != virt {
            self.inner.lock().backed.insert(real, virt);
        }
    }

    /// Forgets the directories [`VirtualDirs::add_backed_dir`] recorded at
    /// or below the view's `target` (its mount is gone).
    pub fn forget_below(&self, target: &Path) {
        self.inner
            .lock()
            .backed
            .retain(|_, virt| !virt.starts_with(target));
    }

    /// Forgets a link recorded with [`VirtualDirs::add_link`].
    pub fn remove_link(&self, link: &Path) {
        self.inner.lock().by_placeholder.remove(link);
    }

    /// The virtual file (a directory for a cwd) `real` stands for, if it
    /// is a placeholder.
    pub fn virtual_of(&self, real: &Path) -> Option<PathBuf> {
        let inner = self.inner.lock();
        inner
            .by_placeholder
            .get(real)
            .or_else(|| inner.backed.get(real))
            .cloned()
    }

    /// Removes the placeholders (at the end of the view).
    pub fn clean_up(&self) {
        let mut inner = self.inner.lock();
        if let Some(root) = inner.root.take() {
            let _ = std::fs::remove_dir_all(root);
        }
        inner.by_virtual.clear();
        inner.by_placeholder.clear();
    }
}

impl Drop for VirtualDirs {
    fn drop(&mut self) {
        self.clean_up();
    }
}

/// A new directory only this user can enter, under `$TMPDIR` (or /tmp).
fn make_private_dir() -> Result<PathBuf, Errno> {
    let base = std::env::var_os("TMPDIR")
        .filter(|t| Path::new(t).is_absolute())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    let template = base.join(format!("viewos-cwd-{}-XXXXXX", std::process::id()));
    let mut bytes = CString::new(template.as_os_str().as_bytes())
        .map_err(|_| Errno::EINVAL)?
        .into_bytes_with_nul();
    // SAFETY: mkdtemp rewrites the XXXXXX of a NUL-terminated buffer we own.
    let r = unsafe { libc::mkdtemp(bytes.as_mut_ptr().cast()) };
    if r.is_null() {
        return Err(Errno::from(std::io::Error::last_os_error()));
    }
    bytes.pop();
    Ok(PathBuf::from(std::ffi::OsStr::from_bytes(&bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_map_both_ways_and_go_away() {
        let dirs = VirtualDirs::new();
        let a = dirs.placeholder_for(Path::new("/unreal/usr")).unwrap();
        let b = dirs.placeholder_for(Path::new("/unreal/etc")).unwrap();
        assert_ne!(a, b);
        assert!(a.is_dir());
        assert_eq!(dirs.placeholder_for(Path::new("/unreal/usr")).unwrap(), a);
        assert_eq!(dirs.virtual_of(&a), Some(PathBuf::from("/unreal/usr")));
        assert_eq!(dirs.virtual_of(Path::new("/usr")), None);
        dirs.clean_up();
        assert!(!a.exists());
    }
}
