//! The `umfuse` service: `mount -t umfuseNAME` picks the submodule NAME,
//! starts it as the FUSE server of a new session, and mounts the session's
//! tree ([`FuseFs`]).

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use viewos_core::{Errno, FileSystem, MountRequest, Service};

use crate::client::Client;
use crate::connection::{self, Connection};
use crate::dev_fuse::{self, Deferred, DevFuseNode, Sessions};
use crate::fuse_fs::{FuseFs, Policy};
use crate::image::Image;
use crate::options::{self, MountOptions};
use crate::perm::Creds;
use crate::program::{self, MakeArgv, Rendezvous};

/// Starts a submodule's server on the server end of a session.
/// Returns the server's thread, which ends once the file system is dropped.
type Starter = Arc<
    dyn Fn(&MountRequest, Arc<dyn FileSystem>, OwnedFd) -> Result<JoinHandle<()>, Errno>
        + Send
        + Sync,
>;

/// The options of `umfusefat` besides umfuse's.
const FAT_OPTIONS: &[&str] = &["umask", "fmask", "dmask"];

/// The options of `umfuseiso9660` besides umfuse's.
const ISO_OPTIONS: &[&str] = &["mode", "dmode", "map", "norock", "nojoliet"];

/// The prefix of every umfuse mount type.
pub const PREFIX: &str = "umfuse";

/// A submodule: its name (after `umfuse`), how to start its server, and
/// the mount options of its own it accepts besides umfuse's.
struct Sub {
    name: String,
    server: ServerKind,
    options: Vec<String>,
}

/// Where a submodule's FUSE server runs.
enum ServerKind {
    /// A `fuser::Filesystem` on a thread of the host.
    InProcess(Starter),
    /// An unmodified FUSE program started in the view ([`crate::program`]).
    Program(MakeArgv),
}

/// Collects the submodules of a [`UmFuse`] service.
pub struct Builder {
    subs: Vec<Sub>,
    initial: Vec<MountRequest>,
}

impl Builder {
    /// Registers a submodule: `mount -t umfuseNAME SOURCE TARGET` calls
    /// `make(request, io)` for a new `fuser::Filesystem` and serves the
    /// mount with it. `io` is the view as it was before the mount (see
    /// `viewos_core::nesting`): do the file system's own I/O through it.
    /// Every mount gets its own file system and session, so one submodule
    /// may be mounted several times at once. A later registration of the
    /// same name replaces the earlier.
    pub fn filesystem<FS, F>(self, name: &str, make: F) -> Builder
    where
        FS: fuser::Filesystem,
        F: Fn(&MountRequest, Arc<dyn FileSystem>) -> Result<FS, Errno> + Send + Sync + 'static,
    {
        self.filesystem_with_options(name, &[], make)
    }

    /// Like [`Builder::filesystem`], for a file system that reads mount
    /// options of its own from `request.options`: `options` names them
    /// (`"umask"` accepts `umask=N`, `"norock"` the bare word), and umfuse
    /// accepts them besides its own instead of refusing them.
    pub fn filesystem_with_options<FS, F>(self, name: &str, options: &[&str], make: F) -> Builder
    where
        FS: fuser::Filesystem,
        F: Fn(&MountRequest, Arc<dyn FileSystem>) -> Result<FS, Errno> + Send + Sync + 'static,
    {
        let label = name.to_string();
        let start: Starter =
            Arc::new(move |req, io, server| crate::serve::spawn(make(req, io)?, server, &label));
        self.add(name, ServerKind::InProcess(start), options)
    }

    /// Registers a submodule served by an unmodified FUSE program that
    /// the view starts for each mount (see [`crate::program`]): `argv`
    /// makes its command line from the request and umfuse's parsed
    /// options; the program must mount on the request's target (as
    /// libfuse programs do with their mount point argument). `umfuseext2`
    /// is `fuse2fs` registered so.
    pub fn program<F>(self, name: &str, options: &[&str], argv: F) -> Builder
    where
        F: Fn(&MountRequest, &MountOptions) -> Vec<OsString> + Send + Sync + 'static,
    {
        self.add(name, ServerKind::Program(Arc::new(argv)), options)
    }

