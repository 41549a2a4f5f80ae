//! What an exec needs to know of an ELF program: the interpreter it names
//! (`PT_INTERP`, the dynamic loader), and whether a loader run as a
//! program takes `--argv0`.
//!
//! The kernel loads a program's interpreter by its path on the *real*
//! root. In a view where that path leads elsewhere (a moved root, a
//! mounted `/lib`), the exec of a program from a mount is made an exec of
//! the view's loader with the program as its argument
//! (`syscalls::sys_exec`); these helpers read what that takes.

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::sync::{Mutex, OnceLock};

/// `PT_INTERP`.
const PT_INTERP: u32 = 3;
/// The longest interpreter path the kernel takes (`PATH_MAX`).
const MAX_INTERP: u64 = 4096;
/// The ELF machine of the programs this host runs natively.
#[cfg(target_arch = "x86_64")]
const HOST_MACHINE: u16 = 62; // EM_X86_64
#[cfg(target_arch = "aarch64")]
const HOST_MACHINE: u16 = 183; // EM_AARCH64
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const HOST_MACHINE: u16 = 0;

/// Reads up to `len` bytes of `file` at `offset` (fewer at its end).
pub(crate) fn read_at(file: &impl AsRawFd, offset: u64, len: usize) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        // SAFETY: pread writes at most `len - done` bytes into the rest of
        // our buffer.
        let n = unsafe {
            libc::pread(
                file.as_raw_fd(),
                buf[done..].as_mut_ptr().cast(),
                len - done,
                (offset + done as u64) as libc::off_t,
            )
        };
        if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        if n <= 0 {
            break;
        }
        done += n as usize;
    }
    buf.truncate(done);
    Some(buf)
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// The interpreter path (`PT_INTERP`, without its NUL) of the ELF program
/// in `file` whose first bytes are `head`, if it is a little-endian
/// program for this machine that names one. `None` for anything else (a
/// static program, another machine's, a script, garbage): the kernel
/// decides about those.
pub fn interpreter(file: &impl AsRawFd, head: &[u8]) -> Option<Vec<u8>> {
    if head.get(..4)? != b"\x7fELF" || *head.get(5)? != 1 {
        return None;
    }
    let wide = match head.get(4)? {
        2 => true,
        1 => false,
        _ => return None,
    };
    let ehdr = read_at(file, 0, 64)?;
    if u16_at(&ehdr, 18)? != HOST_MACHINE {
        return None;
    }
    let (phoff, phentsize, phnum) = if wide {
        (u64_at(&ehdr, 32)?, u16_at(&ehdr, 54)?, u16_at(&ehdr, 56)?)
    } else {
        (
            u64::from(u32_at(&ehdr, 28)?),
            u16_at(&ehdr, 42)?,
            u16_at(&ehdr, 44)?,
        )
    };
    let min = if wide { 56 } else { 32 };
    if usize::from(phentsize) < min || phnum == 0 || phnum > 512 {
        return None;
    }
    let table = read_at(file, phoff, usize::from(phentsize) * usize::from(phnum))?;
    for ph in table.chunks_exact(usize::from(phentsize)) {
        if u32_at(ph, 0)? != PT_INTERP {
            continue;
        }
        let (offset, size) = if wide {
            (u64_at(ph, 8)?, u64_at(ph, 32)?)
        } else {
            (u64::from(u32_at(ph, 4)?), u64::from(u32_at(ph, 16)?))
        };
        if !(2..=MAX_INTERP).contains(&size) {
            return None;
        }
        let mut path = read_at(file, offset, size as usize)?;
        // The kernel wants it NUL-terminated; the name ends at the NUL.
        if path.len() as u64 != size || path.last() != Some(&0) {
            return None;
        }
        path.truncate(path.iter().position(|&c| c == 0)?);
        return (!path.is_empty()).then_some(path);
    }
    None
}

/// A file's device, inode, size and mtime.
type FileKey = (u64, u64, i64, i64);

/// True if the dynamic loader in `file` takes `--argv0` when run as a
/// program (glibc 2.33 and later, musl): then the program it loads keeps
/// its `argv[0]`. Remembered per file (device, inode, size, mtime).
pub fn loader_takes_argv0(file: &impl AsRawFd) -> bool {
    static SEEN: OnceLock<Mutex<HashMap<FileKey, bool>>> = OnceLock::new();
    // SAFETY: fstat fills the stat buffer we own.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above; the fd is valid for the call.
    if unsafe { libc::fstat(file.as_raw_fd(), &mut st) } != 0 {
        return false;
    }
    let key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime);
    let seen = SEEN.get_or_init(Default::default);
    if let Some(&known) = seen.lock().ok().and_then(|m| m.get(&key).copied()).as_ref() {
        return known;
    }
    // Loaders are a few hundred KiB; read at most 8 MiB.
    let len = (st.st_size.max(0) as usize).min(8 << 20);
    let takes = read_at(file, 0, len).is_some_and(|all| all.windows(7).any(|w| w == b"--argv0"));
    if let Ok(mut m) = seen.lock() {
        m.insert(key, takes);
    }
    takes
}

/// `AT_EXECFD`: the program's fd, for an interpreter (binfmt's `O`).
const AT_EXECFD: u64 = 2;
/// `AT_FLAGS`: always 0 on Linux, read by no loader.
const AT_FLAGS: u64 = 8;

