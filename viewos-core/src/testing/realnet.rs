//! `realnet`: the host's kernel network stack, served to the view socket by
//! socket through the Service API.

use std::sync::{Arc, OnceLock};

use crate::real_socket::{RealSocket, SocketWatcher};
use crate::{Errno, Interest, Opened, Service};

/// The `realnet` test service (`umview -p realnet`): it claims `AF_INET`
/// and `AF_INET6` and makes every such socket of the view a
/// [`RealSocket`] of the host's, served to the program. Programs see the
/// network they would see outside the view, through every socket call of
/// the API, which is what tests of hosts need; `-p realnet,inet` claims
/// only `AF_INET`.
pub struct RealNet {
    families: Vec<i32>,
    watcher: OnceLock<Arc<SocketWatcher>>,
}

impl RealNet {
    /// The factory for a module registry: no options (IPv4 and IPv6), or
    /// `inet` or `inet6` for one family.
    pub fn create(options: &str) -> Result<Box<dyn Service>, Errno> {
        let families = match options {
            "" => vec![libc::AF_INET, libc::AF_INET6],
            "inet" => vec![libc::AF_INET],
            "inet6" => vec![libc::AF_INET6],
            _ => return Err(Errno::EINVAL),
        };
        Ok(Box::new(RealNet {
            families,
            watcher: OnceLock::new(),
        }))
    }

    fn watcher(&self) -> Result<Arc<SocketWatcher>, Errno> {
        if let Some(w) = self.watcher.get() {
            return Ok(w.clone());
        }
        let w = SocketWatcher::start()?;
        Ok(self.watcher.get_or_init(|| w).clone())
    }
}

impl Service for RealNet {
    fn name(&self) -> &str {
        "realnet"
    }

    fn description(&self) -> &str {
        "the host's network, socket by socket through the view (test service)"
    }

    fn interest(&self) -> Interest {
        Interest::SOCKET
    }

    fn handles_socket(&self, domain: i32) -> bool {
        self.families.contains(&domain)
    }

    fn socket(&self, domain: i32, kind: i32, protocol: i32) -> Result<Opened, Errno> {
        Ok(Opened::Served(Box::new(RealSocket::new(
            domain,
            kind,
            protocol,
            self.watcher()?,
        )?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_its_families() {
        let s = RealNet::create("").unwrap();
        assert!(s.handles_socket(libc::AF_INET) && s.handles_socket(libc::AF_INET6));
        assert!(!s.handles_socket(libc::AF_UNIX));
        let s = RealNet::create("inet").unwrap();
        assert!(!s.handles_socket(libc::AF_INET6));
        assert!(RealNet::create("bogus").is_err());
        assert_eq!(
            RealNet::create("")
                .unwrap()
                .socket(libc::AF_INET, 9999, 0)
                .err(),
            Some(Errno::EINVAL)
        );
    }
}
