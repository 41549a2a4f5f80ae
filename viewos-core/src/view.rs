//! One view: its name, its options, its services and its mounts.

use std::sync::Arc;

use crate::fs::{FileSystem, MountRequest};
use crate::launch::Launcher;
use crate::mounts::{Mount, MountTable};
use crate::nesting::ViewIo;
use crate::real::RealFs;
use crate::{Errno, Interest, Service};
use std::fmt;

/// Options of a view fixed at start (`umview -V NAME -x`).
#[derive(Clone, Debug, Default)]
pub struct ViewConfig {
    /// The view's name (`-V`), read and changed by `viewname`.
    pub name: String,
    /// Module nesting is disabled (`-x`): a service's own I/O does not go
    /// through the view.
    pub no_nesting: bool,
}

/// A view: its configuration, its ordered services and its mount table.
pub struct View {
    config: ViewConfig,
    services: Vec<Arc<dyn Service>>,
    mounts: MountTable,
    launcher: Option<Launcher>,
}

impl View {
    /// A view with no services: transparent.
    pub fn new(config: ViewConfig) -> View {
        View {
            config,
            services: Vec::new(),
            mounts: MountTable::new(),
            launcher: None,
        }
    }

    /// The view's configuration.
    pub fn config(&self) -> &ViewConfig {
        &self.config
    }

    /// Adds a service at the end of the search order and makes the mounts it
    /// asks for at load.
    pub fn add_service(&mut self, service: Box<dyn Service>) -> Result<(), Errno> {
        let initial = service.initial_mounts();
        self.services.push(Arc::from(service));
        for request in initial {
            self.mount(request)?;
        }
        Ok(())
    }

    /// Sets how services start programs in this view (the host's
    /// [`Launcher`]); mount requests carry it from then on.
    pub fn set_launcher(&mut self, launcher: Launcher) {
        self.launcher = Some(launcher);
    }

    /// Renames the view (`viewname NAME`).
    pub fn set_name(&mut self, name: &str) {
        self.config.name = name.to_string();
    }

    /// Unloads the service `name`: `ENOENT` if none is loaded by that
    /// name, `EBUSY` while one of its mounts is in the table.
    pub fn remove_service(&mut self, name: &str) -> Result<Arc<dyn Service>, Errno> {
        let i = self
            .services
            .iter()
            .position(|s| s.name() == name)
            .ok_or(Errno::ENOENT)?;
        if self.mounts.iter().any(|m| m.service == name) {
            return Err(Errno::EBUSY);
        }
        Ok(self.services.remove(i))
    }

    /// Moves the service `name` to `position` in the search order (0 is
    /// first; past the end means last). `ENOENT` if it is not loaded.
    pub fn move_service(&mut self, name: &str, position: usize) -> Result<(), Errno> {
        let i = self
            .services
            .iter()
            .position(|s| s.name() == name)
            .ok_or(Errno::ENOENT)?;
        let s = self.services.remove(i);
        let at = position.min(self.services.len());
        self.services.insert(at, s);
        Ok(())
    }

    /// The service that makes sockets of family `domain`: the first in
    /// search order that claims it ([`Service::handles_socket`]).
    pub fn socket_service(&self, domain: i32) -> Option<&dyn Service> {
        self.services().find(|s| s.handles_socket(domain))
    }

    /// The service that answers for device `rdev` of `kind`: the first in
    /// search order that claims it ([`Service::handles_device`]).
    pub fn device_service(
        &self,
        kind: crate::device::DeviceKind,
        rdev: u64,
    ) -> Option<&dyn Service> {
        self.services().find(|s| s.handles_device(kind, rdev))
    }

