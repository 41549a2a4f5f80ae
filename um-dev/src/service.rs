//! The `umdev` service: `mount -t umdevTYPE` makes the device TYPE and
//! mounts its nodes ([`NodeFs`]).

use std::sync::Arc;

use viewos_core::creds::Creds;
use viewos_core::image::{self, Image};
use viewos_core::{Errno, FileSystem, MountRequest, Service};

use crate::chardev::{Null, TrivHd};
use crate::disk::{Disk, DiskConfig, DiskDevice};
use crate::node::{Attr, Device, NodeFs, NodeOptions};
use crate::numbers::{self, Numbers};
use crate::options::{self, Access, DevOptions};
use crate::store::{ImageStore, RamStore};
use crate::table::SECTOR;
use crate::tap::Tap;

/// The prefix of every umdev mount type.
pub const PREFIX: &str = "umdev";

/// The device types (after `umdev`) and the options of their own.
const TYPES: &[(&str, &[&str])] = &[
    ("mbr", &[]),
    ("ramdisk", &["size", "mbr"]),
    ("null", &[]),
    ("trivhd", &[]),
    ("tap", &["vde"]),
];

/// The umdev service.
pub struct UmDev {
    numbers: Arc<Numbers>,
    initial: Vec<MountRequest>,
}

impl UmDev {
    /// The service with the mounts of `-p umdev,SPEC;...` (see
    /// [`crate::options`]), as a module factory.
    pub fn create(options: &str) -> Result<Box<dyn Service>, Errno> {
        Ok(Box::new(UmDev {
            numbers: Arc::new(Numbers::default()),
            initial: options::parse_preload(options)?,
        }))
    }

    /// Makes the device of `request` of type `kind`.
    fn device(
        &self,
        kind: &str,
        request: &MountRequest,
        opts: &DevOptions,
        io: &dyn FileSystem,
    ) -> Result<Arc<dyn Device>, Errno> {
        let no_slot = || Errno::new(libc::ENOSPC);
        Ok(match kind {
            "mbr" => {
                let access = match opts.access {
                    Access::Default => image::Access::ReadWriteIfAllowed,
                    Access::ReadOnly => image::Access::ReadOnly,
                    Access::ReadWrite => image::Access::ReadWrite,
                };
                let image = Image::open(io, &request.source, access)?;
                let size = image.len()?;
                let read_only = !image.is_writable();
                Arc::new(DiskDevice(Disk::new(DiskConfig {
                    store: Box::new(ImageStore(image)),
                    size,
                    slot: self
                        .numbers
                        .take(numbers::DISK_MAJOR, numbers::MINORS_PER_DISK)
                        .ok_or_else(no_slot)?,
                    partitionable: true,
                    read_only,
                })))
            }
            "ramdisk" => {
                let size = opts.size.ok_or_else(|| {
                    eprintln!("umdev: umdevramdisk needs -o size=N");
                    Errno::EINVAL
                })?;
                if size == 0 || size % SECTOR != 0 {
                    eprintln!("umdev: a ramdisk's size must be a whole number of 512-byte sectors");
                    return Err(Errno::EINVAL);
                }
                Arc::new(DiskDevice(Disk::new(DiskConfig {
                    store: Box::new(RamStore::new(size)),
                    size,
                    slot: self
                        .numbers
                        .take(numbers::RAMDISK_MAJOR, numbers::MINORS_PER_DISK)
                        .ok_or_else(no_slot)?,
                    partitionable: opts.mbr,
                    read_only: opts.access == Access::ReadOnly,
                })))
            }
            "null" => Arc::new(Null),
            "tap" => {
                let url = opts.vde.as_deref().ok_or_else(|| {
                    eprintln!("umdev: umdevtap needs -o vde=URL (a VDE switch)");
                    Errno::EINVAL
                })?;
                Arc::new(Tap::new(url)?)
            }
            "trivhd" => Arc::new(TrivHd::new(
                self.numbers
                    .take(numbers::TRIVHD_MAJOR, 1)
                    .ok_or_else(no_slot)?,
            )),
            _ => return Err(Errno::ENODEV),
        })
    }
}

impl Service for UmDev {
    fn name(&self) -> &str {
        PREFIX
    }

    fn description(&self) -> &str {
        "virtual devices (disk images with partitions, RAM disks, null, trivhd, tap on VDE)"
    }

    fn mounts_file_systems(&self) -> bool {
        true
    }

    fn mounts_on_files(&self, _fstype: &str) -> bool {
        true
    }

