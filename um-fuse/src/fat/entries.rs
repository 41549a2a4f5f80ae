//! Finding files in a `fatfs` volume, with bounded loops, and turning
//! `fatfs` errors into errno values.

use std::io::{self, ErrorKind, Read, Seek, Write};
use std::time::SystemTime;

use fatfs::{Dir, DirEntry, FileAttributes, FileSystem};
use viewos_core::Errno;

use super::check::Geometry;
use super::raw::cluster_of;
use super::time;

/// The most entries a FAT directory can hold (the specification caps a
/// directory at 65536 32-byte slots); no loop over a directory goes
/// further, whatever the image says.
pub(crate) const MAX_DIR_ENTRIES: usize = 65_536;

/// The longest path a volume serves, in bytes, so that a directory that
/// links back to an ancestor cannot be descended without end.
pub(crate) const MAX_PATH: usize = 4096;

/// The longest name FAT stores, in UTF-16 units (255); checked in bytes
/// here as a first bound.
const MAX_NAME_BYTES: usize = 255 * 3;

/// What a directory entry says about a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Meta {
    /// The name as stored (the long name, or the short one).
    pub name: String,
    /// A directory?
    pub is_dir: bool,
    /// Size in bytes (0 for a directory).
    pub size: u64,
    /// The read-only attribute.
    pub read_only: bool,
    /// Last modification.
    pub modified: SystemTime,
    /// Last access (a date only).
    pub accessed: SystemTime,
    /// Creation.
    pub created: SystemTime,
}

impl Meta {
    /// The root directory, which has no entry (and so no times).
    pub(crate) fn root() -> Meta {
        Meta {
            name: String::new(),
            is_dir: true,
            size: 0,
            read_only: false,
            modified: SystemTime::UNIX_EPOCH,
            accessed: SystemTime::UNIX_EPOCH,
            created: SystemTime::UNIX_EPOCH,
        }
    }

    /// The metadata of `e`.
    pub(crate) fn of<S: Read + Write + Seek>(e: &DirEntry<'_, S>) -> Meta {
        Meta {
            name: e.file_name(),
            is_dir: e.is_dir(),
            size: if e.is_dir() { 0 } else { e.len() },
            read_only: e.attributes().contains(FileAttributes::READ_ONLY),
            modified: time::from_fat(e.modified()),
            accessed: time::from_fat_date(e.accessed()),
            created: time::from_fat(e.created()),
        }
    }
}

/// True for `.` and `..`, which FAT stores as entries and FUSE does not
/// want from a file system.
pub(crate) fn is_dot(name: &str) -> bool {
    name == "." || name == ".."
}

/// Checks a name given by a program: not empty, no `/`, not too long.
pub(crate) fn check_name(name: &str) -> Result<(), Errno> {
    if name.is_empty() || name.contains('/') || name.contains('\0') {
        return Err(Errno::EINVAL);
    }
    if name.len() > MAX_NAME_BYTES || name.encode_utf16().count() > 255 {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(())
}

/// Names compare as FAT does: without regard to case.
fn same_name(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_uppercase)
        .eq(b.chars().flat_map(char::to_uppercase))
}

/// The entry called `name` (long or short name, any case) in `dir`.
/// Every entry's first cluster is checked to be in range (`EIO`).
pub(crate) fn find<'a, S: Read + Write + Seek>(
    dir: &Dir<'a, S>,
    name: &str,
    g: &Geometry,
) -> Result<Option<DirEntry<'a, S>>, Errno> {
    for e in dir.iter().take(MAX_DIR_ENTRIES) {
        let e = e.map_err(errno)?;
        let long = e.file_name();
        if is_dot(&long) {
            continue;
        }
        cluster_of(&e, g)?;
        if same_name(&long, name) || same_name(&e.short_file_name(), name) {
            return Ok(Some(e));
        }
    }
    Ok(None)
}

