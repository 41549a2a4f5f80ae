//! Damaged images: errors, never a panic or a hang.

use viewos_core::Errno;

use super::super::inodes::ROOT;
use super::super::FatVolume;
use super::read::make_image;
use super::support::{bytes, open_rw, run, TempDir};

/// Offset of the first FAT and the root directory of a FAT16 image
/// made by `make_image` (read from its boot sector).
fn fat16_layout(img: &[u8]) -> (usize, usize) {
    let bps = u16::from_le_bytes([img[11], img[12]]) as usize;
    let reserved = u16::from_le_bytes([img[14], img[15]]) as usize;
    let fats = img[16] as usize;
    let fat_sectors = u16::from_le_bytes([img[22], img[23]]) as usize;
    (reserved * bps, (reserved + fats * fat_sectors) * bps)
}

/// Offset of the short entry `name` (11 bytes, padded) in `img`.
fn entry_at(img: &[u8], name: &[u8; 11]) -> usize {
    img.windows(11)
        .position(|w| w == name)
        .expect("entry in image")
}

#[test]
fn truncated_and_garbage_images_are_refused() {
    let tmp = TempDir::new("fat-bad");
    let image = tmp.path().join("fat.img");
    make_image(&image, 16, None);
    let len = std::fs::metadata(&image).expect("meta").len();
    open_rw(&image).set_len(len / 2).expect("truncate");
    assert_eq!(
        FatVolume::new(open_rw(&image), "").err(),
        Some(Errno::EINVAL)
    );
    for (seed, len) in [(1, 1 << 20), (2, 100), (3, 0)] {
        std::fs::write(&image, bytes(seed, len)).expect("write");
        assert!(FatVolume::new(open_rw(&image), "").is_err());
    }
    // A boot sector with the signature but nonsense numbers.
    let mut boot = bytes(4, 64 << 10);
    boot[510] = 0x55;
    boot[511] = 0xAA;
    std::fs::write(&image, &boot).expect("write");
    assert!(FatVolume::new(open_rw(&image), "").is_err());
}

#[test]
fn a_cycle_in_the_allocation_table_is_eio() {
    let tmp = TempDir::new("fat-cycle");
    let image = tmp.path().join("fat.img");
    make_image(&image, 16, None);
    let mut img = std::fs::read(&image).expect("read");
    let (fat, _) = fat16_layout(&img);
    img[fat + 2 * 10..fat + 2 * 10 + 2].copy_from_slice(&11u16.to_le_bytes());
    img[fat + 2 * 11..fat + 2 * 11 + 2].copy_from_slice(&10u16.to_le_bytes());
    std::fs::write(&image, &img).expect("write");
    assert_eq!(FatVolume::new(open_rw(&image), "").err(), Some(Errno::EIO));
}

#[test]
fn a_directory_loop_and_a_wild_cluster_are_eio() {
    let tmp = TempDir::new("fat-loop");
    let image = tmp.path().join("fat.img");
    make_image(&image, 16, None);
    let path = image.to_str().expect("path");
    run("mmd", &["-i", path, "::/A", "::/A/B"]);
    let file = tmp.path().join("F");
    std::fs::write(&file, b"data").expect("write");
    run("mcopy", &["-i", path, file.to_str().expect("path"), "::/F"]);
    let mut img = std::fs::read(&image).expect("read");
    let (_, root) = fat16_layout(&img);
    let a = entry_at(&img[root..], b"A          ") + root;
    let a_cluster = [img[a + 26], img[a + 27]];
    let b = entry_at(&img[root + 64..], b"B          ") + root + 64;
    img[b + 26..b + 28].copy_from_slice(&a_cluster);
    let f = entry_at(&img[root..], b"F          ") + root;
    img[f + 26..f + 28].copy_from_slice(&0xFFF0u16.to_le_bytes());
    std::fs::write(&image, &img).expect("write");

    let mut vol = FatVolume::new(open_rw(&image), "").expect("mount");
    let a = vol.lookup(ROOT, "A").expect("A").ino.0;
    // B shows A's entries, B among them; going into it again is refused.
    let b = vol.lookup(a, "B").expect("B").ino.0;
    assert_eq!(vol.lookup(b, "B").err(), Some(Errno::EIO));
    assert_eq!(vol.readdir(b).err(), Some(Errno::EIO));
    assert_eq!(vol.lookup(ROOT, "F").err(), Some(Errno::EIO));
    assert_eq!(vol.readdir(ROOT).err(), Some(Errno::EIO));
}