    /// The system call numbers the loaded services hook, sorted.
    pub fn hooked_syscalls(&self) -> Vec<i64> {
        let mut all: Vec<i64> = self.services().flat_map(|s| s.hooked_syscalls()).collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// The loaded services, in search order.
    pub fn services(&self) -> impl Iterator<Item = &dyn Service> {
        self.services.iter().map(|s| s.as_ref())
    }

    /// The mount table.
    pub fn mounts(&self) -> &MountTable {
        &self.mounts
    }

    /// Mounts `request` with the first service (in search order) that
    /// handles its type. `ENODEV` if none does.
    ///
    /// The view stays borrowed while the service mounts. A host whose
    /// other threads use the view meanwhile (a service may wait on a
    /// program of the view: a FUSE server it started) mounts in three
    /// steps instead: [`View::prepare_mount`] with the view locked for
    /// reading, [`PreparedMount::mount`] unlocked, [`View::push_mount`]
    /// locked for writing.
    pub fn mount(&mut self, request: MountRequest) -> Result<(), Errno> {
        let mount = self.prepare_mount(&request)?.mount(request)?;
        self.push_mount(mount);
        Ok(())
    }

    /// The service that will mount `request` (the first in search order
    /// that handles its type) and the view it does its own I/O through
    /// (the mounts made so far; see [`crate::nesting`]). `ENODEV` if no
    /// service handles the type.
    pub fn prepare_mount(&self, request: &MountRequest) -> Result<PreparedMount, Errno> {
        let service = self
            .services
            .iter()
            .find(|s| s.handles_fstype(&request.fstype))
            .ok_or(Errno::ENODEV)?
            .clone();
        let io: Arc<dyn FileSystem> = if self.config.no_nesting {
            Arc::new(RealFs)
        } else {
            Arc::new(ViewIo::new(self.mounts.clone()))
        };
        Ok(PreparedMount {
            service,
            io,
            launcher: self.launcher.clone(),
        })
    }

    /// Offers `request` to the services as part of a mount one of them is
    /// making ([`Service::join_mount`]): `Some` with the answer for the
    /// caller if one took it (nothing is added to the table), `None` if it
    /// is a new mount.
    pub fn join_mount(&self, request: &MountRequest) -> Option<Result<(), Errno>> {
        self.services.iter().find_map(|s| s.join_mount(request))
    }

    /// Adds a mount on top of the table.
    pub fn push_mount(&mut self, mount: Mount) {
        self.mounts.push(mount);
    }

    /// Removes the latest mount at exactly `target` (canonical), as
    /// umount(2) does; `EINVAL` if nothing is mounted there. The file
    /// system closes when the returned mount is dropped (a host drops it
    /// after unlocking the view).
    /// A file system may refuse ([`FileSystem::may_unmount`]).
    pub fn umount(&mut self, target: &std::path::Path) -> Result<Mount, Errno> {
        let latest = self
            .mounts
            .iter()
            .filter(|m| m.request.target == target)
            .last()
            .ok_or(Errno::EINVAL)?;
        latest.fs.may_unmount()?;
        self.mounts.remove(target).ok_or(Errno::EINVAL)
    }

    /// The network stack mounted on exactly `target` (canonical): the
    /// latest mount there, if it is a stack ([`crate::stack`]).
    pub fn net_stack_at(&self, target: &std::path::Path) -> Option<&Mount> {
        self.mounts
            .iter()
            .filter(|m| m.request.target == target)
            .last()
            .filter(|m| m.fs.net_stack().is_some())
    }

    /// Removes the latest mount, if any (the view is ending: mounts go
    /// latest first, each file system before the ones below it).
    pub fn pop_mount(&mut self) -> Option<Mount> {
        self.mounts.pop()
    }

    /// Removes every mount, latest first, dropping each file system before
    /// the ones below it (the view is ending).
    pub fn umount_all(&mut self) {
        while let Some(mount) = self.mounts.pop() {
            drop(mount);
        }
    }

    /// The interpreter that runs an exec of `request`'s file: the answer of
    /// the first service in search order that claims it
    /// ([`Service::exec_interpreter`]; only services interested in
    /// [`Interest::EXEC`] are asked), `None` when none does.
    pub fn exec_interpreter(
        &self,
        request: &crate::binfmt::ExecRequest<'_>,
    ) -> Option<Result<crate::binfmt::Interpreter, Errno>> {
        self.services
            .iter()
            .filter(|s| s.interest().contains(Interest::EXEC))
            .find_map(|s| s.exec_interpreter(request))
    }

    /// True if some loaded service claims execs ([`Interest::EXEC`]).
    pub fn claims_execs(&self) -> bool {
        self.services
            .iter()
            .any(|s| s.interest().contains(Interest::EXEC))
    }

    /// The system call families the host must trap for this view: the
    /// host's own minimum plus every service's interest.
    pub fn interest(&self) -> Interest {
        self.services
            .iter()
            .fold(Interest::HOST_MINIMUM, |acc, s| acc | s.interest())
    }
}

/// A mount request with the service that will answer it
/// ([`View::prepare_mount`]).
pub struct PreparedMount {
    service: Arc<dyn Service>,
    io: Arc<dyn FileSystem>,
    launcher: Option<Launcher>,
}

impl PreparedMount {
    /// The name of the service that will mount.
    pub fn service_name(&self) -> &str {
        self.service.name()
    }