    fn add(mut self, name: &str, server: ServerKind, options: &[&str]) -> Builder {
        self.subs.retain(|sub| sub.name != name);
        self.subs.push(Sub {
            name: name.to_string(),
            server,
            options: options.iter().map(|o| o.to_string()).collect(),
        });
        self
    }

    /// Mounts to make when the service is loaded.
    pub fn initial_mounts(mut self, mounts: Vec<MountRequest>) -> Builder {
        self.initial = mounts;
        self
    }

    /// The service.
    pub fn build(self) -> UmFuse {
        UmFuse {
            subs: self.subs,
            initial: self.initial,
            sessions: Arc::default(),
            rendezvous: Arc::default(),
        }
    }
}

/// The umfuse module (`umview -p umfuse`, `um_add_service umfuse`).
pub struct UmFuse {
    subs: Vec<Sub>,
    initial: Vec<MountRequest>,
    /// Sessions opened through the view's `/dev/fuse`, not mounted yet.
    sessions: Arc<Sessions>,
    /// Mounts waiting for the program they started to mount.
    rendezvous: Arc<Rendezvous>,
}

impl UmFuse {
    /// A builder holding the built-in submodules (`umfusenull`,
    /// `umfusereal`, `umfusefat`, `umfuseiso9660`, and `umfuseext2`,
    /// `umfuseext3`, `umfuseext4` served by `fuse2fs`); add your own with
    /// [`Builder::filesystem`] or [`Builder::program`].
    pub fn builder() -> Builder {
        Builder {
            subs: Vec::new(),
            initial: Vec::new(),
        }
        .filesystem("null", |_, _| Ok(crate::null::NullFs::new()))
        .filesystem("real", crate::real::RealFuse::for_mount)
        .filesystem_with_options("fat", FAT_OPTIONS, |req: &MountRequest, io| {
            let ro = options::parse(&req.options, req.flags, FAT_OPTIONS)?.read_only;
            let image = Image::open(req, &io, ro)?;
            let mut opts = req.options.clone();
            if ro {
                opts.push_str(",ro");
            }
            crate::fat::FatFs::from_storage(image, &opts)
        })
        .filesystem_with_options("iso9660", ISO_OPTIONS, |req: &MountRequest, io| {
            crate::iso9660::IsoFs::from_storage(Image::open(req, &io, true)?, &req.options)
        })
        .program("ext2", &[], program::fuse2fs_argv)
        .program("ext3", &[], program::fuse2fs_argv)
        .program("ext4", &[], program::fuse2fs_argv)
    }

    /// The factory for a module registry: `options` are `-p` specs (see
    /// [`crate::options`]); bad ones are `EINVAL`.
    pub fn create(options: &str) -> Result<Box<dyn Service>, Errno> {
        let initial = options::parse_preload(options)?;
        Ok(Box::new(UmFuse::builder().initial_mounts(initial).build()))
    }

    fn submodule(&self, fstype: &str) -> Option<&Sub> {
        let name = fstype.strip_prefix(PREFIX)?;
        self.subs.iter().find(|sub| sub.name == name)
    }
}

