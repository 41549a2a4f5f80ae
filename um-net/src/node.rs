//! The file system of a stack mount: a single node, the mount point
//! itself, that is the stack ([`viewos_core::FileSystem::net_stack`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use viewos_core::fs::Timespec;
use viewos_core::stack::NetStack;
use viewos_core::{Errno, FileStat, FileSystem, FsStat, Opened};

/// Inode numbers of stack nodes.
static NEXT_INO: AtomicU64 = AtomicU64::new(1);

/// A mounted stack.
pub struct StackNode {
    stack: Arc<dyn NetStack>,
    /// `-o perm`: the mount cannot be undone.
    permanent: bool,
    stat: FileStat,
}

impl StackNode {
    /// The node of `stack`, owned by `uid`:`gid`, made now.
    pub fn new(stack: Arc<dyn NetStack>, permanent: bool, uid: u32, gid: u32) -> StackNode {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let t = Timespec {
            sec: now.as_secs() as i64,
            nsec: now.subsec_nanos(),
        };
        StackNode {
            stack,
            permanent,
            stat: FileStat {
                // Not 0: listings skip entries with inode 0.
                ino: NEXT_INO.fetch_add(1, Ordering::Relaxed),
                mode: libc::S_IFCHR | 0o666,
                nlink: 1,
                uid,
                gid,
                blksize: 4096,
                atime: t,
                mtime: t,
                ctime: t,
                ..FileStat::default()
            },
        }
    }

    /// `Ok` for the node itself (`/`), `ENOTDIR` below it.
    fn node(path: &Path) -> Result<(), Errno> {
        if path == Path::new("/") {
            Ok(())
        } else {
            Err(Errno::ENOTDIR)
        }
    }
}

impl FileSystem for StackNode {
    fn open(&self, path: &Path, _flags: i32, _mode: u32) -> Result<Opened, Errno> {
        StackNode::node(path)?;
        // A device without a driver, as the kernel answers.
        Err(Errno::new(libc::ENXIO))
    }

    fn lstat(&self, path: &Path) -> Result<FileStat, Errno> {
        StackNode::node(path)?;
        Ok(self.stat)
    }

    fn readlink(&self, path: &Path) -> Result<PathBuf, Errno> {
        StackNode::node(path)?;
        Err(Errno::EINVAL)
    }

    fn access(&self, path: &Path, _mode: i32) -> Result<(), Errno> {
        StackNode::node(path)
    }

    fn statfs(&self, path: &Path) -> Result<FsStat, Errno> {
        StackNode::node(path)?;
        Ok(FsStat {
            // DEVTMPFS's magic: the node lives in /dev.
            fs_type: 0x0102_1994,
            block_size: 4096,
            name_max: 255,
            fragment_size: 4096,
            ..FsStat::default()
        })
    }

    fn net_stack(&self) -> Option<&dyn NetStack> {
        Some(self.stack.as_ref())
    }

    fn may_unmount(&self) -> Result<(), Errno> {
        if self.permanent {
            Err(Errno::EBUSY)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stacks::Null;

    #[test]
    fn one_node_that_is_the_stack() {
        let n = StackNode::new(Arc::new(Null), false, 1, 2);
        let st = n.lstat(Path::new("/")).unwrap();
        assert_eq!(st.mode, libc::S_IFCHR | 0o666);
        assert_eq!((st.uid, st.gid), (1, 2));
        assert_ne!(st.ino, 0);
        assert_eq!(n.lstat(Path::new("/x")).err(), Some(Errno::ENOTDIR));
        assert_eq!(
            n.open(Path::new("/"), libc::O_RDONLY, 0).err(),
            Some(Errno::new(libc::ENXIO))
        );
        assert!(n.net_stack().is_some());
        assert_eq!(n.may_unmount(), Ok(()));
        let p = StackNode::new(Arc::new(Null), true, 0, 0);
        assert_eq!(p.may_unmount(), Err(Errno::EBUSY));
    }
}
