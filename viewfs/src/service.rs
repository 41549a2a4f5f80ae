//! The `viewfs` service: mount requests checked and turned into the file
//! system of their mode, with permissions, exceptions and `O_PATH` fds
//! ([`crate::path_fds`]) layered on top.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use viewos_core::{Errno, FileSystem, MountRequest, Service};

use crate::access::Creds;
use crate::cow::CowFs;
use crate::except::ExceptFs;
use crate::hide::HideFs;
use crate::layer::Layer;
use crate::merge::MergeFs;
use crate::move_fs::move_fs;
use crate::options::{self, Mode, MountOptions};
use crate::path_fds::PathFds;
use crate::perm::PermFs;
use crate::rules::Rules;
use crate::source::{canonical, is_within};

/// The viewfs module (`umview -p viewfs[,SPEC]`, `um_add_service viewfs`).
pub struct ViewFs {
    /// The mounts given with `-p`, made when the module is loaded.
    initial: Vec<MountRequest>,
}

impl ViewFs {
    /// The factory for a module registry: `options` are the `-p` specs
    /// (see [`crate::options`]); bad ones are `EINVAL`.
    pub fn create(options: &str) -> Result<Box<dyn Service>, Errno> {
        Ok(Box::new(ViewFs {
            initial: options::parse_preload(options)?,
        }))
    }
}

impl Service for ViewFs {
    fn name(&self) -> &str {
        "viewfs"
    }

    fn description(&self) -> &str {
        "file tree reshaping: move, hide, merge, copy-on-write, permissions"
    }

    fn mounts_file_systems(&self) -> bool {
        true
    }

    fn handles_fstype(&self, fstype: &str) -> bool {
        fstype == "viewfs"
    }

    fn mount(
        &self,
        request: &MountRequest,
        io: Arc<dyn FileSystem>,
    ) -> Result<Arc<dyn FileSystem>, Errno> {
        build(request, io)
    }

    fn initial_mounts(&self) -> Vec<MountRequest> {
        self.initial.clone()
    }
}

/// The file system for `request`, doing its I/O through `io`.
pub fn build(
    request: &MountRequest,
    io: Arc<dyn FileSystem>,
) -> Result<Arc<dyn FileSystem>, Errno> {
    let opts = options::parse(&request.options)?;
    let target = request.target.clone();
    // Checks are for the program making each call.
    let creds: Option<Creds> = None;
    let fs: Arc<dyn FileSystem> = match opts.mode {
        Mode::Hide => Arc::new(HideFs),
        mode => {
            let source = checked_source(request, &opts, &*io)?;
            let upper = Layer::new(io.clone(), source.clone());
            let lower = Layer::new(io.clone(), target.clone());
            match mode {
                Mode::Merge => Arc::new(MergeFs::new(upper, lower)),
                Mode::Cow => Arc::new(
                    CowFs::new(upper, lower, false, creds.clone()).serving_reads(opts.served),
                ),
                Mode::MinCow => Arc::new(CowFs::new(upper, lower, true, creds.clone())),
                _ => move_fs(source, io.clone()),
            }
        }
    };
    let rules = match &opts.rules {
        Some(file) => Rules::read(opts.perm, &*io, &canonical(&*io, file)?)?,
        None => Rules::parse(opts.perm, "")?,
    };
    let fs: Arc<dyn FileSystem> = if rules.is_empty() {
        fs
    } else {
        Arc::new(PermFs::new(fs, rules, creds))
    };
    let fs: Arc<dyn FileSystem> = if opts.except.is_empty() {
        fs
    } else {
        Arc::new(ExceptFs::new(fs, Layer::new(io, target), opts.except))
    };
    Ok(Arc::new(PathFds::new(fs)))
}

