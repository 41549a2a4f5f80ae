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

    /// The stack of mount type `kind` (after `umnet`), with the links of
    /// its options.
    fn stack(kind: &str, options: &Options) -> Result<Arc<dyn NetStack>, Errno> {
        let smol = matches!(kind, "smoltcp" | "lwip");
        if !options.links.is_empty() && !smol {
            eprintln!("umnet: only a smoltcp stack has vdN= links");
            return Err(Errno::EINVAL);
        }
        Ok(match kind {
            "null" => Arc::new(Null),
            "native" | "current" => Arc::new(Kernel),
            _ if smol => match options.links.as_slice() {
                [] => Arc::new(SmolStack::new()?),
                [(name, url)] => Arc::new(SmolStack::with_vde(name, url)?),
                _ => {
                    eprintln!("umnet: one vdN= link per stack for now");
                    return Err(Errno::EINVAL);
                }
            },
            _ => return Err(Errno::ENODEV),
        })
    }
}

/// The `-o` options of a stack mount.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Options {
    /// `perm`: the mount cannot be undone.
    perm: bool,
    /// `vdN=URL`: an Ethernet link `vdN` plugged into a VDE switch.
    links: Vec<(String, String)>,
}

/// True for a link name `vd0`, `vd1`, ...
fn is_vd(name: &str) -> bool {
    name.strip_prefix("vd")
        .is_some_and(|n| !n.is_empty() && n.len() <= 3 && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Parses a stack mount's `-o`: `EINVAL` for an option it does not know.
pub(crate) fn parse_options(options: &str) -> Result<Options, Errno> {
    let mut out = Options::default();
    for o in options.split(',').filter(|o| !o.is_empty()) {
        if let Some((key, url)) = o.split_once('=') {
            if is_vd(key) && !url.is_empty() {
                out.links.push((key.to_string(), url.to_string()));
                continue;
            }
        }
        match o {
            "perm" => out.perm = true,
            "rw" | "ro" => {}
            o if GENERIC_MOUNT_OPTIONS.contains(&o) => {}
            o => {
                eprintln!("umnet: unknown option {o}");
                return Err(Errno::EINVAL);
            }
        }
    }
    Ok(out)
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
        let options = parse_options(&request.options)?;
        let stack = UmNet::stack(kind, &options)?;
        let perm = options.perm;
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
    fn vde_links_are_options_of_smoltcp_stacks() {
        let o = parse_options("perm,vd0=vde:///tmp/sw,vd12=/x").unwrap();
        assert!(o.perm);
        assert_eq!(o.links.len(), 2);
        assert_eq!(o.links[0], ("vd0".into(), "vde:///tmp/sw".into()));
        assert_eq!(parse_options("vdx=/tmp").err(), Some(Errno::EINVAL));
        assert_eq!(parse_options("vd0=").err(), Some(Errno::EINVAL));
        assert_eq!(
            mount("umnetnull", "vd0=/tmp/none").err(),
            Some(Errno::EINVAL)
        );
        assert_eq!(
            mount("umnetsmoltcp", "vd0=/nonexistent/switch").err(),
            Some(Errno::ENOENT)
        );
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
