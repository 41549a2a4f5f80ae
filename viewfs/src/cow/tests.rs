//! Unit tests of `cow` and `mincow` over real directories.

use super::*;
use crate::testdir::TestDir;
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use viewos_core::real::RealFs;

/// Everything below `dir`: path -> (mode, size, mtime, contents or link).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u32, u64, i64, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let data = if m.is_file() {
                std::fs::read(&p).unwrap()
            } else if m.file_type().is_symlink() {
                use std::os::unix::ffi::OsStrExt;
                std::fs::read_link(&p)
                    .unwrap()
                    .as_os_str()
                    .as_bytes()
                    .to_vec()
            } else {
                todo.push(p.clone());
                Vec::new()
            };
            out.insert(p, (m.mode(), m.size(), m.mtime(), data));
        }
    }
    out
}

fn target(t: &TestDir) {
    t.write("low/etc/conf", "original");
    t.write("low/etc/keep", "keep");
    t.write("low/dir/sub/deep", "deep");
    t.write("low/dir/other", "other");
    t.write("low/gone", "gone");
    std::os::unix::fs::symlink("etc/conf", t.join("low/link")).unwrap();
    t.mkdir("up");
}

fn cow(t: &TestDir, min: bool) -> CowFs {
    CowFs::new(
        Layer::new(Arc::new(RealFs), t.join("up")),
        Layer::new(Arc::new(RealFs), t.join("low")),
        min,
        Some(Creds::of_process()),
    )
}