    fn mount(
        &self,
        request: &MountRequest,
        io: Arc<dyn FileSystem>,
    ) -> Result<Arc<dyn FileSystem>, Errno> {
        let kind = request.fstype.strip_prefix(PREFIX).ok_or(Errno::ENODEV)?;
        let own = TYPES
            .iter()
            .find(|(name, _)| *name == kind)
            .map(|(_, own)| *own)
            .ok_or(Errno::ENODEV)?;
        let opts = options::parse(&request.options, request.flags, own)?;
        let device = self.device(kind, request, &opts, io.as_ref())?;
        // New nodes belong to whoever mounts; checks are for each caller.
        let creds = Creds::caller();
        let perm = opts.mode.unwrap_or(match kind {
            "null" | "tap" => 0o666,
            _ => 0o660,
        });
        let attr = Attr::new(
            perm,
            opts.uid.unwrap_or(creds.uid),
            opts.gid.unwrap_or(creds.gid),
        );
        Ok(Arc::new(NodeFs::new(
            device,
            NodeOptions {
                name: kind.to_string(),
                attr,
                creds: None,
                debug: opts.debug,
            },
        )))
    }

    fn initial_mounts(&self) -> Vec<MountRequest> {
        self.initial.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use viewos_core::real::RealFs;
    use viewos_core::Opened;

    fn mount(fstype: &str, source: &str, options: &str) -> Result<Arc<dyn FileSystem>, Errno> {
        let s = UmDev::create("").unwrap();
        s.mount(
            &MountRequest {
                source: source.into(),
                target: "/dev/hda".into(),
                fstype: fstype.into(),
                options: options.into(),
                ..MountRequest::default()
            },
            Arc::new(RealFs),
        )
    }

    #[test]
    fn types_and_options() {
        assert!(UmDev::create("").unwrap().handles_fstype("umdevmbr"));
        assert_eq!(mount("umdevfloppy", "none", "").err(), Some(Errno::ENODEV));
        assert_eq!(mount("umdevramdisk", "none", "").err(), Some(Errno::EINVAL));
        assert_eq!(
            mount("umdevramdisk", "none", "size=1000").err(),
            Some(Errno::EINVAL)
        );
        assert_eq!(
            mount("umdevnull", "none", "size=1M").err(),
            Some(Errno::EINVAL)
        );
        assert_eq!(mount("umdevmbr", "none", "").err(), Some(Errno::EINVAL));
        let rd = mount("umdevramdisk", "none", "size=1M,mbr").unwrap();
        assert_eq!(rd.lstat(Path::new("/")).unwrap().size, 1 << 20);
        assert_eq!(rd.numbered_siblings(), Some(vec![]));
        let flat = mount("umdevramdisk", "none", "size=1M").unwrap();
        assert_eq!(flat.numbered_siblings(), None);
        let null = mount("umdevnull", "none", "").unwrap();
        let st = null.lstat(Path::new("/")).unwrap();
        assert_eq!(st.mode, libc::S_IFCHR | 0o666);
        assert_eq!(st.rdev, viewos_core::device::makedev(1, 3));
    }

    #[test]
    fn an_image_with_a_table_shows_its_partitions() {
        let dir = std::env::temp_dir().join(format!("umdev-service-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let img = dir.join("disk.img");
        let mut bytes = vec![0u8; 4096 * 512 + 100];
        bytes[..512].copy_from_slice(&crate::disk::tests::mbr(&[
            (0x83, 2048, 1024),
            (0x0c, 3072, 4096),
        ]));
        std::fs::write(&img, &bytes).unwrap();
        let fs = mount("umdevmbr", img.to_str().unwrap(), "").unwrap();
        // The odd 100 bytes at the end are no sector: not on the disk.
        assert_eq!(fs.lstat(Path::new("/")).unwrap().size, 4096 * 512);
        assert_eq!(fs.numbered_siblings(), Some(vec![1, 2]));
        // Partition 2 reaches past the end: cut there.
        assert_eq!(fs.lstat(Path::new("/2")).unwrap().size, 1024 * 512);
        let Ok(Opened::Served(p2)) = fs.open(Path::new("/2"), libc::O_RDWR, 0) else {
            panic!("partition 2 opens")
        };
        assert_eq!(p2.write(1024 * 512 - 1, b"ab"), Ok(1));
        assert_eq!(p2.write(1024 * 512, b"a"), Err(Errno::new(libc::ENOSPC)));
        drop(p2);
        // Nothing was written past the disk's end.
        let after = std::fs::read(&img).unwrap();
        assert_eq!(after.len(), bytes.len());
        assert_eq!(&after[4096 * 512..], &bytes[4096 * 512..]);
        assert_eq!(after[4096 * 512 - 1], b'a');
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
