//! Devices by number: a service can claim character or block device
//! numbers ([`Service::handles_device`](crate::Service::handles_device));
//! opening any device node with such a number in the view, on the real
//! file system or in a mount, is then answered by the service
//! ([`Service::open_device`](crate::Service::open_device)) instead of the
//! node's driver or file system.

/// Character or block device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    /// A character device (`S_IFCHR`).
    Char,
    /// A block device (`S_IFBLK`).
    Block,
}

impl DeviceKind {
    /// The kind of a file with `mode`, if it is a device.
    pub fn of_mode(mode: u32) -> Option<DeviceKind> {
        match mode & libc::S_IFMT {
            libc::S_IFCHR => Some(DeviceKind::Char),
            libc::S_IFBLK => Some(DeviceKind::Block),
            _ => None,
        }
    }

    /// The file type bits of this kind (`S_IFCHR`, `S_IFBLK`).
    pub fn mode_bits(self) -> u32 {
        match self {
            DeviceKind::Char => libc::S_IFCHR,
            DeviceKind::Block => libc::S_IFBLK,
        }
    }
}

/// A device number from its major and minor numbers.
pub fn makedev(major: u32, minor: u32) -> u64 {
    libc::makedev(major, minor)
}

/// The major number of `rdev`.
pub fn major(rdev: u64) -> u32 {
    libc::major(rdev)
}

/// The minor number of `rdev`.
pub fn minor(rdev: u64) -> u32 {
    libc::minor(rdev)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_kinds() {
        let d = makedev(259, 70000);
        assert_eq!((major(d), minor(d)), (259, 70000));
        assert_eq!(
            DeviceKind::of_mode(libc::S_IFCHR | 0o666),
            Some(DeviceKind::Char)
        );
        assert_eq!(DeviceKind::of_mode(libc::S_IFBLK), Some(DeviceKind::Block));
        assert_eq!(DeviceKind::of_mode(libc::S_IFREG), None);
        assert_eq!(DeviceKind::Block.mode_bits(), libc::S_IFBLK);
    }
}