impl UmFuse {
    /// The mount(2) of an unmodified FUSE program (type `fuse.TYPE`, its
    /// `/dev/fuse` session as `fd=N`; see [`crate::dev_fuse`]).
    fn mount_program(&self, request: &MountRequest) -> Result<Arc<dyn FileSystem>, Errno> {
        let opts = dev_fuse::parse_kernel_options(&request.options)?;
        let fd = request.fd.as_ref().ok_or(Errno::EINVAL)?;
        let client_end = self.sessions.take(fd)?;
        let creds = Creds {
            uid: opts.user_id,
            gid: opts.group_id,
            groups: Vec::new(),
        };
        // As the kernel's FUSE: default_permissions checks are for the
        // calling program; the mount's user_id= is the server's business.
        let policy = Policy {
            read_only: request.flags & libc::MS_RDONLY != 0,
            human: opts.default_permissions,
            ids: None,
        };
        Ok(Arc::new(Deferred::new(move || {
            let conn = Connection::new(
                client_end,
                connection::Config {
                    uid: creds.uid,
                    gid: creds.gid,
                    per_caller: true,
                    debug: None,
                },
            )?;
            let client = Arc::new(Client::new(conn, new_dev()));
            Ok(Arc::new(FuseFs::new(client, policy)) as Arc<dyn FileSystem>)
        })))
    }
}

/// A device number of its own for each mount (major 0, as the kernel's
/// anonymous devices).
fn new_dev() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0x900);
    let minor = NEXT.fetch_add(1, Ordering::Relaxed);
    ((minor & !0xff) << 12) | (minor & 0xff)
}

impl Service for UmFuse {
    fn name(&self) -> &str {
        "umfuse"
    }

    fn description(&self) -> &str {
        "virtual file systems (user level FUSE)"
    }

    fn mounts_file_systems(&self) -> bool {
        true
    }

    fn handles_fstype(&self, fstype: &str) -> bool {
        self.submodule(fstype).is_some()
            || fstype == dev_fuse::DEV_FUSE_TYPE
            || dev_fuse::is_kernel_fuse_type(fstype)
    }

    fn mount(
        &self,
        request: &MountRequest,
        io: Arc<dyn FileSystem>,
    ) -> Result<Arc<dyn FileSystem>, Errno> {
        if request.fstype == dev_fuse::DEV_FUSE_TYPE {
            return Ok(Arc::new(DevFuseNode::new(self.sessions.clone())));
        }
        if dev_fuse::is_kernel_fuse_type(&request.fstype) {
            return self.mount_program(request);
        }
        let sub = self.submodule(&request.fstype).ok_or(Errno::ENODEV)?;
        let own: Vec<&str> = sub.options.iter().map(String::as_str).collect();
        let opts = options::parse(&request.options, request.flags, &own)?;
        // uid=/gid= fix whom the mount's checks and requests are for;
        // without them, each call's program.
        let fixed = opts.uid.is_some() || opts.gid.is_some();
        let mut creds = Creds::caller();
        if let Some(u) = opts.uid {
            creds.uid = u;
        }
        if let Some(g) = opts.gid {
            creds.gid = g;
            creds.groups.clear();
        }
        let label = opts
            .fsname
            .clone()
            .unwrap_or_else(|| format!("{} on {}", request.fstype, request.target.display()));
        let config = connection::Config {
            uid: creds.uid,
            gid: creds.gid,
            per_caller: !fixed,
            debug: opts.debug.then_some(label),
        };
        let conn = match &sub.server {
            ServerKind::InProcess(start) => {
                let (client_end, server_end) = connection::pair()?;
                let server = start(request, io, server_end)?;
                let conn = Connection::new(client_end, config)?;
                conn.own_server(server);
                conn
            }
            ServerKind::Program(argv) => {
                // A missing image is the mount's ENOENT, as for a block
                // device that does not exist (the program would say so
                // only after it started).
                if !request.source.starts_with('/') {
                    return Err(Errno::ENOENT);
                }
                io.lstat(std::path::Path::new(&request.source))?;
                let (client_end, helper) =
                    program::start(&request.fstype, argv, request, &opts, &self.rendezvous)?;
                // A failed handshake closes the session: the program ends.
                let conn = Connection::new(client_end, config)?;
                conn.own_program(helper);
                conn
            }
        };
        let client = Arc::new(Client::new(conn, new_dev()));
        let policy = Policy {
            read_only: opts.read_only,
            human: opts.human,
            ids: fixed.then_some(creds),
        };
        Ok(Arc::new(FuseFs::new(client, policy)))
    }

