//! Reading Rock Ridge, Joliet and plain images.

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;

use fuser::FileType;
use viewos_core::Errno;

use super::super::{IsoFs, IsoVolume};
use crate::fat::tests::support::{bytes, run, TempDir};

/// What a test compares of one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Item {
    Dir(u16),
    File(u16, Vec<u8>),
    Link(Vec<u8>),
}

type Tree = BTreeMap<Vec<u8>, Item>;

/// The tree below `ino`, read through the volume (with `modes`, the
/// permission bits are compared too).
fn walk(vol: &mut IsoVolume<std::fs::File>, ino: u64, prefix: &[u8], modes: bool, out: &mut Tree) {
    for e in vol.readdir(ino).expect("readdir") {
        if e.name == b"." || e.name == b".." {
            continue;
        }
        let mut path = prefix.to_vec();
        path.push(b'/');
        path.extend_from_slice(&e.name);
        let attr = vol.lookup(ino, &e.name).expect("lookup");
        assert_eq!(attr.ino.0, e.ino);
        let perm = if modes { attr.perm } else { 0 };
        let item = match e.kind {
            FileType::Directory => {
                walk(vol, e.ino, &path, modes, out);
                Item::Dir(perm)
            }
            FileType::Symlink => Item::Link(vol.readlink(e.ino).expect("readlink")),
            _ => {
                let data = vol.read(e.ino, 0, u32::MAX).expect("read");
                assert_eq!(attr.size, data.len() as u64);
                Item::File(perm, data)
            }
        };
        out.insert(path, item);
    }
}

/// The tree below a real directory.
fn real_tree(dir: &Path, prefix: &[u8], modes: bool, out: &mut Tree) {
    for e in std::fs::read_dir(dir).expect("read_dir") {
        let e = e.expect("entry");
        let mut path = prefix.to_vec();
        path.push(b'/');
        path.extend_from_slice(e.file_name().as_bytes());
        let meta = std::fs::symlink_metadata(e.path()).expect("meta");
        let perm = if modes {
            (meta.permissions().mode() & 0o7777) as u16
        } else {
            0
        };
        let item = if meta.file_type().is_symlink() {
            let target = std::fs::read_link(e.path()).expect("link");
            Item::Link(target.as_os_str().as_bytes().to_vec())
        } else if meta.is_dir() {
            real_tree(&e.path(), &path, modes, out);
            Item::Dir(perm)
        } else {
            Item::File(perm, std::fs::read(e.path()).expect("read"))
        };
        out.insert(path, item);
    }
}

/// Asserts two trees are equal, naming the first difference (without
/// printing file contents).
fn assert_same(got: &Tree, want: &Tree) {
    let names = |t: &Tree| {
        t.keys()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(got), names(want));
    for (path, item) in want {
        let show = |i: &Item| match i {
            Item::File(m, d) => format!("file {m:o} {} bytes", d.len()),
            Item::Link(t) => format!("link {}", String::from_utf8_lossy(t)),
            other => format!("{other:?}"),
        };
        assert!(
            got[path] == *item,
            "{}: got {}, want {}",
            String::from_utf8_lossy(path),
            show(&got[path]),
            show(item)
        );
    }
}

fn write(path: &Path, data: &[u8], mode: u32) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, data).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A tree with long names, deep directories, modes, symlinks and a
/// 3 MiB file.
fn make_source(root: &Path, links: bool) {
    write(&root.join("hello.txt"), b"hello\n", 0o644);
    write(
        &root.join("A rather long name, with Mixed Case.text"),
        &bytes(1, 3000),
        0o600,
    );
    write(&root.join("script.sh"), b"#!/bin/sh\necho hi\n", 0o755);
    write(&root.join("big.bin"), &bytes(2, 3 << 20), 0o644);
    let deep = root.join("d1/d2/d3/d4/d5/d6/d7/d8/d9/d10");
    write(&deep.join("bottom.txt"), b"deep down\n", 0o644);
    write(&root.join("private/secret"), b"s", 0o400);
    std::fs::set_permissions(root.join("private"), std::fs::Permissions::from_mode(0o700))
        .expect("chmod");
    if links {
        symlink("hello.txt", root.join("rel link")).expect("symlink");
        symlink("/usr/share/doc/../lib", root.join("abs-link")).expect("symlink");
        let long_target = format!("{}/{}", "x".repeat(200), "y".repeat(150));
        symlink(&long_target, root.join("d1/long link")).expect("symlink");
    }
}

fn mkiso(image: &Path, source: &Path, flags: &[&str]) {
    let mut args = flags.to_vec();
    args.extend_from_slice(&["-quiet", "-o", image.to_str().expect("path")]);
    args.push(source.to_str().expect("path"));
    run("genisoimage", &args);
}

/// Like [`mkiso`], with xorriso's mkisofs emulation (genisoimage 1.1
/// writes a wrong length for an `SL` entry longer than 255 bytes).
fn xorriso(image: &Path, source: &Path, flags: &[&str]) {
    let mut args = vec!["-as", "mkisofs"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["-quiet", "-o", image.to_str().expect("path")]);
    args.push(source.to_str().expect("path"));
    run("xorriso", &args);
}

