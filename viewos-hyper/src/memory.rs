//! Reading and writing a traced program's memory.
//!
//! Everything goes through `process_vm_readv`/`process_vm_writev`: one
//! system call per transfer, never word-by-word `PTRACE_PEEKDATA`. Addresses
//! come from the traced program and may be anything; a bad one gives
//! `EFAULT`, exactly what the kernel would answer the program.

use viewos_core::hook::CallerMemory;
use viewos_core::Errno;

/// The memory of a traced thread, for services that follow pointers
/// themselves (hooked calls, ioctl arguments that point further).
pub struct Tracee(pub i32);

impl CallerMemory for Tracee {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        read_exact(self.0, addr, buf)
    }

    fn write(&self, addr: u64, data: &[u8]) -> Result<(), Errno> {
        write_all(self.0, addr, data)
    }
}

/// Largest path the kernel accepts, including the terminating NUL.
pub const PATH_MAX: usize = 4096;

const PAGE: u64 = 4096;

/// Scratch memory kept per thread up to this size (a `dd bs=1M` reuses
/// it from call to call); larger buffers are made for the call.
const SCRATCH_KEPT: usize = 2 << 20;

thread_local! {
    static SCRATCH: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// The alignment of scratch buffers: the kernel's copies (`pread` into
/// the buffer, `process_vm_writev` out of it) run several times slower on
/// some CPUs when the buffer is not aligned to 32 bytes, and a large
/// allocation from malloc is only aligned to 16.
const SCRATCH_ALIGN: usize = 4096;

/// Runs `f` with `len` bytes of this thread's scratch memory, page-aligned
/// and reused from call to call so that large transfers do not allocate,
/// zero and fault in a new buffer each time: its bytes are whatever the
/// last user left.
pub fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
    // Taken out while in use: a nested call gets a buffer of its own.
    let mut buf = SCRATCH.with(|s| s.take());
    if buf.len() < len + SCRATCH_ALIGN {
        buf = vec![0u8; len + SCRATCH_ALIGN];
    }
    let start = buf.as_ptr().align_offset(SCRATCH_ALIGN);
    let r = f(&mut buf[start..start + len]);
    if buf.len() <= SCRATCH_KEPT + SCRATCH_ALIGN {
        SCRATCH.with(|s| s.set(buf));
    }
    r
}

/// Reads up to `buf.len()` bytes at `addr` of process `pid`; returns how many
/// bytes could be read (short at the first unreadable page).
pub fn read_partial(pid: i32, addr: u64, buf: &mut [u8]) -> Result<usize, Errno> {
    if buf.is_empty() {
        return Ok(0);
    }
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: `local` describes `buf`, which we own and may write; the remote
    // iovec is only interpreted by the kernel in the other process's address
    // space, where a bad address yields EFAULT, not undefined behaviour here.
    let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    if n < 0 {
        let e = Errno::from(std::io::Error::last_os_error());
        // ESRCH: the process is gone; EPERM: the host may not read it;
        // anything else about the remote range is a fault from the
        // program's point of view.
        return Err(if e.raw() == libc::ESRCH || e.raw() == libc::EPERM {
            e
        } else {
            Errno::EFAULT
        });
    }
    Ok(n as usize)
}

/// Reads exactly `buf.len()` bytes at `addr`, or fails with `EFAULT`.
pub fn read_exact(pid: i32, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
    if read_partial(pid, addr, buf)? == buf.len() {
        Ok(())
    } else {
        Err(Errno::EFAULT)
    }
}

/// Reads a NUL-terminated string of at most `max` bytes (NUL included) at
/// `addr`. A string with no NUL within `max` bytes is `ENAMETOOLONG`; an
/// unreadable byte before the NUL is `EFAULT`; a NULL pointer is `EFAULT`.
pub fn read_cstring(pid: i32, addr: u64, max: usize) -> Result<Vec<u8>, Errno> {
    if addr == 0 {
        return Err(Errno::EFAULT);
    }
    let mut out = Vec::with_capacity(256);
    let mut cur = addr;
    while out.len() < max {
        // Never cross a page boundary in one read: the next page may be
        // unmapped although the string ends before it.
        let to_page_end = (PAGE - cur % PAGE) as usize;
        let want = to_page_end.min(max - out.len());
        let start = out.len();
        out.resize(start + want, 0);
        let got = read_partial(pid, cur, &mut out[start..])?;
        out.truncate(start + got);
        if let Some(pos) = out[start..].iter().position(|&b| b == 0) {
            out.truncate(start + pos);
            return Ok(out);
        }
        if got < want {
            return Err(Errno::EFAULT);
        }
        cur = match cur.checked_add(want as u64) {
            Some(c) => c,
            None => return Err(Errno::EFAULT),
        };
    }
    Err(Errno::ENAMETOOLONG)
}

