//! Reading images that mkfs.vfat and mcopy made.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use fuser::FileType;

use super::super::inodes::ROOT;
use super::super::FatVolume;
use super::support::{blank, bytes, open_rw, run, TempDir};

/// A tree: path -> contents (`None` for a directory).
pub(super) type Tree = BTreeMap<String, Option<Vec<u8>>>;

/// The tree below `ino`, read through the volume.
pub(super) fn walk(vol: &mut FatVolume<std::fs::File>, ino: u64, prefix: &str, out: &mut Tree) {
    for e in vol.readdir(ino).expect("readdir") {
        if e.name == "." || e.name == ".." {
            continue;
        }
        let path = format!("{prefix}/{}", e.name);
        let attr = vol.lookup(ino, &e.name).expect("lookup");
        assert_eq!(attr.ino.0, e.ino, "{path}: readdir and lookup agree");
        if e.kind == FileType::Directory {
            out.insert(path.clone(), None);
            walk(vol, e.ino, &path, out);
        } else {
            let data = vol.read(e.ino, 0, u32::MAX).expect("read");
            assert_eq!(attr.size, data.len() as u64, "{path}: size");
            out.insert(path, Some(data));
        }
    }
}

/// The tree below a real directory.
pub(super) fn real_tree(dir: &Path, prefix: &str, out: &mut Tree) {
    for e in std::fs::read_dir(dir).expect("read_dir") {
        let e = e.expect("entry");
        let name = e.file_name().into_string().expect("utf-8 name");
        let path = format!("{prefix}/{name}");
        if e.file_type().expect("type").is_dir() {
            out.insert(path.clone(), None);
            real_tree(&e.path(), &path, out);
        } else {
            out.insert(path, Some(std::fs::read(e.path()).expect("read")));
        }
    }
}

/// A source tree with short and long names, nested directories and files
/// of several sizes (up to 1 MiB).
pub(super) fn make_source(root: &Path) {
    let files: [(&str, usize); 8] = [
        ("hello.txt", 13),
        ("README", 700),
        ("A long file name with spaces.text", 5000),
        ("empty", 0),
        ("dir/sub/deep.bin", 40_000),
        ("dir/MixedCase.Dat", 2048),
        ("dir/another directory/x", 1),
        ("big.bin", 1 << 20),
    ];
    for (i, (name, len)) in files.iter().enumerate() {
        let p = root.join(name);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, bytes(i as u64 + 1, *len)).expect("write");
    }
    std::fs::create_dir_all(root.join("empty dir")).expect("mkdir");
}

/// Makes a FAT`bits` image at `image` holding the tree at `source`.
pub(super) fn make_image(image: &Path, bits: u32, source: Option<&Path>) {
    let (size, extra): (u64, &[&str]) = match bits {
        12 => (4 << 20, &[]),
        16 => (16 << 20, &[]),
        _ => (40 << 20, &["-s", "1"]),
    };
    blank(image, size);
    let fat = format!("{bits}");
    let img = image.to_str().expect("path");
    let mut args = vec!["-F", fat.as_str()];
    args.extend_from_slice(extra);
    args.push(img);
    run("mkfs.vfat", &args);
    if let Some(source) = source {
        for e in std::fs::read_dir(source).expect("read_dir") {
            let p = e.expect("entry").path();
            run(
                "mcopy",
                &["-i", img, "-s", "-m", p.to_str().expect("path"), "::/"],
            );
        }
    }
}

