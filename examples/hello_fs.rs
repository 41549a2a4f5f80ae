//! `hello_fs`: one `fuser::Filesystem`, two ways to serve it, no change
//! to its code.
//!
//! ```text
//! hello_fs --kernel MOUNTPOINT      fuser mounts it (open /dev/fuse, mount(2)) and
//!                                   serves it until MOUNTPOINT is unmounted
//! hello_fs COMMAND [ARGS...]        runs COMMAND in a view where it is the umfuse
//!                                   submodule `umfusehello`:
//!                                   viewmount -t umfusehello none MOUNTPOINT
//! ```
//!
//! `--kernel` is fuser's own mount code, so it needs what fuser needs:
//! the host's FUSE (`/dev/fuse` and the right to mount, i.e. root here,
//! since no `fusermount3` is used). Run inside `umview -p umfuse`, the very
//! same code opens the view's `/dev/fuse` and its mount(2) is answered by
//! the view: no kernel FUSE and no root. Without `--kernel` the file
//! system runs inside the host process, as any `fuser::Filesystem`
//! registered with `um_fuse::UmFuse::builder().filesystem(...)`.
//!
//! The tree (read-only; every mtime is 1 June 2005, owned by the user
//! serving it):
//!
//! ```text
//! hello.txt          a greeting
//! hello -> hello.txt
//! empty              no bytes
//! numbers.txt        1 to 30000, one per line (several READs long)
//! greetings/         one file per language, some with non-ASCII names
//! ```

use std::ffi::{OsStr, OsString};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use fuser::{
    AccessFlags, Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation,
    INodeNo, LockOwner, MountOption, OpenAccMode, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, Request,
};
use viewos_core::{FileSystem, MountRequest, View, ViewConfig};
use viewos_hyper::{Host, HostConfig, Program, Role};

/// The mtime (and atime, ctime) of every node: 2005-06-01 00:00:00 UTC.
const MTIME_SECS: u64 = 1_117_584_000;

/// How long the kernel (or umfuse) may keep names and attributes: the
/// tree never changes.
const TTL: Duration = Duration::from_secs(60);

/// What a node is.
enum Kind {
    /// A directory and its children's inode numbers.
    Dir(Vec<u64>),
    /// A regular file and its bytes.
    File(Vec<u8>),
    /// A symbolic link and its target.
    Link(Vec<u8>),
}

struct Node {
    name: OsString,
    parent: u64,
    kind: Kind,
}

/// The hello file system: a small fixed tree held in memory. Inode `n` is
/// `nodes[n - 1]`; inode 1 is the root.
pub struct HelloFs {
    nodes: Vec<Node>,
    uid: u32,
    gid: u32,
}

impl HelloFs {
    /// The tree, owned by `uid`:`gid`.
    pub fn new(uid: u32, gid: u32) -> HelloFs {
        let mut fs = HelloFs {
            nodes: vec![Node {
                name: "/".into(),
                parent: 1,
                kind: Kind::Dir(Vec::new()),
            }],
            uid,
            gid,
        };
        fs.add(
            1,
            "hello.txt",
            Kind::File(
                b"Hello from a fuser file system, served in a view or by the kernel.\n".to_vec(),
            ),
        );
        fs.add(1, "hello", Kind::Link(b"hello.txt".to_vec()));
        fs.add(1, "empty", Kind::File(Vec::new()));
        let numbers: String = (1..=30_000).map(|n| format!("{n}\n")).collect();
        fs.add(1, "numbers.txt", Kind::File(numbers.into_bytes()));
        let greetings = fs.add(1, "greetings", Kind::Dir(Vec::new()));
        for (lang, text) in [
            ("english", "Hello, world!\n"),
            ("italiano", "Ciao, mondo!\n"),
            ("français", "Bonjour, le monde !\n"),
            ("日本語", "こんにちは、世界！\n"),
        ] {
            fs.add(greetings, lang, Kind::File(text.as_bytes().to_vec()));
        }
        fs
    }