/// Reads a path argument: at most `PATH_MAX` bytes with its NUL.
pub fn read_path(pid: i32, addr: u64) -> Result<Vec<u8>, Errno> {
    read_cstring(pid, addr, PATH_MAX)
}

/// Writes `data` at `addr` of process `pid`, all or `EFAULT`.
pub fn write_all(pid: i32, addr: u64, data: &[u8]) -> Result<(), Errno> {
    if data.is_empty() {
        return Ok(());
    }
    let local = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: `local` describes `data`, which the kernel only reads; the
    // remote range is checked by the kernel in the other address space.
    let n = unsafe { libc::process_vm_writev(pid, &local, 1, &remote, 1, 0) };
    if n < 0 || n as usize != data.len() {
        return Err(Errno::EFAULT);
    }
    Ok(())
}

/// The stack pointer to write a rewrite's data below: `rsp`, or lower if
/// one of the call's arguments `args` already points just below `rsp`'s
/// red zone, at what an earlier rewrite of the same call put there (an
/// exec rewritten to an interpreter, whose file is then rewritten in
/// turn), so the new data does not overwrite the old.
pub fn below_earlier_rewrites(rsp: u64, args: &[u64]) -> u64 {
    let top = rsp.saturating_sub(128);
    let bottom = top.saturating_sub(MAX_EXEC_ARGS as u64 * 2);
    args.iter()
        .filter(|&&a| a >= bottom && a < top)
        .map(|&a| a & !15)
        .fold(rsp, u64::min)
}

/// Writes `s` with a NUL below the red zone of a stopped thread's stack
/// whose pointer is `rsp` (the program may be using the red zone);
/// returns its address.
pub fn put_on_stack(tid: i32, rsp: u64, s: &[u8]) -> Result<u64, Errno> {
    let mut bytes = s.to_vec();
    bytes.push(0);
    let addr = (rsp - 128 - bytes.len() as u64) & !15;
    write_all(tid, addr, &bytes)?;
    Ok(addr)
}

/// Longest single argument of an exec (`MAX_ARG_STRLEN`).
const MAX_ARG_STRLEN: usize = 32 * 4096;

/// Most bytes of arguments the host copies for an exec it rewrites; more
/// is `E2BIG`.
const MAX_EXEC_ARGS: usize = 1 << 20;

/// Reads a NULL-terminated array of strings (execve's `argv`) at `addr`
/// of thread `tid`; a NULL `addr` is an empty array, as the kernel takes
/// it. A bad pointer is `EFAULT`, too much is `E2BIG`.
pub fn read_string_array(tid: i32, addr: u64) -> Result<Vec<Vec<u8>>, Errno> {
    let mut out = Vec::new();
    if addr == 0 {
        return Ok(out);
    }
    let mut total = 0usize;
    let mut at = addr;
    loop {
        let mut word = [0u8; 8];
        read_exact(tid, at, &mut word)?;
        let ptr = u64::from_ne_bytes(word);
        if ptr == 0 {
            return Ok(out);
        }
        let s = read_cstring(tid, ptr, MAX_ARG_STRLEN).map_err(|e| {
            if e == Errno::ENAMETOOLONG {
                Errno::new(libc::E2BIG)
            } else {
                e
            }
        })?;
        total += s.len() + 1 + 8;
        if total > MAX_EXEC_ARGS {
            return Err(Errno::new(libc::E2BIG));
        }
        out.push(s);
        at = at.checked_add(8).ok_or(Errno::EFAULT)?;
    }
}

