//! The x86_64 layouts of `struct stat` and `struct statx`, filled from a
//! [`FileStat`] for answers written into a traced program's memory.

use viewos_core::{FileStat, FsStat};

/// Size of `struct stat` on x86_64.
pub const STAT_SIZE: usize = 144;
/// Size of `struct statx`.
pub const STATX_SIZE: usize = 256;

fn put_u16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_ne_bytes());
}
fn put_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_ne_bytes());
}
fn put_u64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_ne_bytes());
}

/// The `st_size` a program sees: 0 for a device node, as the kernel
/// shows it (a device's [`FileStat::size`] is its capacity, for lseek).
fn shown_size(st: &FileStat) -> u64 {
    match st.file_type() {
        libc::S_IFBLK | libc::S_IFCHR => 0,
        _ => st.size,
    }
}

/// `struct stat` as the kernel's `newfstatat` writes it.
pub fn stat_bytes(st: &FileStat) -> [u8; STAT_SIZE] {
    let mut b = [0u8; STAT_SIZE];
    put_u64(&mut b, 0, st.dev);
    put_u64(&mut b, 8, st.ino);
    put_u64(&mut b, 16, st.nlink);
    put_u32(&mut b, 24, st.mode);
    put_u32(&mut b, 28, st.uid);
    put_u32(&mut b, 32, st.gid);
    put_u64(&mut b, 40, st.rdev);
    put_u64(&mut b, 48, shown_size(st));
    put_u64(&mut b, 56, st.blksize);
    put_u64(&mut b, 64, st.blocks);
    put_u64(&mut b, 72, st.atime.sec as u64);
    put_u64(&mut b, 80, st.atime.nsec as u64);
    put_u64(&mut b, 88, st.mtime.sec as u64);
    put_u64(&mut b, 96, st.mtime.nsec as u64);
    put_u64(&mut b, 104, st.ctime.sec as u64);
    put_u64(&mut b, 112, st.ctime.nsec as u64);
    b
}

/// Size of `struct statfs` on x86_64.
pub const STATFS_SIZE: usize = 120;

/// `struct statfs` as the kernel's `statfs` writes it.
pub fn statfs_bytes(st: &FsStat) -> [u8; STATFS_SIZE] {
    let mut b = [0u8; STATFS_SIZE];
    put_u64(&mut b, 0, st.fs_type);
    put_u64(&mut b, 8, st.block_size);
    put_u64(&mut b, 16, st.blocks);
    put_u64(&mut b, 24, st.blocks_free);
    put_u64(&mut b, 32, st.blocks_available);
    put_u64(&mut b, 40, st.files);
    put_u64(&mut b, 48, st.files_free);
    put_u64(&mut b, 56, st.fsid);
    put_u64(&mut b, 64, st.name_max);
    put_u64(&mut b, 72, st.fragment_size);
    put_u64(&mut b, 80, st.flags);
    b
}

const STATX_BASIC_STATS: u32 = 0x7ff;

fn major(dev: u64) -> u32 {
    (((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0x0000_0fff)) as u32
}
fn minor(dev: u64) -> u32 {
    (((dev >> 12) & 0xffff_ff00) | (dev & 0x0000_00ff)) as u32
}

/// `struct statx` with the basic fields (`STATX_BASIC_STATS`).
pub fn statx_bytes(st: &FileStat) -> [u8; STATX_SIZE] {
    let mut b = [0u8; STATX_SIZE];
    put_u32(&mut b, 0, STATX_BASIC_STATS);
    put_u32(&mut b, 4, st.blksize as u32);
    put_u32(&mut b, 16, st.nlink as u32);
    put_u32(&mut b, 20, st.uid);
    put_u32(&mut b, 24, st.gid);
    put_u16(&mut b, 28, st.mode as u16);
    put_u64(&mut b, 32, st.ino);
    put_u64(&mut b, 40, shown_size(st));
    put_u64(&mut b, 48, st.blocks);
    let ts = |b: &mut [u8], off: usize, t: viewos_core::fs::Timespec| {
        put_u64(b, off, t.sec as u64);
        put_u32(b, off + 8, t.nsec);
    };
    ts(&mut b, 64, st.atime);
    ts(&mut b, 96, st.ctime);
    ts(&mut b, 112, st.mtime);
    put_u32(&mut b, 128, major(st.rdev));
    put_u32(&mut b, 132, minor(st.rdev));
    put_u32(&mut b, 136, major(st.dev));
    put_u32(&mut b, 140, minor(st.dev));
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_layout_matches_libc() {
        assert_eq!(std::mem::size_of::<libc::stat>(), STAT_SIZE);
        let st = FileStat {
            ino: 42,
            mode: libc::S_IFREG | 0o640,
            size: 12345,
            uid: 7,
            ..FileStat::default()
        };
        let b = stat_bytes(&st);
        // SAFETY: libc::stat is plain integers; b has exactly its size.
        let s: libc::stat = unsafe { std::ptr::read_unaligned(b.as_ptr().cast()) };
        assert_eq!(s.st_ino, 42);
        assert_eq!(s.st_mode, libc::S_IFREG | 0o640);
        assert_eq!(s.st_size, 12345);
        assert_eq!(s.st_uid, 7);
    }

    #[test]
    fn statx_layout_matches_libc() {
        assert_eq!(std::mem::size_of::<libc::statx>(), STATX_SIZE);
        let st = FileStat {
            ino: 9,
            mode: libc::S_IFDIR | 0o755,
            dev: libc::makedev(8, 3),
            ..FileStat::default()
        };
        let b = statx_bytes(&st);
        // SAFETY: libc::statx is plain integers; b has exactly its size.
        let s: libc::statx = unsafe { std::ptr::read_unaligned(b.as_ptr().cast()) };
        assert_eq!(s.stx_ino, 9);
        assert_eq!(s.stx_mode as u32, libc::S_IFDIR | 0o755);
        assert_eq!((s.stx_dev_major, s.stx_dev_minor), (8, 3));
    }

    #[test]
    fn device_nodes_show_no_size() {
        let disk = FileStat {
            mode: libc::S_IFBLK | 0o660,
            size: 1 << 30,
            ..FileStat::default()
        };
        let b = stat_bytes(&disk);
        assert_eq!(&b[48..56], &[0; 8]);
        let b = statx_bytes(&disk);
        assert_eq!(&b[40..48], &[0; 8]);
    }
}