    /// Adds a node under the directory `parent`; returns its inode number.
    fn add(&mut self, parent: u64, name: &str, kind: Kind) -> u64 {
        self.nodes.push(Node {
            name: name.into(),
            parent,
            kind,
        });
        let ino = self.nodes.len() as u64;
        if let Kind::Dir(children) = &mut self.nodes[parent as usize - 1].kind {
            children.push(ino);
        }
        ino
    }

    fn node(&self, ino: INodeNo) -> Result<&Node, Errno> {
        let i = usize::try_from(ino.0).map_err(|_| Errno::ENOENT)?;
        self.nodes.get(i.wrapping_sub(1)).ok_or(Errno::ENOENT)
    }

    fn attr(&self, ino: u64) -> FileAttr {
        let node = &self.nodes[ino as usize - 1];
        let (kind, perm, size, nlink) = match &node.kind {
            Kind::Dir(children) => {
                let subdirs = children
                    .iter()
                    .filter(|&&c| matches!(self.nodes[c as usize - 1].kind, Kind::Dir(_)))
                    .count();
                (FileType::Directory, 0o555, 0, 2 + subdirs as u32)
            }
            Kind::File(data) => (FileType::RegularFile, 0o444, data.len() as u64, 1),
            Kind::Link(target) => (FileType::Symlink, 0o777, target.len() as u64, 1),
        };
        let time = UNIX_EPOCH + Duration::from_secs(MTIME_SECS);
        FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: time,
            mtime: time,
            ctime: time,
            crtime: time,
            kind,
            perm,
            nlink,
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        }
    }

    /// Whether the caller `uid`/`gid` may access a node of mode `perm` as
    /// `mask` asks (owner, group or other bits; root reads anything).
    fn may(&self, uid: u32, gid: u32, perm: u16, mask: AccessFlags) -> bool {
        let want = mask.bits() as u16 & 0o7;
        if uid == 0 {
            // Root may read anything; execute needs some x bit.
            return want & 0o1 == 0 || perm & 0o111 != 0;
        }
        let bits = if uid == self.uid {
            perm >> 6
        } else if gid == self.gid {
            perm >> 3
        } else {
            perm
        } & 0o7;
        bits & want == want
    }
}