fn read(fs: &dyn FileSystem, p: &str) -> String {
    let h = into_handle(fs.open(Path::new(p), libc::O_RDONLY, 0).unwrap()).unwrap();
    let mut buf = vec![0u8; 4096];
    let n = h.read(0, &mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn write(fs: &dyn FileSystem, p: &str, flags: i32, data: &str) {
    let o = fs
        .open(Path::new(p), libc::O_WRONLY | flags, 0o644)
        .unwrap();
    let h = into_handle(o).unwrap();
    let at = if flags & libc::O_APPEND != 0 {
        h.stat().unwrap().size
    } else {
        0
    };
    h.write(at, data.as_bytes()).unwrap();
}

fn names(fs: &dyn FileSystem, p: &str) -> Vec<String> {
    let o = fs
        .open(Path::new(p), libc::O_RDONLY | libc::O_DIRECTORY, 0)
        .unwrap();
    let Opened::Served(h) = o else {
        panic!("directory not served")
    };
    let mut out = Vec::new();
    h.read_dir(0, &mut |e| {
        out.push(String::from_utf8_lossy(e.name).into_owned());
        true
    })
    .unwrap();
    out.sort();
    out
}

#[test]
fn changes_land_in_the_layer_and_target_stays_as_it_was() {
    let t = TestDir::new("cow-basic");
    target(&t);
    let before = snapshot(&t.join("low"));
    let fs = cow(&t, false);
    assert_eq!(read(&fs, "/etc/conf"), "original");
    write(&fs, "/etc/conf", libc::O_TRUNC, "changed");
    write(&fs, "/etc/keep", libc::O_APPEND, "+more");
    write(&fs, "/etc/new", libc::O_CREAT | libc::O_EXCL, "new");
    assert_eq!(read(&fs, "/etc/conf"), "changed");
    assert_eq!(read(&fs, "/etc/keep"), "keep+more");
    // The host follows symlinks before calling: the link is as it was.
    assert_eq!(
        fs.readlink(Path::new("/link")).unwrap(),
        Path::new("etc/conf")
    );
    fs.unlink(Path::new("/gone")).unwrap();
    fs.mkdir(Path::new("/dir/sub/newdir"), 0o750).unwrap();
    fs.symlink(Path::new("../gone"), Path::new("/dir/dangling"))
        .unwrap();
    fs.chmod(Path::new("/dir/other"), 0o600).unwrap();
    fs.truncate(Path::new("/dir/sub/deep"), 2).unwrap();
    fs.link(Path::new("/etc/keep"), Path::new("/hard")).unwrap();
    fs.utimens(
        Path::new("/etc"),
        SetTime::At(viewos_core::Timespec { sec: 7, nsec: 0 }),
        SetTime::Omit,
    )
    .unwrap();
    assert_eq!(snapshot(&t.join("low")), before, "TARGET changed");
    assert_eq!(fs.lstat(Path::new("/gone")), Err(Errno::ENOENT));
    assert_eq!(
        fs.lstat(Path::new("/dir/other")).unwrap().mode & 0o777,
        0o600
    );
    assert_eq!(fs.lstat(Path::new("/dir/sub/deep")).unwrap().size, 2);
    assert_eq!(fs.lstat(Path::new("/hard")).unwrap().nlink, 2);
    assert_eq!(fs.lstat(Path::new("/etc")).unwrap().atime.sec, 7);
    assert_eq!(
        fs.readlink(Path::new("/dir/dangling")).unwrap(),
        Path::new("../gone")
    );
    assert_eq!(
        names(&fs, "/"),
        [".", "..", "dir", "etc", "hard", "link"],
        "whiteouts hide names, markers are not listed"
    );
    assert_eq!(names(&fs, "/dir"), [".", "..", "dangling", "other", "sub"]);
    assert!(t.join("up/.wh.gone").is_file());
    // Mounting the layer again shows the same tree.
    let again = cow(&t, false);
    assert_eq!(read(&again, "/etc/conf"), "changed");
    assert_eq!(again.lstat(Path::new("/gone")), Err(Errno::ENOENT));
    assert_eq!(names(&again, "/"), names(&fs, "/"));
}

#[test]
fn removed_and_remade_directories_are_opaque() {
    let t = TestDir::new("cow-opaque");
    target(&t);
    let fs = cow(&t, false);
    assert_eq!(fs.rmdir(Path::new("/dir")), Err(Errno::ENOTEMPTY));
    fs.unlink(Path::new("/dir/sub/deep")).unwrap();
    fs.rmdir(Path::new("/dir/sub")).unwrap();
    fs.unlink(Path::new("/dir/other")).unwrap();
    assert_eq!(names(&fs, "/dir"), [".", ".."]);
    fs.rmdir(Path::new("/dir")).unwrap();
    assert_eq!(fs.lstat(Path::new("/dir")), Err(Errno::ENOENT));
    assert_eq!(fs.mkdir(Path::new("/dir/x"), 0o755), Err(Errno::ENOENT));
    fs.mkdir(Path::new("/dir"), 0o755).unwrap();
    assert_eq!(names(&fs, "/dir"), [".", ".."]);
    assert_eq!(fs.lstat(Path::new("/dir/other")), Err(Errno::ENOENT));
    assert!(t.join("up/dir/.wh..wh..opq").is_file());
    assert!(!t.join("up/.wh.dir").exists());
    assert!(t.join("low/dir/sub/deep").is_file());
    // A file made over a whiteout.
    write(&fs, "/gone", libc::O_CREAT, "back");
    fs.unlink(Path::new("/gone")).unwrap();
    write(&fs, "/gone", libc::O_CREAT, "again");
    assert_eq!(read(&fs, "/gone"), "again");
    assert_eq!(fs.rmdir(Path::new("/")), Err(Errno::EBUSY));
    assert_eq!(fs.unlink(Path::new("/etc")), Err(Errno::EISDIR));
    assert_eq!(fs.rmdir(Path::new("/gone")), Err(Errno::ENOTDIR));
}

#[test]
fn rename_files_and_layer_directories() {
    let t = TestDir::new("cow-rename");
    target(&t);
    let before = snapshot(&t.join("low"));
    let fs = cow(&t, false);
    fs.rename(Path::new("/etc/conf"), Path::new("/dir/moved"), 0)
        .unwrap();
    assert_eq!(fs.lstat(Path::new("/etc/conf")), Err(Errno::ENOENT));
    assert_eq!(read(&fs, "/dir/moved"), "original");
    // Replacing an existing name.
    fs.rename(Path::new("/dir/moved"), Path::new("/etc/keep"), 0)
        .unwrap();
    assert_eq!(read(&fs, "/etc/keep"), "original");
    assert_eq!(
        fs.rename(
            Path::new("/etc/keep"),
            Path::new("/etc/x"),
            libc::RENAME_NOREPLACE
        ),
        Ok(())
    );
    assert_eq!(
        fs.rename(
            Path::new("/etc/x"),
            Path::new("/gone"),
            libc::RENAME_NOREPLACE
        ),
        Err(Errno::EEXIST)
    );
    // TARGET's directories do not move; the layer's do.
    assert_eq!(
        fs.rename(Path::new("/dir"), Path::new("/dir2"), 0),
        Err(Errno::new(libc::EXDEV))
    );
    fs.mkdir(Path::new("/fresh"), 0o755).unwrap();
    write(&fs, "/fresh/f", libc::O_CREAT, "f");
    fs.rename(Path::new("/fresh"), Path::new("/renamed"), 0)
        .unwrap();
    assert_eq!(read(&fs, "/renamed/f"), "f");
    // Over an empty directory of TARGET: it becomes opaque.
    t.mkdir("low/empty");
    let fs = cow(&t, false);
    fs.rename(Path::new("/renamed"), Path::new("/empty"), 0)
        .unwrap();
    assert_eq!(names(&fs, "/empty"), [".", "..", "f"]);
    assert_eq!(
        fs.rename(Path::new("/empty"), Path::new("/empty/in"), 0),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        fs.rename(Path::new("/gone"), Path::new("/etc"), 0),
        Err(Errno::EISDIR)
    );
    std::fs::remove_dir(t.join("low/empty")).unwrap();
    assert_eq!(snapshot(&t.join("low")), before);
}

#[test]
fn reserved_names_and_errors() {
    let t = TestDir::new("cow-errors");
    target(&t);
    let fs = cow(&t, false);
    assert_eq!(fs.mkdir(Path::new("/.wh.x"), 0o755), Err(Errno::EINVAL));
    assert_eq!(fs.mkdir(Path::new("/etc"), 0o755), Err(Errno::EEXIST));
    assert_eq!(
        fs.open(Path::new("/etc"), libc::O_WRONLY, 0).err(),
        Some(Errno::EISDIR)
    );
    assert_eq!(
        fs.open(
            Path::new("/etc/conf"),
            libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY,
            0
        )
        .err(),
        Some(Errno::EEXIST)
    );
    assert_eq!(
        fs.open(Path::new("/none"), libc::O_RDONLY, 0).err(),
        Some(Errno::ENOENT)
    );
    assert_eq!(
        fs.link(Path::new("/etc"), Path::new("/e2")),
        Err(Errno::EPERM)
    );
    assert_eq!(fs.access(Path::new("/etc/conf"), libc::W_OK), Ok(()));
    assert!(fs.statfs(Path::new("/")).is_ok());
}

/// TARGET refusing every change below `ro/` (as a directory the user may
/// not write would).
struct Refusing(RealFs, PathBuf);

impl Refusing {
    fn route(&self, p: &Path) -> Result<(Arc<dyn FileSystem>, PathBuf), Errno> {
        Ok((Arc::new(self.0), p.to_path_buf()))
    }
    fn check(&self, p: &Path) -> Result<(), Errno> {
        if p.starts_with(&self.1) {
            Err(Errno::EACCES)
        } else {
            Ok(())
        }
    }
}

impl FileSystem for Refusing {
    fn open(&self, p: &Path, flags: i32, mode: u32) -> Result<Opened, Errno> {
        if writes(flags) || flags & libc::O_CREAT != 0 {
            self.check(p)?;
        }
        self.route(p)?.0.open(p, flags, mode)
    }
    fn lstat(&self, p: &Path) -> Result<FileStat, Errno> {
        self.0.lstat(p)
    }
    fn readlink(&self, p: &Path) -> Result<PathBuf, Errno> {
        self.0.readlink(p)
    }
    fn unlink(&self, p: &Path) -> Result<(), Errno> {
        self.check(p)?;
        self.0.unlink(p)
    }
    fn mkdir(&self, p: &Path, mode: u32) -> Result<(), Errno> {
        self.check(p)?;
        self.0.mkdir(p, mode)
    }
    fn chmod(&self, p: &Path, mode: u32) -> Result<(), Errno> {
        self.check(p)?;
        self.0.chmod(p, mode)
    }
    fn listxattr(&self, p: &Path) -> Result<Vec<u8>, Errno> {
        self.0.listxattr(p)
    }
}

#[test]
fn mincow_changes_in_place_what_it_may_and_copies_the_rest() {
    let t = TestDir::new("mincow");
    t.write("low/free/f", "free");
    t.write("low/ro/f", "locked");
    t.mkdir("up");
    let lower: Arc<dyn FileSystem> = Arc::new(Refusing(RealFs, t.join("low/ro")));
    let fs = CowFs::new(
        Layer::new(Arc::new(RealFs), t.join("up")),
        Layer::new(lower, t.join("low")),
        true,
        Some(Creds::of_process()),
    );
    write(&fs, "/free/f", libc::O_TRUNC, "changed");
    write(&fs, "/free/new", libc::O_CREAT, "new");
    fs.mkdir(Path::new("/free/d"), 0o755).unwrap();
    fs.chmod(Path::new("/free/f"), 0o600).unwrap();
    assert_eq!(t.read("low/free/f").as_deref(), Some("changed"));
    assert_eq!(t.read("low/free/new").as_deref(), Some("new"));
    assert!(t.join("low/free/d").is_dir());
    assert!(!t.join("up/free").exists(), "nothing copied");
    // The layer's root is always there: TARGET's shows through it.
    write(&fs, "/at-root", libc::O_CREAT, "r");
    assert_eq!(t.read("low/at-root").as_deref(), Some("r"));
    write(&fs, "/ro/f", libc::O_TRUNC, "copied");
    write(&fs, "/ro/new", libc::O_CREAT, "in layer");
    fs.chmod(Path::new("/ro/f"), 0o600).unwrap();
    assert_eq!(t.read("low/ro/f").as_deref(), Some("locked"));
    assert_eq!(t.read("up/ro/f").as_deref(), Some("copied"));
    assert_eq!(t.read("up/ro/new").as_deref(), Some("in layer"));
    assert_eq!(read(&fs, "/ro/f"), "copied");
    t.write("low/ro/x", "x");
    fs.unlink(Path::new("/ro/x")).unwrap();
    assert!(t.join("low/ro/x").exists() && t.join("up/ro/.wh.x").exists());
    fs.unlink(Path::new("/free/new")).unwrap();
    assert!(!t.join("low/free/new").exists());
    assert_eq!(names(&fs, "/ro"), [".", "..", "f", "new"]);
}

#[test]
fn served_reads_never_hand_over_target_files() {
    let t = TestDir::new("cow-served");
    target(&t);
    let fs = cow(&t, false).serving_reads(true);
    let o = fs.open(Path::new("/etc/conf"), libc::O_RDONLY, 0).unwrap();
    assert!(matches!(o, Opened::Served(_)));
    let dir = libc::O_RDONLY | libc::O_DIRECTORY;
    assert!(matches!(
        fs.open(Path::new("/dir"), dir, 0).unwrap(),
        Opened::Served(_)
    ));
    // Without `served`, TARGET's untouched directories are real fds.
    let o = cow(&t, false).open(Path::new("/dir"), dir, 0).unwrap();
    assert!(matches!(o, Opened::Backed(_)));
    let plain = cow(&t, false);
    let o = plain.open(Path::new("/etc/conf"), libc::O_PATH, 0).unwrap();
    assert!(matches!(o, Opened::Served(_)), "O_PATH of TARGET's file");
    write(&plain, "/etc/keep", libc::O_APPEND, "!");
    let o = plain.open(Path::new("/etc/keep"), libc::O_PATH, 0).unwrap();
    assert!(matches!(o, Opened::Backed(_)), "O_PATH of the layer's file");
    let o = plain
        .open(Path::new("/etc/conf"), libc::O_RDONLY, 0)
        .unwrap();
    assert!(matches!(o, Opened::Backed(_)));
}