/// At the exec event of `pid` (its new stack as the kernel made it, the
/// stack pointer on `argc`): puts `AT_EXECFD` = `fd` in the auxiliary
/// vector, in the place of `AT_FLAGS` (the vector has no room to grow, and
/// that entry is always 0 and unused).
pub fn set_auxv_execfd(pid: i32, fd: i64) -> Result<(), viewos_core::Errno> {
    use viewos_core::Errno;
    let regs = crate::ptrace::get_regs(pid).map_err(|_| Errno::new(libc::ESRCH))?;
    let word = |at: u64| -> Result<u64, Errno> {
        let mut b = [0u8; 8];
        crate::memory::read_exact(pid, at, &mut b)?;
        Ok(u64::from_ne_bytes(b))
    };
    let argc = word(regs.rsp)?;
    if argc > 1 << 20 {
        return Err(Errno::EINVAL);
    }
    let mut at = regs.rsp + 8 + (argc + 1) * 8;
    // The environment, to its NULL.
    for _ in 0..(1 << 20) {
        let p = word(at)?;
        at += 8;
        if p == 0 {
            break;
        }
    }
    for _ in 0..256 {
        let kind = word(at)?;
        if kind == 0 {
            return Err(Errno::ENOENT);
        }
        if kind == AT_FLAGS {
            let mut pair = [0u8; 16];
            pair[..8].copy_from_slice(&AT_EXECFD.to_ne_bytes());
            pair[8..].copy_from_slice(&(fd as u64).to_ne_bytes());
            return crate::memory::write_all(pid, at, &pair);
        }
        at += 16;
    }
    Err(Errno::ENOENT)
}

/// The arguments of a loader run as a program to run `program` (as the
/// exec named it) with `argv`: `LOADER [--argv0 ARGV0] PROGRAM ARGS...`.
/// A program name without a slash gets `./` (the loader would search its
/// library path for it).
pub fn loader_argv(loader: &[u8], argv0: bool, program: &[u8], argv: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut out = vec![loader.to_vec()];
    if argv0 {
        out.push(b"--argv0".to_vec());
        out.push(argv.first().cloned().unwrap_or_default());
    }
    if program.contains(&b'/') {
        out.push(program.to_vec());
    } else {
        let mut p = b"./".to_vec();
        p.extend_from_slice(program);
        out.push(p);
    }
    out.extend(argv.iter().skip(1).cloned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn head_of(path: &str) -> (std::fs::File, Vec<u8>) {
        let mut f = std::fs::File::open(path).unwrap();
        let mut head = vec![0; 256];
        let n = f.read(&mut head).unwrap();
        head.truncate(n);
        (f, head)
    }

    #[test]
    fn interpreters_of_real_programs() {
        let (f, head) = head_of("/bin/sh");
        let interp = interpreter(&f, &head).expect("a dynamic program");
        assert!(
            interp.starts_with(b"/lib"),
            "{:?}",
            String::from_utf8_lossy(&interp)
        );
        // The loader itself names none; a script is no ELF.
        let loader =
            std::path::Path::new(std::ffi::OsStr::new(std::str::from_utf8(&interp).unwrap()));
        let (l, lhead) = head_of(loader.to_str().unwrap());
        assert_eq!(interpreter(&l, &lhead), None);
        assert!(loader_takes_argv0(&l), "Debian 12's glibc takes --argv0");
        let script = std::env::temp_dir().join(format!("elf-test-{}", std::process::id()));
        std::fs::write(&script, b"#!/bin/sh\necho\n").unwrap();
        let (s, shead) = head_of(script.to_str().unwrap());
        assert_eq!(interpreter(&s, &shead), None);
        assert!(!loader_takes_argv0(&s));
        std::fs::remove_file(&script).unwrap();
    }

    #[test]
    fn garbage_names_no_interpreter() {
        let path = std::env::temp_dir().join(format!("elf-garbage-{}", std::process::id()));
        // An ELF header whose program headers lie past the end.
        let mut bytes = b"\x7fELF\x02\x01\x01".to_vec();
        bytes.resize(64, 0);
        bytes[18] = HOST_MACHINE as u8;
        bytes[19] = (HOST_MACHINE >> 8) as u8;
        bytes[32] = 0xff;
        bytes[54] = 56;
        bytes[56] = 3;
        std::fs::write(&path, &bytes).unwrap();
        let (f, head) = head_of(path.to_str().unwrap());
        assert_eq!(interpreter(&f, &head), None);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn loader_arguments() {
        let argv = vec![b"-bash".to_vec(), b"-c".to_vec(), b"x".to_vec()];
        assert_eq!(
            loader_argv(b"/lib/ld.so", true, b"bash", &argv),
            vec![
                b"/lib/ld.so".to_vec(),
                b"--argv0".to_vec(),
                b"-bash".to_vec(),
                b"./bash".to_vec(),
                b"-c".to_vec(),
                b"x".to_vec()
            ]
        );
        assert_eq!(
            loader_argv(b"/l", false, b"/bin/x", &[]),
            vec![b"/l".to_vec(), b"/bin/x".to_vec()]
        );
    }
}