impl Filesystem for HelloFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let children = match self.node(parent) {
            Ok(Node {
                kind: Kind::Dir(children),
                ..
            }) => children,
            Ok(_) => return reply.error(Errno::ENOTDIR),
            Err(e) => return reply.error(e),
        };
        let found = if name == "." {
            Some(parent.0)
        } else if name == ".." {
            Some(self.nodes[parent.0 as usize - 1].parent)
        } else {
            children
                .iter()
                .copied()
                .find(|&c| self.nodes[c as usize - 1].name == name)
        };
        match found {
            Some(ino) => reply.entry(&TTL, &self.attr(ino), Generation(0)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.node(ino) {
            Ok(_) => reply.attr(&TTL, &self.attr(ino.0)),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.node(ino) {
            Ok(Node {
                kind: Kind::Link(target),
                ..
            }) => reply.data(target),
            Ok(_) => reply.error(Errno::EINVAL),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        match self.node(ino) {
            Ok(Node {
                kind: Kind::Dir(_), ..
            }) => reply.error(Errno::EISDIR),
            Ok(_) if flags.acc_mode() != OpenAccMode::O_RDONLY => reply.error(Errno::EROFS),
            Ok(_) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.node(ino) {
            Ok(Node {
                kind: Kind::File(data),
                ..
            }) => {
                let start = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                let end = start.saturating_add(size as usize).min(data.len());
                reply.data(&data[start..end]);
            }
            Ok(Node {
                kind: Kind::Dir(_), ..
            }) => reply.error(Errno::EISDIR),
            Ok(_) => reply.error(Errno::EINVAL),
            Err(e) => reply.error(e),
        }
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.node(ino) {
            Ok(Node {
                kind: Kind::Dir(_), ..
            }) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Ok(_) => reply.error(Errno::ENOTDIR),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let node = match self.node(ino) {
            Ok(node) => node,
            Err(e) => return reply.error(e),
        };
        let Kind::Dir(children) = &node.kind else {
            return reply.error(Errno::ENOTDIR);
        };
        let dots = [
            (ino.0, FileType::Directory, OsStr::new(".")),
            (node.parent, FileType::Directory, OsStr::new("..")),
        ];
        let entries = dots.into_iter().chain(children.iter().map(|&c| {
            let child = &self.nodes[c as usize - 1];
            (c, self.attr(c).kind, child.name.as_os_str())
        }));
        // The offset of an entry is its index + 1: where the next READDIR
        // starts.
        for (i, (child, kind, name)) in entries.enumerate().skip(offset as usize) {
            if reply.add(INodeNo(child), i as u64 + 1, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let bytes: u64 = self
            .nodes
            .iter()
            .map(|n| match &n.kind {
                Kind::File(data) => data.len() as u64,
                _ => 0,
            })
            .sum();
        reply.statfs(
            bytes.div_ceil(4096),
            0,
            0,
            self.nodes.len() as u64,
            0,
            4096,
            255,
            4096,
        );
    }

    fn access(&self, req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        match self.node(ino) {
            Ok(_) if mask.contains(AccessFlags::W_OK) => reply.error(Errno::EROFS),
            Ok(_) if self.may(req.uid(), req.gid(), self.attr(ino.0).perm, mask) => reply.ok(),
            Ok(_) => reply.error(Errno::EACCES),
            Err(e) => reply.error(e),
        }
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: hello_fs --kernel MOUNTPOINT\n       hello_fs COMMAND [ARGS...]   \
         (in the view: viewmount -t umfusehello none MOUNTPOINT)"
    );
    std::process::exit(2);
}

/// `--kernel`: fuser's own mount, served in this thread until unmounted.
fn serve_kernel(mountpoint: &OsStr) -> i32 {
    // SAFETY: getuid and getgid cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::RO,
        MountOption::FSName("hello".into()),
        MountOption::DefaultPermissions,
    ];
    match fuser::mount(HelloFs::new(uid, gid), mountpoint, &config) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("hello_fs: {}: {e}", mountpoint.to_string_lossy());
            1
        }
    }
}

/// A command in a view whose umfuse knows `umfusehello`.
fn run_in_view(argv: Vec<OsString>) -> i32 {
    let umfuse = um_fuse::UmFuse::builder()
        .filesystem("hello", |_req: &MountRequest, _io: Arc<dyn FileSystem>| {
            // SAFETY: getuid and getgid cannot fail.
            let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
            Ok(HelloFs::new(uid, gid))
        })
        .build();
    let mut view = View::new(ViewConfig {
        name: "hello".into(),
        no_nesting: false,
    });
    if let Err(e) = view.add_service(Box::new(umfuse)) {
        eprintln!("hello_fs: cannot load umfuse: {e}");
        return 125;
    }
    let program = Program {
        argv,
        role: Role::Main,
    };
    match Host::new(view, HostConfig::default()).run(&[program]) {
        Ok(exit) => exit.shell_status(),
        Err(e) => {
            eprintln!("hello_fs: {e}");
            125
        }
    }
}

fn main() {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let first = args.first().map(|a| a.to_string_lossy().into_owned());
    let code = match first.as_deref() {
        None | Some("-h" | "--help") => usage(),
        Some("--kernel") => match &args[1..] {
            [mountpoint] => serve_kernel(mountpoint),
            _ => usage(),
        },
        Some("--") if args.len() > 1 => run_in_view(args[1..].to_vec()),
        Some(a) if a.starts_with('-') => usage(),
        Some(_) => run_in_view(args),
    };
    std::process::exit(code);
}
