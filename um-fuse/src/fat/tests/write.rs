//! Writing through the volume, then checking with fsck.fat and mtools.

use std::time::{Duration, UNIX_EPOCH};

use viewos_core::Errno;

use super::super::inodes::ROOT;
use super::super::{FatVolume, SetAttr};
use super::read::{make_image, walk, Tree};
use super::support::{bytes, open_rw, run, try_run, TempDir};

/// Writes `data` to `ino` in chunks, as FUSE does.
fn write_all(vol: &mut FatVolume<std::fs::File>, ino: u64, data: &[u8]) {
    let mut off = 0;
    for chunk in data.chunks(65_536) {
        assert_eq!(vol.write(ino, off, chunk), Ok(chunk.len()));
        off += chunk.len() as u64;
    }
}

fn write_then_check(bits: u32) {
    let tmp = TempDir::new(&format!("fat{bits}-write"));
    let image = tmp.path().join("fat.img");
    make_image(&image, bits, None);
    let img = image.to_str().expect("path");
    let mut vol = FatVolume::new(open_rw(&image), "").expect("mount");
    let mut want = Tree::new();
    let free_before = vol.statfs().expect("statfs").blocks_free;

    let docs = vol
        .mkdir(ROOT, "Documents and Settings")
        .expect("mkdir")
        .ino
        .0;
    let nested = vol.mkdir(docs, "nested").expect("mkdir").ino.0;
    let deeper = vol.mkdir(nested, "deeper").expect("mkdir").ino.0;
    let scratch = vol.mkdir(ROOT, "scratch").expect("mkdir").ino.0;
    assert_eq!(vol.mkdir(ROOT, "SCRATCH").err(), Some(Errno::EEXIST));

    let cluster = u64::from(vol.getattr(ROOT).expect("root").blksize);
    let sizes = [0, 1, 511, 512, 513, cluster as usize + 1, 100_000, 1 << 20];
    for (i, &size) in sizes.iter().enumerate() {
        let (parent, dir) = if i % 2 == 0 {
            (ROOT, "")
        } else {
            (deeper, "/Documents and Settings/nested/deeper")
        };
        let name = format!("file {i} with a rather long name.bin");
        let ino = vol.create(parent, &name).expect("create").ino.0;
        let data = bytes(100 + i as u64, size);
        write_all(&mut vol, ino, &data);
        assert_eq!(vol.getattr(ino).expect("attr").size, size as u64);
        want.insert(format!("{dir}/{name}"), Some(data));
    }
    let short = vol.create(ROOT, "SHORT.TXT").expect("create").ino.0;
    write_all(&mut vol, short, b"short name\n");
    want.insert("/SHORT.TXT".into(), Some(b"short name\n".to_vec()));

    // Rename a file within a directory, keeping its inode number.
    let f2 = vol
        .lookup(ROOT, "file 2 with a rather long name.bin")
        .expect("lookup");
    vol.rename(
        ROOT,
        "file 2 with a rather long name.bin",
        ROOT,
        "renamed 2.bin",
        0,
    )
    .expect("rename");
    assert_eq!(
        vol.lookup(ROOT, "renamed 2.bin").expect("lookup").ino,
        f2.ino
    );
    let data = want
        .remove("/file 2 with a rather long name.bin")
        .expect("known");
    want.insert("/renamed 2.bin".into(), data);

    // Move a file to another directory, replacing a file there.
    let victim = vol.create(scratch, "target.bin").expect("create").ino.0;
    write_all(&mut vol, victim, b"to be replaced");
    vol.rename(
        ROOT,
        "file 4 with a rather long name.bin",
        scratch,
        "target.bin",
        0,
    )
    .expect("rename over");
    let data = want
        .remove("/file 4 with a rather long name.bin")
        .expect("known");
    want.insert("/scratch/target.bin".into(), data);
    assert_eq!(
        vol.rename(ROOT, "SHORT.TXT", scratch, "target.bin", 1)
            .err(),
        Some(Errno::EEXIST)
    );

    // Move a directory (with its contents) to another directory.
    vol.rename(docs, "nested", scratch, "moved nested", 0)
        .expect("rename dir");
    assert_eq!(
        vol.rename(scratch, "moved nested", deeper, "inside itself", 0)
            .err(),
        Some(Errno::EINVAL)
    );
    let moved: Vec<_> = want
        .keys()
        .filter(|k| k.starts_with("/Documents and Settings/nested/"))
        .cloned()
        .collect();
    for k in moved {
        let data = want.remove(&k).expect("known");
        let to = k.replace("/Documents and Settings/nested/", "/scratch/moved nested/");
        want.insert(to, data);
    }

    // Unlink, rmdir (empty and not).
    vol.unlink(ROOT, "file 0 with a rather long name.bin")
        .expect("unlink");
    want.remove("/file 0 with a rather long name.bin");
    assert_eq!(vol.rmdir(ROOT, "scratch").err(), Some(Errno::ENOTEMPTY));
    assert_eq!(vol.unlink(ROOT, "scratch").err(), Some(Errno::EISDIR));
    let gone = vol.mkdir(ROOT, "gone").expect("mkdir").ino.0;
    vol.rmdir(ROOT, "gone").expect("rmdir");
    assert_eq!(vol.getattr(gone).err(), Some(Errno::ENOENT));

    // Truncate down, extend with zeros, write past the end.
    let big = vol
        .lookup(deeper, "file 7 with a rather long name.bin")
        .expect("big")
        .ino
        .0;
    let set = |size| SetAttr {
        size: Some(size),
        ..SetAttr::default()
    };
    vol.setattr(big, set(3000)).expect("truncate");
    let key = "/scratch/moved nested/deeper/file 7 with a rather long name.bin";
    if let Some(Some(d)) = want.get_mut(key) {
        d.truncate(3000);
    }
    let small = vol
        .lookup(deeper, "file 1 with a rather long name.bin")
        .expect("small")
        .ino
        .0;
    vol.setattr(small, set(10_000)).expect("extend");
    let key = "/scratch/moved nested/deeper/file 1 with a rather long name.bin";
    if let Some(Some(d)) = want.get_mut(key) {
        d.resize(10_000, 0);
    }
    let gap = vol.create(ROOT, "gap").expect("create").ino.0;
    assert_eq!(vol.write(gap, 5000, b"after the gap"), Ok(13));
    let mut g = vec![0u8; 5000];
    g.extend_from_slice(b"after the gap");
    want.insert("/gap".into(), Some(g));

    // Times.
    let when = UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    let stamped = vol
        .setattr(
            short,
            SetAttr {
                mtime: Some(when),
                ..SetAttr::default()
            },
        )
        .expect("utimens");
    assert_eq!(stamped.mtime, when);
    assert_eq!(
        vol.setattr(
            short,
            SetAttr {
                mode: Some(0o777),
                ..SetAttr::default()
            }
        )
        .err(),
        Some(Errno::EPERM)
    );

    for dir in [
        "/Documents and Settings",
        "/scratch",
        "/scratch/moved nested",
        "/scratch/moved nested/deeper",
    ] {
        want.insert(dir.into(), None);
    }
    let mut got = Tree::new();
    walk(&mut vol, ROOT, "", &mut got);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    assert!(got == want, "FAT{bits}: contents through the volume");
    let free_after = vol.statfs().expect("statfs").blocks_free;
    assert!(free_after < free_before);
    drop(vol);

    // The real tools agree.
    let fsck = try_run("fsck.fat", &["-n", img]);
    assert!(
        fsck.status.success(),
        "FAT{bits}: fsck.fat -n: {}{}",
        String::from_utf8_lossy(&fsck.stdout),
        String::from_utf8_lossy(&fsck.stderr)
    );
    for (path, data) in &want {
        if let Some(data) = data {
            let out = run("mtype", &["-i", img, &format!("::{path}")]);
            assert!(out.stdout == *data, "FAT{bits}: mtype {path}");
        }
    }
    let listing = run("mdir", &["-i", img, "-/", "::/"]);
    let listing = String::from_utf8_lossy(&listing.stdout);
    for name in [
        "renamed 2.bin",
        "moved nested",
        "file 7 with a rather long name.bin",
    ] {
        assert!(
            listing.contains(name),
            "FAT{bits}: mdir lists {name}:\n{listing}"
        );
    }
    let mtime = vol_mtime(&image, "SHORT.TXT");
    assert_eq!(mtime, when);

    // And so does a second mount.
    let mut vol = FatVolume::new(open_rw(&image), "").expect("remount");
    let mut again = Tree::new();
    walk(&mut vol, ROOT, "", &mut again);
    assert!(again == want, "FAT{bits}: contents after remount");
}