/// The entries of `dir` but `.` and `..`, at most [`MAX_DIR_ENTRIES`],
/// each with its first cluster checked (`EIO`).
pub(crate) fn list<'a, S: Read + Write + Seek>(
    dir: &Dir<'a, S>,
    g: &Geometry,
) -> Result<Vec<DirEntry<'a, S>>, Errno> {
    let mut out = Vec::new();
    for e in dir.iter().take(MAX_DIR_ENTRIES) {
        let e = e.map_err(errno)?;
        if !is_dot(&e.file_name()) {
            cluster_of(&e, g)?;
            out.push(e);
        }
    }
    Ok(out)
}

/// The directory at `path` (`""` is the root) and its first cluster (0
/// for the root). A directory whose cluster is that of one of its
/// ancestors (a loop in the tree) is `EIO`.
pub(crate) fn open_dir<'a, S: Read + Write + Seek>(
    fs: &'a FileSystem<S>,
    path: &str,
    g: &Geometry,
) -> Result<(Dir<'a, S>, u32), Errno> {
    let mut dir = fs.root_dir();
    let mut cluster = 0;
    let mut ancestors = vec![0, g.root_cluster];
    for name in path.split('/').filter(|n| !n.is_empty()) {
        let e = find(&dir, name, g)?.ok_or(Errno::ENOENT)?;
        if !e.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        cluster = cluster_of(&e, g)?;
        if ancestors.contains(&cluster) {
            return Err(Errno::EIO);
        }
        ancestors.push(cluster);
        dir = e.to_dir();
    }
    Ok((dir, cluster))
}

/// The entry at `path`, which is not the root.
pub(crate) fn entry<'a, S: Read + Write + Seek>(
    fs: &'a FileSystem<S>,
    path: &str,
    g: &Geometry,
) -> Result<DirEntry<'a, S>, Errno> {
    let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
    let (dir, _) = open_dir(fs, parent, g)?;
    find(&dir, name, g)?.ok_or(Errno::ENOENT)
}

/// The errno for an error of `fatfs`, which reports most conditions as
/// `ErrorKind::Other` with a message (the messages of fatfs 0.3).
pub(crate) fn errno(e: io::Error) -> Errno {
    if let Some(raw) = e.raw_os_error() {
        return Errno::new(raw);
    }
    match e.kind() {
        ErrorKind::NotFound => return Errno::ENOENT,
        ErrorKind::AlreadyExists => return Errno::EEXIST,
        ErrorKind::InvalidInput => return Errno::EINVAL,
        ErrorKind::UnexpectedEof => return Errno::EIO,
        _ => {}
    }
    let msg = e.to_string();
    if msg.contains("No space left") {
        Errno::new(libc::ENOSPC)
    } else if msg.contains("not empty") {
        Errno::ENOTEMPTY
    } else if msg.contains("Is a directory") {
        Errno::EISDIR
    } else if msg.contains("Not a directory") {
        Errno::ENOTDIR
    } else if msg.contains("too long") {
        Errno::ENAMETOOLONG
    } else if msg.contains("unsupported characters") || msg.contains("name is empty") {
        Errno::EINVAL
    } else {
        Errno::EIO
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_errors() {
        assert!(same_name("Read Me.TXT", "read me.txt"));
        assert!(!same_name("a", "b"));
        assert_eq!(check_name(""), Err(Errno::EINVAL));
        assert_eq!(check_name("a/b"), Err(Errno::EINVAL));
        assert_eq!(check_name(&"x".repeat(256)), Err(Errno::ENAMETOOLONG));
        assert_eq!(check_name("ok name.txt"), Ok(()));
        let e = |m: &str| io::Error::other(m.to_owned());
        assert_eq!(errno(e("No space left on device")).raw(), libc::ENOSPC);
        assert_eq!(errno(e("Directory not empty")), Errno::ENOTEMPTY);
        assert_eq!(errno(e("whatever")), Errno::EIO);
        assert_eq!(errno(io::Error::from(ErrorKind::NotFound)), Errno::ENOENT);
    }
}