fn read_back(bits: u32) {
    let tmp = TempDir::new(&format!("fat{bits}-read"));
    let source = tmp.path().join("src");
    make_source(&source);
    let image = tmp.path().join("fat.img");
    make_image(&image, bits, Some(&source));

    let mut vol = FatVolume::new(open_rw(&image), "").expect("mount");
    let mut got = Tree::new();
    walk(&mut vol, ROOT, "", &mut got);
    let mut want = Tree::new();
    real_tree(&source, "", &mut want);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "FAT{bits}: names"
    );
    for (path, data) in &want {
        assert!(got[path] == *data, "FAT{bits}: contents of {path}");
    }

    // Attributes: modes from the default masks, mtime kept by mcopy -m.
    let attr = vol.lookup(ROOT, "big.bin").expect("lookup");
    assert_eq!(
        (attr.kind, attr.perm, attr.nlink),
        (FileType::RegularFile, 0o644, 1)
    );
    assert_eq!(attr.size, 1 << 20);
    let src_mtime = std::fs::metadata(source.join("big.bin"))
        .and_then(|m| m.modified())
        .expect("mtime");
    let diff = src_mtime
        .duration_since(attr.mtime)
        .unwrap_or_else(|e| e.duration());
    assert!(
        diff <= Duration::from_secs(2),
        "FAT{bits}: mtime off by {diff:?}"
    );
    let dir = vol.lookup(ROOT, "dir").expect("lookup dir");
    assert_eq!(
        (dir.kind, dir.perm, dir.nlink),
        (FileType::Directory, 0o755, 4)
    );
    let root = vol.getattr(ROOT).expect("root");
    assert_eq!(root.kind, FileType::Directory);

    // Names are found in any case; inode numbers are stable.
    let again = vol
        .lookup(ROOT, "A LONG FILE NAME WITH SPACES.TEXT")
        .expect("any case");
    let first = vol
        .lookup(ROOT, "A long file name with spaces.text")
        .expect("exact");
    assert_eq!(again.ino, first.ino);
    assert_eq!(vol.lookup(ROOT, "missing"), Err(viewos_core::Errno::ENOENT));
    assert_eq!(vol.lookup(dir.ino.0, "..").expect("..").ino.0, ROOT);

    // Partial reads.
    let big = bytes(8, 1 << 20);
    let part = vol.read(attr.ino.0, 1000, 5000).expect("read");
    assert_eq!(part, &big[1000..6000]);
    assert!(vol.read(attr.ino.0, 2 << 20, 10).expect("eof").is_empty());
    assert_eq!(vol.read(dir.ino.0, 0, 10), Err(viewos_core::Errno::EISDIR));

    let st = vol.statfs().expect("statfs");
    assert!(st.blocks_free < st.blocks && st.blocks_free > 0);
    assert_eq!(st.name_max, 255);
}

#[test]
fn fat12_images_read_back() {
    read_back(12);
}

#[test]
fn fat16_images_read_back() {
    read_back(16);
}

#[test]
fn fat32_images_read_back() {
    read_back(32);
}

#[test]
fn read_only_mount_refuses_changes() {
    let tmp = TempDir::new("fat-ro");
    let image = tmp.path().join("fat.img");
    make_image(&image, 16, None);
    let before = std::fs::read(&image).expect("image");
    let mut vol = FatVolume::new(open_rw(&image), "ro,uid=7,gid=8,umask=077").expect("mount");
    use viewos_core::Errno;
    assert_eq!(vol.create(ROOT, "x").err(), Some(Errno::EROFS));
    assert_eq!(vol.mkdir(ROOT, "d").err(), Some(Errno::EROFS));
    assert_eq!(vol.statfs().expect("statfs").flags, libc::ST_RDONLY);
    let root = vol.getattr(ROOT).expect("root");
    assert_eq!((root.uid, root.gid, root.perm), (7, 8, 0o700));
    drop(vol);
    assert!(
        std::fs::read(&image).expect("image") == before,
        "ro mount wrote"
    );
}

#[test]
fn the_fuse_layer_runs_the_volume_on_its_thread() {
    let tmp = TempDir::new("fat-fuse");
    let image = tmp.path().join("fat.img");
    make_image(&image, 12, None);
    let fs = super::super::FatFs::new(open_rw(&image), "").expect("mount");
    let ino = fs
        .run(|v| v.create(ROOT, "made.txt"))
        .expect("create")
        .ino
        .0;
    assert_eq!(fs.run(move |v| v.write(ino, 0, b"hi")), Ok(2));
    drop(fs);
    let out = run(
        "mtype",
        &["-i", image.to_str().expect("path"), "::/made.txt"],
    );
    assert_eq!(out.stdout, b"hi");
    let bad = tmp.path().join("bad.img");
    std::fs::write(&bad, b"not a volume").expect("write");
    assert!(super::super::FatFs::new(open_rw(&bad), "").is_err());
}
