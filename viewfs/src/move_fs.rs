//! `move`: TARGET shows SOURCE's tree.
//!
//! The tree is SOURCE's directory in the view below the mount
//! ([`Subtree`]): every call is made there, files and directories are
//! handed to programs as the file system below opened them (real fds of
//! real files, so reads, writes, mmap and listings run natively), and a
//! SOURCE inside another virtual mount is served through it.

use std::path::PathBuf;
use std::sync::Arc;

use viewos_core::nesting::Subtree;
use viewos_core::FileSystem;

/// The file system of a `move` mount of `source` (canonical, in `io`).
pub fn move_fs(source: PathBuf, io: Arc<dyn FileSystem>) -> Arc<dyn FileSystem> {
    Arc::new(Subtree::new(source, io))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdir::TestDir;
    use std::path::Path;
    use viewos_core::real::RealFs;
    use viewos_core::{Errno, Opened};

    #[test]
    fn target_shows_the_source_tree_with_real_files() {
        let t = TestDir::new("move");
        t.write("src/dir/f", "moved");
        let fs = move_fs(t.join("src"), Arc::new(RealFs));
        assert!(fs.lstat(Path::new("/dir")).unwrap().is_dir());
        assert_eq!(fs.lstat(Path::new("/dir/f")).unwrap().size, 5);
        assert_eq!(fs.lstat(Path::new("/f")), Err(Errno::ENOENT));
        let o = fs.open(Path::new("/dir/f"), libc::O_RDONLY, 0).unwrap();
        assert!(matches!(o, Opened::Backed(_)));
        fs.mkdir(Path::new("/new"), 0o755).unwrap();
        assert!(t.join("src/new").is_dir());
    }
}