/// SOURCE resolved in the view below the mount and checked as mount(2)
/// would: it must exist (`ENOENT`), be a directory when TARGET is one or
/// the mode layers trees (`ENOTDIR`), and not hold TARGET (`ELOOP`; for
/// the layered modes neither may hold the other, unless an `except` path
/// leaves SOURCE out).
fn checked_source(
    request: &MountRequest,
    opts: &MountOptions,
    io: &dyn FileSystem,
) -> Result<PathBuf, Errno> {
    let raw = request.source.as_str();
    if raw.is_empty() || raw == "none" {
        return Err(Errno::ENOENT);
    }
    let source = canonical(io, Path::new(raw))?;
    let st = io.lstat(&source)?;
    let target = &request.target;
    let target_is_dir = match io.lstat(target) {
        Ok(t) => t.is_dir(),
        Err(_) => true,
    };
    let layered = opts.mode != Mode::Move;
    if (layered || target_is_dir) && !st.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    let holds_target = is_within(target, &source) && *target != source;
    let in_target = is_within(&source, target)
        && !opts
            .except
            .iter()
            .any(|e| is_within(&source, &viewos_core::path::join_under(target, e)));
    if holds_target || (layered && in_target) {
        return Err(Errno::ELOOP);
    }
    Ok(source)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdir::TestDir;
    use viewos_core::real::RealFs;
    use viewos_core::{View, ViewConfig};

    fn request(options: &str, source: &Path, target: &Path) -> MountRequest {
        MountRequest {
            source: source.to_string_lossy().into_owned(),
            target: target.to_path_buf(),
            fstype: "viewfs".into(),
            flags: 0,
            options: options.into(),
            fd: None,
            launcher: None,
        }
    }

    fn err(r: Result<Arc<dyn FileSystem>, Errno>) -> Errno {
        match r {
            Ok(_) => panic!("mounted"),
            Err(e) => e,
        }
    }

    #[test]
    fn bad_requests_get_the_errnos_of_mount() {
        let t = TestDir::new("service-bad");
        t.mkdir("src/in");
        t.mkdir("tgt");
        t.write("file", "x");
        let io: Arc<dyn FileSystem> = Arc::new(RealFs);
        let (src, tgt) = (t.join("src"), t.join("tgt"));
        let bad = |opts: &str, s: &Path, d: &Path| err(build(&request(opts, s, d), io.clone()));
        assert_eq!(bad("bogus", &src, &tgt), Errno::EINVAL);
        assert_eq!(bad("cow,uid=x", &src, &tgt), Errno::EINVAL);
        assert_eq!(bad("cow", &t.join("none"), &tgt), Errno::ENOENT);
        assert_eq!(bad("move", Path::new("none"), &tgt), Errno::ENOENT);
        assert_eq!(bad("merge", Path::new("rel/dir"), &tgt), Errno::EINVAL);
        assert_eq!(bad("cow", &t.join("file"), &tgt), Errno::ENOTDIR);
        assert_eq!(bad("move", &t.join("file"), &tgt), Errno::ENOTDIR);
        assert_eq!(bad("move", &src, &t.join("src/in")), Errno::ELOOP);
        assert_eq!(bad("cow", &t.join("src/in"), &src), Errno::ELOOP);
        assert_eq!(bad("merge", &src, &src), Errno::ELOOP);
        // A layer inside TARGET is fine when an exception leaves it out.
        assert!(build(
            &request("cow,except=in", &t.join("src/in"), &src),
            io.clone()
        )
        .is_ok());
        assert!(build(&request("hide", Path::new("none"), &tgt), io.clone()).is_ok());
        assert!(build(&request("move", &src, &src), io).is_ok());
    }

    #[test]
    fn preloaded_mounts_and_nesting_through_the_view() {
        let t = TestDir::new("service-nest");
        t.write("data/f", "through the first mount");
        t.mkdir("layer");
        let mut v = View::new(ViewConfig::default());
        assert!(ViewFs::create("cow").is_err());
        let first = t.join("first");
        let spec = format!(
            "move,source={};hide,target={}",
            t.join("data").display(),
            t.join("hidden").display()
        );
        // The first spec has no target.
        assert!(ViewFs::create(&spec).is_err());
        let spec = format!(
            "move,source={},target={};hide,target={}",
            t.join("data").display(),
            first.display(),
            t.join("hidden").display()
        );
        v.add_service(ViewFs::create(&spec).unwrap()).unwrap();
        // A cow mount whose TARGET exists only in the view (the first mount).
        let cow_target = first.clone();
        v.mount(request("cow", &t.join("layer"), &cow_target))
            .unwrap();
        let (m, rel) = v.mounts().lookup(&first.join("f")).unwrap();
        assert_eq!(m.fs.lstat(&rel).unwrap().size, 23);
        let o = m.fs.open(&rel, libc::O_WRONLY | libc::O_APPEND, 0).unwrap();
        let h = crate::layer::into_handle(o).unwrap();
        h.write(23, b"!").unwrap();
        assert_eq!(
            t.read("layer/f").as_deref(),
            Some("through the first mount!")
        );
        assert_eq!(t.read("data/f").as_deref(), Some("through the first mount"));
        let (m, rel) = v.mounts().lookup(&t.join("hidden/x")).unwrap();
        assert_eq!(m.fs.lstat(&rel), Err(Errno::ENOENT));
        assert_eq!(v.services().next().map(|s| s.name()), Some("viewfs"));
    }
}