    fn join_mount(&self, request: &MountRequest) -> Option<Result<(), Errno>> {
        self.rendezvous.join(request, &self.sessions)
    }

    fn initial_mounts(&self) -> Vec<MountRequest> {
        let mut all = vec![dev_fuse::dev_fuse_mount()];
        all.extend(self.initial.iter().cloned());
        all
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use viewos_core::real::RealFs;
    use viewos_core::{Opened, SetTime, Timespec};

    use super::*;

    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn mount(kind: &str, source: &Path, options: &str) -> Result<Arc<dyn FileSystem>, Errno> {
        let s = UmFuse::builder().build();
        let req = MountRequest {
            source: source.to_string_lossy().into_owned(),
            target: "/mnt".into(),
            fstype: kind.into(),
            flags: 0,
            options: options.into(),
            fd: None,
            launcher: None,
        };
        s.mount(&req, Arc::new(RealFs))
    }

    fn served(o: Opened) -> Box<dyn viewos_core::FileHandle> {
        match o {
            Opened::Served(h) => h,
            _ => panic!("not served"),
        }
    }

    #[test]
    fn real_passthrough_end_to_end_in_process() {
        let d = std::env::temp_dir().join(format!("umfuse-real-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::write(d.join("sub/f"), "hello").unwrap();
        let _clean = Dir(d.clone());
        let fs = mount("umfusereal", &d, "").unwrap();
        let p = Path::new;
        assert_eq!(fs.lstat(p("/sub/f")).unwrap().size, 5);
        assert_eq!(fs.lstat(p("/nope")), Err(Errno::ENOENT));
        assert!(fs.lstat(p("/")).unwrap().is_dir());
        // Create, write across several WRITEs, read back.
        let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let h = served(
            fs.open(p("/sub/g"), libc::O_CREAT | libc::O_WRONLY, 0o640)
                .unwrap(),
        );
        assert_eq!(h.write(0, &big), Ok(big.len()));
        drop(h);
        assert_eq!(std::fs::read(d.join("sub/g")).unwrap(), big);
        let h = served(fs.open(p("/sub/g"), libc::O_RDONLY, 0).unwrap());
        let mut back = vec![0u8; big.len() + 10];
        assert_eq!(h.read(0, &mut back), Ok(big.len()));
        assert_eq!(&back[..big.len()], &big[..]);
        assert_eq!(h.stat().unwrap().size, big.len() as u64);
        drop(h);
        assert_eq!(
            fs.open(
                p("/sub/g"),
                libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY,
                0o600
            )
            .err(),
            Some(Errno::EEXIST)
        );
        // Names.
        fs.mkdir(p("/sub/dir"), 0o755).unwrap();
        fs.symlink(p("g"), p("/sub/link")).unwrap();
        assert_eq!(fs.readlink(p("/sub/link")).unwrap(), p("g"));
        fs.link(p("/sub/g"), p("/sub/hard")).unwrap();
        assert_eq!(fs.lstat(p("/sub/g")).unwrap().nlink, 2);
        fs.rename(p("/sub/hard"), p("/sub/dir/moved"), 0).unwrap();
        assert!(d.join("sub/dir/moved").exists());
        assert_eq!(fs.lstat(p("/sub/hard")), Err(Errno::ENOENT));
        fs.chmod(p("/sub/g"), 0o600).unwrap();
        assert_eq!(fs.lstat(p("/sub/g")).unwrap().mode & 0o777, 0o600);
        let t = Timespec {
            sec: 981173106,
            nsec: 0,
        };
        fs.utimens(p("/sub/g"), SetTime::Omit, SetTime::At(t))
            .unwrap();
        assert_eq!(fs.lstat(p("/sub/g")).unwrap().mtime, t);
        fs.truncate(p("/sub/g"), 3).unwrap();
        assert_eq!(std::fs::metadata(d.join("sub/g")).unwrap().len(), 3);
        assert_eq!(fs.rmdir(p("/sub/dir")), Err(Errno::ENOTEMPTY));
        fs.unlink(p("/sub/dir/moved")).unwrap();
        fs.rmdir(p("/sub/dir")).unwrap();
        fs.access(p("/sub/g"), libc::R_OK).unwrap();
        assert!(fs.statfs(p("/")).unwrap().blocks > 0);
        // Listing.
        let dir = served(
            fs.open(p("/sub"), libc::O_RDONLY | libc::O_DIRECTORY, 0)
                .unwrap(),
        );
        let mut names = Vec::new();
        dir.read_dir(0, &mut |e| {
            names.push(String::from_utf8_lossy(e.name).into_owned());
            true
        })
        .unwrap();
        names.sort();
        assert_eq!(names, [".", "..", "f", "g", "link"]);
        drop(dir);
        drop(fs);
    }

    #[test]
    fn human_mounts_check_permissions_for_the_given_ids() {
        let d = std::env::temp_dir().join(format!("umfuse-human-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let _clean = Dir(d.clone());
        std::fs::write(d.join("private"), "p").unwrap();
        std::fs::write(d.join("public"), "p").unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = |m| std::fs::Permissions::from_mode(m);
        std::fs::set_permissions(d.join("private"), mode(0o600)).unwrap();
        std::fs::set_permissions(d.join("public"), mode(0o644)).unwrap();
        std::fs::set_permissions(&d, mode(0o755)).unwrap();
        // A stranger: neither the owner nor root, nor in the group.
        let fs = mount("umfusereal", &d, "human,uid=54321,gid=54321").unwrap();
        let p = Path::new;
        assert_eq!(
            fs.open(p("/private"), libc::O_RDONLY, 0).err(),
            Some(Errno::EACCES)
        );
        assert!(fs.open(p("/public"), libc::O_RDONLY, 0).is_ok());
        assert_eq!(
            fs.open(p("/public"), libc::O_WRONLY, 0).err(),
            Some(Errno::EACCES)
        );
        assert_eq!(fs.access(p("/public"), libc::W_OK), Err(Errno::EACCES));
        assert_eq!(fs.mkdir(p("/new"), 0o755), Err(Errno::EACCES));
        assert_eq!(fs.chmod(p("/public"), 0o777), Err(Errno::EPERM));
        assert!(!d.join("new").exists());
        // Omnipotent (the default): the server alone decides.
        let fs = mount("umfusereal", &d, "").unwrap();
        assert!(fs.open(p("/public"), libc::O_RDONLY, 0).is_ok());
    }

    #[test]
    fn read_only_null_and_bad_mounts() {
        let d = std::env::temp_dir();
        let fs = mount("umfusereal", &d, "ro").unwrap();
        assert_eq!(
            fs.mkdir(Path::new("/x-umfuse-ro"), 0o755),
            Err(Errno::EROFS)
        );
        let null = mount("umfusenull", Path::new("none"), "").unwrap();
        assert!(null.lstat(Path::new("/")).unwrap().is_dir());
        assert_eq!(null.lstat(Path::new("/a")), Err(Errno::ENOENT));
        assert_eq!(null.mkdir(Path::new("/a"), 0o755), Err(Errno::EROFS));
        assert_eq!(mount("umfusereal", &d, "bogus").err(), Some(Errno::EINVAL));
        assert_eq!(
            mount("umfusereal", Path::new("rel"), "").err(),
            Some(Errno::EINVAL)
        );
        assert_eq!(mount("umfusenope", &d, "").err(), Some(Errno::ENODEV));
        let s = UmFuse::builder().build();
        assert!(s.handles_fstype("umfusereal") && !s.handles_fstype("umfusenope"));
    }
}