/// Writes an exec's new file name and argument array below the red zone
/// of a stopped thread's stack whose pointer is `rsp`: the strings, then
/// the NULL-terminated array of pointers to them. Returns the addresses
/// of the name and of the array.
pub fn put_exec_args(
    tid: i32,
    rsp: u64,
    path: &[u8],
    argv: &[Vec<u8>],
) -> Result<(u64, u64), Errno> {
    let strings = std::iter::once(path).chain(argv.iter().map(Vec::as_slice));
    let strings_len: usize = strings.clone().map(|s| s.len() + 1).sum();
    let array_at = (strings_len + 7) & !7;
    let total = array_at + (argv.len() + 1) * 8;
    let base = rsp.checked_sub(128 + total as u64).ok_or(Errno::EFAULT)? & !15;
    let mut block = Vec::with_capacity(total);
    let mut offsets = Vec::with_capacity(argv.len() + 1);
    for s in strings {
        offsets.push(block.len() as u64);
        block.extend_from_slice(s);
        block.push(0);
    }
    block.resize(array_at, 0);
    for off in &offsets[1..] {
        block.extend_from_slice(&(base + off).to_ne_bytes());
    }
    block.extend_from_slice(&0u64.to_ne_bytes());
    write_all(tid, base, &block)?;
    Ok((base, base + array_at as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> i32 {
        std::process::id() as i32
    }

    #[test]
    fn rewrites_stack_below_each_other() {
        let rsp = 0x7fff_0000_0000u64;
        assert_eq!(below_earlier_rewrites(rsp, &[0, 5, rsp + 8]), rsp);
        assert_eq!(
            below_earlier_rewrites(rsp, &[rsp - 200, rsp - 4096 + 3]),
            rsp - 4096
        );
        // The red zone itself is the program's, not a rewrite's.
        assert_eq!(below_earlier_rewrites(rsp, &[rsp - 64]), rsp);
    }

    #[test]
    fn reads_own_string() {
        let s = b"/usr/bin/env\0trailing";
        let got = read_cstring(me(), s.as_ptr() as u64, PATH_MAX).expect("readable");
        assert_eq!(got, b"/usr/bin/env");
    }

    #[test]
    fn null_and_wild_pointers_fault() {
        assert_eq!(read_cstring(me(), 0, PATH_MAX), Err(Errno::EFAULT));
        assert_eq!(read_cstring(me(), 8, PATH_MAX), Err(Errno::EFAULT));
        assert_eq!(
            read_cstring(me(), 0xffff_ffff_ffff_f000, PATH_MAX),
            Err(Errno::EFAULT)
        );
    }

    #[test]
    fn unterminated_is_too_long() {
        let s = vec![b'a'; PATH_MAX + 10];
        assert_eq!(
            read_cstring(me(), s.as_ptr() as u64, PATH_MAX),
            Err(Errno::ENAMETOOLONG)
        );
    }

    #[test]
    fn string_ending_at_page_edge_before_unmapped_page() {
        // Map two pages, unmap the second, put the string at the very end of
        // the first: the read must stop at the NUL and not fault.
        // SAFETY: anonymous private mapping, no aliasing; we unmap below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                8192,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        // SAFETY: second page of our own mapping.
        unsafe { libc::munmap((p as *mut u8).add(4096).cast(), 4096) };
        // SAFETY: the first page is ours and writable.
        let page = unsafe { std::slice::from_raw_parts_mut(p as *mut u8, 4096) };
        page[4093..].copy_from_slice(b"ab\0");
        let got = read_cstring(me(), p as u64 + 4093, PATH_MAX).expect("readable");
        assert_eq!(got, b"ab");
        page[4093..].copy_from_slice(b"abc");
        assert_eq!(
            read_cstring(me(), p as u64 + 4093, PATH_MAX),
            Err(Errno::EFAULT)
        );
        // SAFETY: unmapping our own first page.
        unsafe { libc::munmap(p, 4096) };
    }

    #[test]
    fn exec_args_round_trip() {
        let mut stack = vec![0u64; 512];
        let top = stack.as_mut_ptr() as u64 + 512 * 8;
        let argv = [b"/usr/bin/python3".to_vec(), b"./a.foo".to_vec(), vec![]];
        let (path, array) = put_exec_args(me(), top, b"/usr/bin/python3", &argv).expect("fits");
        assert!(path < top - 128 && array < top - 128);
        assert_eq!(read_path(me(), path).unwrap(), b"/usr/bin/python3");
        assert_eq!(read_string_array(me(), array).unwrap(), argv);
        assert_eq!(read_string_array(me(), 0).unwrap(), Vec::<Vec<u8>>::new());
        assert_eq!(read_string_array(me(), 8), Err(Errno::EFAULT));
        drop(stack);
    }

    #[test]
    fn write_round_trip() {
        let mut target = [0u8; 4];
        write_all(me(), target.as_mut_ptr() as u64, b"wxyz").expect("writable");
        // The kernel wrote behind the compiler's back; read it volatile.
        // SAFETY: reading our own initialized array.
        let v = unsafe { std::ptr::read_volatile(&target) };
        assert_eq!(&v, b"wxyz");
        assert_eq!(write_all(me(), 8, b"x"), Err(Errno::EFAULT));
    }
}