fn open(image: &Path, options: &str) -> IsoVolume<std::fs::File> {
    IsoVolume::new(std::fs::File::open(image).expect("open"), options).expect("mount")
}

#[test]
fn rock_ridge_images_match_their_source() {
    let tmp = TempDir::new("iso-rr");
    let source = tmp.path().join("src");
    make_source(&source, true);
    let image = tmp.path().join("rr.iso");
    xorriso(&image, &source, &["-R", "-J"]);
    let mut vol = open(&image, "");
    let mut got = Tree::new();
    walk(&mut vol, 1, b"", true, &mut got);
    got.remove(&b"/rr_moved"[..]);
    let mut want = Tree::new();
    real_tree(&source, b"", true, &mut want);
    assert_same(&got, &want);
    // Owner and mtime from Rock Ridge.
    let attr = vol.lookup(1, b"big.bin").expect("lookup");
    let meta = std::fs::metadata(source.join("big.bin")).expect("meta");
    assert_eq!((attr.uid, attr.gid), (meta.uid(), meta.gid()));
    let mtime = meta.modified().expect("mtime");
    let diff = mtime
        .duration_since(attr.mtime)
        .unwrap_or_else(|e| e.duration());
    assert!(diff.as_secs() <= 1, "mtime off by {diff:?}");
    // Partial reads across sectors.
    let big = bytes(2, 3 << 20);
    assert_eq!(
        vol.read(attr.ino.0, 4000, 10_000).expect("read"),
        &big[4000..14_000]
    );
    assert!(vol.read(attr.ino.0, 4 << 20, 10).expect("eof").is_empty());
    assert_eq!(vol.lookup(1, b"missing").err(), Some(Errno::ENOENT));
    let st = vol.statfs().expect("statfs");
    assert_eq!(st.flags, libc::ST_RDONLY);
}

#[test]
fn joliet_names_are_used_without_rock_ridge() {
    let tmp = TempDir::new("iso-joliet");
    let source = tmp.path().join("src");
    make_source(&source, false);
    let image = tmp.path().join("j.iso");
    mkiso(&image, &source, &["-J", "-joliet-long"]);
    let mut vol = open(&image, "uid=5,gid=6");
    let mut got = Tree::new();
    walk(&mut vol, 1, b"", false, &mut got);
    let mut want = Tree::new();
    real_tree(&source, b"", false, &mut want);
    // Without Rock Ridge to relocate them, genisoimage leaves out
    // directories deeper than 8 levels, from the Joliet tree too.
    want.retain(|k, _| !k.starts_with(b"/d1/d2/d3/d4/d5/d6/d7/d8"));
    assert_same(&got, &want);
    let attr = vol.lookup(1, b"script.sh").expect("lookup");
    assert_eq!((attr.uid, attr.gid, attr.perm), (5, 6, 0o444));
    // With nojoliet, the plain names show.
    let mut plain = open(&image, "nojoliet");
    assert!(plain.lookup(1, b"hello.txt").is_ok());
    let long = b"A rather long name, with Mixed Case.text";
    assert_eq!(plain.lookup(1, long).err(), Some(Errno::ENOENT));
}

#[test]
fn plain_names_are_lowercased_without_their_version() {
    let tmp = TempDir::new("iso-plain");
    let source = tmp.path().join("src");
    write(&source.join("readme.txt"), b"read me\n", 0o644);
    write(&source.join("makefile"), b"all:\n", 0o644);
    write(&source.join("sub/data.bin"), &bytes(3, 5000), 0o644);
    let image = tmp.path().join("plain.iso");
    mkiso(&image, &source, &[]);
    let mut vol = open(&image, "");
    let mut got = Tree::new();
    walk(&mut vol, 1, b"", false, &mut got);
    let mut want = Tree::new();
    real_tree(&source, b"", false, &mut want);
    assert_same(&got, &want);
    let attr = vol.lookup(1, b"sub").expect("sub");
    assert_eq!((attr.kind, attr.perm), (FileType::Directory, 0o555));
    let mut off = open(&image, "map=off");
    assert!(off.lookup(1, b"README.TXT;1").is_ok());
    // Rock Ridge ignored on request: plain names again.
    let rr = tmp.path().join("rr.iso");
    mkiso(&rr, &source, &["-R"]);
    assert!(open(&rr, "norock").lookup(1, b"readme.txt").is_ok());
    // The FUSE layer mounts the same volume.
    let fs = IsoFs::new(std::fs::File::open(&image).expect("open"), "").expect("mount");
    assert_eq!(
        fs.volume().getattr(1).expect("root").kind,
        FileType::Directory
    );
}

#[test]
fn relocated_deep_directories_show_in_place() {
    // genisoimage -R moves directories deeper than 8 levels to rr_moved
    // and leaves a CL entry in their place (RE on the moved one).
    let tmp = TempDir::new("iso-deep");
    let source = tmp.path().join("src");
    make_source(&source, false);
    let image = tmp.path().join("deep.iso");
    mkiso(&image, &source, &["-R"]);
    let mut vol = open(&image, "");
    let mut got = Tree::new();
    walk(&mut vol, 1, b"", true, &mut got);
    got.retain(|k, _| !k.starts_with(b"/rr_moved"));
    let mut want = Tree::new();
    real_tree(&source, b"", true, &mut want);
    assert_same(&got, &want);
}