/// The mtime of `name` in the root, as a fresh mount sees it.
fn vol_mtime(image: &std::path::Path, name: &str) -> std::time::SystemTime {
    let mut vol = FatVolume::new(open_rw(image), "ro").expect("mount");
    vol.lookup(ROOT, name).expect("lookup").mtime
}

#[test]
fn fat12_writes_pass_fsck_and_mtools() {
    write_then_check(12);
}

#[test]
fn fat16_writes_pass_fsck_and_mtools() {
    write_then_check(16);
}

#[test]
fn fat32_writes_pass_fsck_and_mtools() {
    write_then_check(32);
}

#[test]
fn a_full_volume_answers_enospc() {
    let tmp = TempDir::new("fat-full");
    let image = tmp.path().join("fat.img");
    make_image(&image, 12, None);
    let mut vol = FatVolume::new(open_rw(&image), "").expect("mount");
    let ino = vol.create(ROOT, "fill").expect("create").ino.0;
    let chunk = vec![0xA5u8; 65_536];
    let mut off = 0u64;
    let err = loop {
        match vol.write(ino, off, &chunk) {
            Ok(n) => off += n as u64,
            Err(e) => break e,
        }
        assert!(off < 8 << 20, "a 4 MiB volume took more than 8 MiB");
    };
    assert_eq!(err.raw(), libc::ENOSPC);
    drop(vol);
    let img = image.to_str().expect("path");
    let fsck = try_run("fsck.fat", &["-n", img]);
    assert!(
        fsck.status.success(),
        "{}",
        String::from_utf8_lossy(&fsck.stdout)
    );
}
