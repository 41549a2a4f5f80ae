//! `hostname`: a host name of the view's own, through syscall hooks.

use std::sync::Mutex;

use crate::hook::{Hooked, SyscallRequest};
use crate::{Errno, Service};

/// Length of each field of `struct utsname`.
const FIELD: usize = 65;

/// The `hostname` test service (`umview -p hostname,NAME`): it hooks
/// uname(2) and sethostname(2), so programs in the view see `NAME` as the
/// host name and may change it (for the view only, without privileges),
/// while the real host name stays. The reference for syscall-number hooks.
pub struct HostName {
    name: Mutex<Vec<u8>>,
}

impl HostName {
    /// The factory for a module registry: the initial name (`view` when
    /// empty); longer than 64 bytes is `EINVAL`, as for sethostname.
    pub fn create(options: &str) -> Result<Box<dyn Service>, Errno> {
        let name = if options.is_empty() { "view" } else { options };
        if name.len() >= FIELD {
            return Err(Errno::EINVAL);
        }
        Ok(Box::new(HostName {
            name: Mutex::new(name.as_bytes().to_vec()),
        }))
    }

    fn uname(&self, req: &SyscallRequest<'_>) -> Result<Hooked, Errno> {
        // SAFETY: uname fills a zeroed struct we own.
        #[allow(unsafe_code)]
        let mut u: libc::utsname = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        #[allow(unsafe_code)]
        if unsafe { libc::uname(&mut u) } != 0 {
            return Err(Errno::from(std::io::Error::last_os_error()));
        }
        let mut raw = Vec::with_capacity(6 * FIELD);
        for field in [
            &u.sysname,
            &u.nodename,
            &u.release,
            &u.version,
            &u.machine,
            &u.domainname,
        ] {
            raw.extend(field.iter().map(|&c| c as u8));
        }
        let name = self.name.lock().map_err(|_| Errno::EIO)?;
        let node = &mut raw[FIELD..2 * FIELD];
        node.fill(0);
        node[..name.len()].copy_from_slice(&name);
        req.memory.write(req.args[0], &raw)?;
        Ok(Hooked::Return(0))
    }

    fn sethostname(&self, req: &SyscallRequest<'_>) -> Result<Hooked, Errno> {
        let len = req.args[1] as usize;
        if len >= FIELD {
            return Err(Errno::EINVAL);
        }
        let mut name = vec![0u8; len];
        req.memory.read(req.args[0], &mut name)?;
        *self.name.lock().map_err(|_| Errno::EIO)? = name;
        Ok(Hooked::Return(0))
    }
}

impl Service for HostName {
    fn name(&self) -> &str {
        "hostname"
    }

    fn description(&self) -> &str {
        "a host name of the view's own (test service of syscall hooks)"
    }

    fn hooked_syscalls(&self) -> Vec<i64> {
        vec![libc::SYS_uname, libc::SYS_sethostname]
    }

    fn syscall(&self, req: &SyscallRequest<'_>) -> Result<Hooked, Errno> {
        match req.nr {
            libc::SYS_uname => self.uname(req),
            libc::SYS_sethostname => self.sethostname(req),
            _ => Ok(Hooked::Native),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// A caller's memory: one buffer at address 0x1000.
    struct Buffer(RefCell<Vec<u8>>);
    impl crate::hook::CallerMemory for Buffer {
        fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
            let m = self.0.borrow();
            let at = addr.checked_sub(0x1000).ok_or(Errno::EFAULT)? as usize;
            let src = m.get(at..at + buf.len()).ok_or(Errno::EFAULT)?;
            buf.copy_from_slice(src);
            Ok(())
        }
        fn write(&self, addr: u64, data: &[u8]) -> Result<(), Errno> {
            let mut m = self.0.borrow_mut();
            let at = addr.checked_sub(0x1000).ok_or(Errno::EFAULT)? as usize;
            m.get_mut(at..at + data.len())
                .ok_or(Errno::EFAULT)?
                .copy_from_slice(data);
            Ok(())
        }
    }

    fn call(s: &dyn Service, mem: &Buffer, nr: i64, a0: u64, a1: u64) -> Result<Hooked, Errno> {
        s.syscall(&SyscallRequest {
            nr,
            args: [a0, a1, 0, 0, 0, 0],
            tid: 1,
            memory: mem,
        })
    }

    #[test]
    fn names_the_node_and_takes_new_names() {
        let s = HostName::create("inner").unwrap();
        let mem = Buffer(RefCell::new(vec![0u8; 6 * FIELD]));
        assert_eq!(
            call(s.as_ref(), &mem, libc::SYS_uname, 0x1000, 0),
            Ok(Hooked::Return(0))
        );
        assert_eq!(&mem.0.borrow()[FIELD..FIELD + 6], b"inner\0");
        assert_eq!(&mem.0.borrow()[..5], b"Linux");
        mem.0.borrow_mut()[..3].copy_from_slice(b"new");
        assert_eq!(
            call(s.as_ref(), &mem, libc::SYS_sethostname, 0x1000, 3),
            Ok(Hooked::Return(0))
        );
        assert_eq!(
            call(s.as_ref(), &mem, libc::SYS_uname, 0x1000, 0),
            Ok(Hooked::Return(0))
        );
        assert_eq!(&mem.0.borrow()[FIELD..FIELD + 4], b"new\0");
        assert_eq!(
            call(s.as_ref(), &mem, libc::SYS_uname, 8, 0),
            Err(Errno::EFAULT)
        );
        assert_eq!(
            call(s.as_ref(), &mem, libc::SYS_sethostname, 0x1000, 65),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            call(s.as_ref(), &mem, libc::SYS_getpid, 0, 0),
            Ok(Hooked::Native)
        );
        assert!(HostName::create(&"x".repeat(65)).is_err());
    }
}