    /// Has the service mount `request` ([`Service::mount`]); the result
    /// goes to [`View::push_mount`].
    pub fn mount(self, mut request: MountRequest) -> Result<Mount, Errno> {
        request.launcher = self.launcher;
        let fs = self.service.mount(&request, self.io)?;
        // The table keeps no copy of the caller's fd: a FUSE server's
        // session must end when the server closes its end.
        request.fd = None;
        Ok(Mount {
            request,
            service: self.service.name().to_string(),
            fs,
        })
    }
}

impl fmt::Debug for PreparedMount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedMount")
            .field("service", &self.service.name())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    struct Tmpfs;
    impl FileSystem for Tmpfs {}

    struct Mounter;
    impl Service for Mounter {
        fn name(&self) -> &str {
            "mounter"
        }
        fn description(&self) -> &str {
            "test file systems"
        }
        fn mounts_file_systems(&self) -> bool {
            true
        }
        fn mount(
            &self,
            _r: &MountRequest,
            _io: Arc<dyn FileSystem>,
        ) -> Result<Arc<dyn FileSystem>, Errno> {
            Ok(Arc::new(Tmpfs))
        }
        fn initial_mounts(&self) -> Vec<MountRequest> {
            vec![MountRequest {
                target: PathBuf::from("/m"),
                fstype: "mounter".into(),
                ..MountRequest::default()
            }]
        }
    }

    #[test]
    fn services_move_and_leave_only_without_mounts() {
        let mut v = View::new(ViewConfig::default());
        v.add_service(Box::new(Mounter)).unwrap();
        v.add_service(Box::new(Plain)).unwrap();
        v.move_service("plain", 0).unwrap();
        let names: Vec<&str> = v.services().map(|s| s.name()).collect();
        assert_eq!(names, ["plain", "mounter"]);
        assert_eq!(v.move_service("nobody", 0), Err(Errno::ENOENT));
        v.mount(MountRequest {
            source: "none".into(),
            target: PathBuf::from("/m"),
            fstype: "mounter".into(),
            ..MountRequest::default()
        })
        .unwrap();
        assert_eq!(v.remove_service("mounter").err(), Some(Errno::EBUSY));
        // Its initial mount and the one above are both on /m.
        v.umount(Path::new("/m")).unwrap();
        assert_eq!(v.remove_service("mounter").err(), Some(Errno::EBUSY));
        v.umount(Path::new("/m")).unwrap();
        assert_eq!(v.umount(Path::new("/m")).err(), Some(Errno::EINVAL));
        assert!(v.remove_service("mounter").is_ok());
        assert!(v.remove_service("plain").is_ok());
        assert_eq!(v.remove_service("plain").err(), Some(Errno::ENOENT));
        v.set_name("renamed");
        assert_eq!(v.config().name, "renamed");
    }

    struct Plain;
    impl Service for Plain {
        fn name(&self) -> &str {
            "plain"
        }
        fn description(&self) -> &str {
            "no file systems"
        }
    }

    #[test]
    fn interest_and_initial_mounts() {
        let mut v = View::new(ViewConfig::default());
        assert_eq!(v.interest(), Interest::HOST_MINIMUM);
        v.add_service(Box::new(Mounter)).unwrap();
        assert_eq!(v.interest(), Interest::HOST_MINIMUM | Interest::PATH);
        assert!(v.mounts().lookup(Path::new("/m/x")).is_some());
        let bad = MountRequest {
            fstype: "nope".into(),
            ..MountRequest::default()
        };
        assert_eq!(v.mount(bad), Err(Errno::ENODEV));
    }

    struct Claims(&'static str, bool);
    impl Service for Claims {
        fn name(&self) -> &str {
            self.0
        }
        fn description(&self) -> &str {
            "claims .x files"
        }
        fn interest(&self) -> Interest {
            if self.1 {
                Interest::EXEC
            } else {
                Interest::empty()
            }
        }
        fn exec_interpreter(
            &self,
            r: &crate::binfmt::ExecRequest<'_>,
        ) -> Option<Result<crate::binfmt::Interpreter, Errno>> {
            r.filename
                .ends_with(b".x")
                .then(|| Ok(crate::binfmt::Interpreter::new(self.0)))
        }
    }

    #[test]
    fn execs_go_to_the_first_interested_service() {
        let mut view = View::new(ViewConfig::default());
        view.add_service(Box::new(Claims("/quiet", false))).unwrap();
        assert!(!view.claims_execs());
        view.add_service(Box::new(Claims("/first", true))).unwrap();
        view.add_service(Box::new(Claims("/second", true))).unwrap();
        assert!(view.claims_execs());
        let req = |f: &'static [u8]| crate::binfmt::ExecRequest {
            filename: f,
            head: b"",
        };
        let got = view.exec_interpreter(&req(b"a.x")).unwrap().unwrap();
        assert_eq!(got.path, PathBuf::from("/first"));
        assert!(view.exec_interpreter(&req(b"a.y")).is_none());
    }
}
