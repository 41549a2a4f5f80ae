//! Damaged images: errors, never a panic or a hang.

use viewos_core::Errno;

use super::super::IsoVolume;
use crate::fat::tests::support::{bytes, run, TempDir};

fn mount(path: &std::path::Path) -> Result<IsoVolume<std::fs::File>, Errno> {
    IsoVolume::new(std::fs::File::open(path).expect("open"), "")
}

#[test]
fn truncated_and_garbage_images_are_refused() {
    let tmp = TempDir::new("iso-bad");
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("sub")).expect("mkdir");
    std::fs::write(src.join("sub/f"), bytes(1, 100_000)).expect("write");
    let image = tmp.path().join("x.iso");
    let img = image.to_str().expect("path");
    run(
        "genisoimage",
        &["-quiet", "-R", "-o", img, src.to_str().expect("path")],
    );
    let full = std::fs::read(&image).expect("read");
    for cut in [0, 1000, 16 * 2048 + 100, 18 * 2048] {
        std::fs::write(&image, &full[..cut]).expect("write");
        assert!(mount(&image).is_err(), "cut at {cut}");
    }
    // Cut inside the file data: mounts, the file reads as EIO.
    let data = bytes(1, 100_000);
    let at = full
        .windows(64)
        .position(|w| w == &data[..64])
        .expect("file data");
    std::fs::write(&image, &full[..at + 50_000]).expect("write");
    let mut vol = mount(&image).expect("mount");
    let sub = vol.lookup(1, b"sub").expect("sub").ino.0;
    let f = vol.lookup(sub, b"f").expect("f").ino.0;
    assert_eq!(vol.read(f, 0, 200_000).err(), Some(Errno::EIO));
    for seed in 1..4 {
        std::fs::write(&image, bytes(seed, 64 << 10)).expect("write");
        assert!(mount(&image).is_err());
    }
    // Descriptors intact, everything after them garbage.
    let mut g = full.clone();
    let tail = bytes(9, g.len() - 17 * 2048);
    g[17 * 2048..].copy_from_slice(&tail);
    std::fs::write(&image, &g).expect("write");
    if let Ok(mut vol) = mount(&image) {
        let _ = vol.readdir(1);
        let _ = vol.lookup(1, b"sub");
    }
}

#[test]
fn a_directory_loop_is_eio() {
    let tmp = TempDir::new("iso-loop");
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("sub")).expect("mkdir");
    let image = tmp.path().join("x.iso");
    let img = image.to_str().expect("path");
    run(
        "genisoimage",
        &["-quiet", "-o", img, src.to_str().expect("path")],
    );
    let mut data = std::fs::read(&image).expect("read");
    // The root's extent, from the primary descriptor's root record.
    let root = 16 * 2048 + 156;
    let root_extent: [u8; 8] = data[root + 2..root + 10].try_into().expect("8 bytes");
    let start = u32::from_le_bytes(root_extent[..4].try_into().expect("4")) as usize * 2048;
    let at = data[start..start + 2048]
        .windows(3)
        .position(|w| w == b"SUB")
        .expect("SUB record")
        + start
        - 33;
    data[at + 2..at + 10].copy_from_slice(&root_extent);
    std::fs::write(&image, &data).expect("write");
    let mut vol = mount(&image).expect("mount");
    assert_eq!(vol.lookup(1, b"sub").err(), Some(Errno::EIO));
    assert_eq!(vol.readdir(1).err(), Some(Errno::EIO));
}
