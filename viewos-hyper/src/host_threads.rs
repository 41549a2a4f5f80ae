//! Which process and thread ids are the host's own.
//!
//! A program in a view must not reach the host that keeps the view: its
//! memory (`/proc/HOST/mem`, `process_vm_writev`), its threads (ptrace,
//! signals) or its `/proc` entries. The guards (`syscalls::sys_guard`,
//! [`crate::resolve::guard_proc`]) ask here.

/// True if `id` (a pid or tid as a program passes it) is the host process
/// or one of its threads, or the host's fd holder ([`crate::fd_holder`]).
pub fn is_host_thread(id: i64) -> bool {
    if id <= 0 || id > i64::from(i32::MAX) {
        return false;
    }
    let host = i64::from(std::process::id());
    id == host
        || crate::fd_holder::pid().is_some_and(|h| i64::from(h) == id)
        || std::path::Path::new(&format!("/proc/{host}/task/{id}")).exists()
}

/// The name a traced program opens one of the host's fds by (rewritten
/// opens and execs, see `syscalls`): `/proc/HOLDER/fd/M`, the file kept
/// by the fd holder, or `/proc/HOST/fd/N` without one.
pub fn host_fd_path(fd: &(impl std::os::fd::AsRawFd + ?Sized)) -> String {
    crate::fd_holder::path_of(fd)
}

/// True if `path` is a name [`host_fd_path`] gives.
pub fn is_host_fd_path(path: &[u8]) -> bool {
    let of = |pid: i32| format!("/proc/{pid}/fd/");
    let starts = |prefix: String| {
        path.strip_prefix(prefix.as_bytes())
            .is_some_and(|n| !n.is_empty() && n.iter().all(u8::is_ascii_digit))
    };
    starts(of(std::process::id() as i32)) || crate::fd_holder::pid().is_some_and(|h| starts(of(h)))
}

/// [`is_host_thread`] for a decimal name (a `/proc` component).
pub fn names_host_thread(name: &[u8]) -> bool {
    if name.is_empty() || name.len() > 10 || !name.iter().all(u8::is_ascii_digit) {
        return false;
    }
    std::str::from_utf8(name)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .is_some_and(is_host_thread)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_and_its_threads_are_recognised() {
        assert!(is_host_thread(i64::from(std::process::id())));
        let (tx, rx) = std::sync::mpsc::channel();
        let t = std::thread::spawn(move || {
            // SAFETY: gettid has no preconditions.
            tx.send(unsafe { libc::gettid() }).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(200));
        });
        let tid = rx.recv().unwrap();
        assert!(is_host_thread(i64::from(tid)));
        assert!(names_host_thread(tid.to_string().as_bytes()));
        t.join().unwrap();
        assert!(!is_host_thread(1));
        assert!(!is_host_thread(0));
        assert!(!is_host_thread(-1));
        assert!(!names_host_thread(b"self"));
        assert!(!names_host_thread(b"99999999999999"));
    }
}
