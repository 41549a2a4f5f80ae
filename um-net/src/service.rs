//! The `umnet` service: `mount -t umnetTYPE` makes the stack TYPE and
//! mounts it as a node ([`StackNode`]).

use std::sync::Arc;

use viewos_core::creds::Creds;
use viewos_core::fs::{parse_preload_specs, GENERIC_MOUNT_OPTIONS};
use viewos_core::stack::NetStack;
use viewos_core::{Errno, FileSystem, Interest, MountRequest, Service};

use crate::node::StackNode;
use crate::smol::SmolStack;
use crate::stacks::{Kernel, Null};

/// The prefix of every umnet mount type.
pub const PREFIX: &str = "umnet";

/// The umnet service.
pub struct UmNet {
    initial: Vec<MountRequest>,
}

impl UmNet {
    /// The service with the mounts of
    /// `-p umnet,type=umnetTYPE,source=none,target=/dev/net/NAME[,perm];...`,
    /// as a module factory.
    pub fn create(options: &str) -> Result<Box<dyn Service>, Errno> {
        let initial = parse_preload_specs(options, PREFIX).map_err(|spec| {
            eprintln!(
                "umnet: bad mount spec {spec:?} (want type=umnetTYPE,source=none,target=/dev/net/NAME)"
            );
            Errno::EINVAL
        })?;
        Ok(Box::new(UmNet { initial }))
    }

    /// The stack of mount type `kind` (after `umnet`).
    fn stack(kind: &str) -> Result<Arc<dyn NetStack>, Errno> {
        Ok(match kind {
            "null" => Arc::new(Null),
            "native" | "current" => Arc::new(Kernel),
            "smoltcp" | "lwip" => Arc::new(SmolStack::new()?),
            _ => return Err(Errno::ENODEV),
        })
    }
}

/// The `-o` options of a stack mount: whether it is `perm`. `EINVAL` for
/// an option it does not know.
fn permanent(options: &str) -> Result<bool, Errno> {
    let mut perm = false;
    for o in options.split(',').filter(|o| !o.is_empty()) {
        match o {
            "perm" => perm = true,
            "rw" | "ro" => {}
            o if GENERIC_MOUNT_OPTIONS.contains(&o) => {}
            o => {
                eprintln!("umnet: unknown option {o}");
                return Err(Errno::EINVAL);
            }
        }
    }
    Ok(perm)
}

impl Service for UmNet {
    fn name(&self) -> &str {
        PREFIX
    }

    fn description(&self) -> &str {
        "virtual (multi-stack) networking"
    }

    fn interest(&self) -> Interest {
        Interest::PATH | Interest::SOCKET
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
        _io: Arc<dyn FileSystem>,
    ) -> Result<Arc<dyn FileSystem>, Errno> {
        let kind = request.fstype.strip_prefix(PREFIX).ok_or(Errno::ENODEV)?;
        let stack = UmNet::stack(kind)?;
        let perm = permanent(&request.options)?;
        let creds = Creds::of_process();
        Ok(Arc::new(StackNode::new(stack, perm, creds.uid, creds.gid)))
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
    use viewos_core::{Opened, View, ViewConfig};

    fn mount(fstype: &str, options: &str) -> Result<Arc<dyn FileSystem>, Errno> {
        UmNet::create("").unwrap().mount(
            &MountRequest {
                source: "none".into(),
                target: "/dev/net/x".into(),
                fstype: fstype.into(),
                options: options.into(),
                ..MountRequest::default()
            },
            Arc::new(RealFs),
        )
    }

    #[test]
    fn types_and_options() {
        assert_eq!(mount("umnetlwipv9", "").err(), Some(Errno::ENODEV));
        assert_eq!(mount("umnetnull", "bogus").err(), Some(Errno::EINVAL));
        let null = mount("umnetnull", "perm,noatime").unwrap();
        assert_eq!(null.may_unmount(), Err(Errno::EBUSY));
        let native = mount("umnetnative", "").unwrap();
        assert_eq!(native.may_unmount(), Ok(()));
        let made = native
            .net_stack()
            .unwrap()
            .socket(libc::AF_INET6, libc::SOCK_STREAM, 0);
        // IPv6 may be disabled on the machine; then the kernel's errno.
        match made {
            Ok(Opened::Backed(_)) => {}
            Err(e) => assert_eq!(e, Errno::new(libc::EAFNOSUPPORT)),
            Ok(_) => panic!("a kernel socket is backed"),
        }
        assert!(mount("umnetcurrent", "").is_ok());
    }

    #[test]
    fn preload_specs_mount_at_load() {
        let s = UmNet::create("type=umnetnull,source=none,target=/dev/net/default,perm").unwrap();
        let mut view = View::new(ViewConfig::default());
        view.add_service(s).unwrap();
        let at = Path::new("/dev/net/default");
        assert!(view.net_stack_at(at).is_some());
        assert_eq!(view.umount(at).err(), Some(Errno::EBUSY));
        assert!(UmNet::create("type=umdevnull,source=none,target=/x").is_err());
    }
}
