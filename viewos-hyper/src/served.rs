//! Files services serve themselves ([`viewos_core::Opened::Served`]): the
//! placeholder fds programs hold for them, and the open-file state the host
//! keeps.
//!
//! A program that opens a served file gets a *placeholder*: one end of a
//! pipe of the host's, opened read-write. The kernel keeps it like any fd
//! (dup, fork, `CLONE_FILES`, close-on-exec and close are exact without a
//! table of the host's), and its `/proc/TID/fd/N` link, `pipe:[INODE]`,
//! names the open file here. The host keeps the pipe's read end: when
//! every copy in the programs is closed it reports `POLLHUP`, and the
//! release thread drops the service's handle (FUSE's `release`). One byte
//! waits in each pipe so that poll, select and epoll find the fd readable
//! and writable, as they find a regular file.
//!
//! A file whose readiness changes (a socket, a device) tells the host
//! through its [`Notifier`]: the host then fills or drains the pipe so that
//! the placeholder polls as the file does ([`ServedFile::refresh`]), and
//! wakes the threads waiting in a blocking call on it
//! ([`ServedFiles::wait`]). A pipe cannot be neither readable nor
//! writable: a file that is neither polls writable.
//!
//! The calls on the fd itself stop only in processes that hold a
//! placeholder: at the first one, the host adds a second seccomp filter to
//! that process ([`crate::inject`]) that sends the fd family to the tracer
//! (`sys_fd`). [`ServedFiles::has_fd_filter`] says which processes have it;
//! their children inherit it.

use std::collections::{HashMap, HashSet};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use viewos_core::fs::MountRequest;
use viewos_core::handle::{READABLE, WRITABLE};
use viewos_core::mounts::Mount;
use viewos_core::{Errno, FileHandle, FileStat, FileSystem, Notifier};

use crate::inbox::Inbox;

/// The service name of the stand-in mount of a served real directory
/// ([`crate::merged_dir`]).
pub const REAL: &str = "real";

/// One open file a service serves: an open file description.
pub struct ServedFile {
    /// The service's handle.
    pub handle: Box<dyn FileHandle>,
    /// The mount it was opened in.
    pub mount: Mount,
    /// Its path inside the mount.
    pub path: PathBuf,
    /// Open flags: access mode and status flags (`F_GETFL`).
    pub flags: Mutex<i32>,
    /// The file offset, or a directory's listing cookie. Held during a call
    /// that moves it, so calls on one description are ordered.
    pub offset: Mutex<u64>,
    /// A directory (listable, usable as a dirfd).
    pub is_dir: bool,
    /// A memory copy of the file made for mmap, reused by later mappings
    /// until the file is written through the fd.
    copy: Mutex<Option<Arc<OwnedFd>>>,
    /// The copy is mapped shared and writable: its contents go back to the
    /// service at munmap, msync and release.
    shared_map: std::sync::atomic::AtomicBool,
    /// The host's end of the placeholder pipe.
    reader: OwnedFd,
    /// The inode of the pipe (the file's key).
    ino: u64,
    /// Bytes in the pipe: what the placeholder polls as.
    in_pipe: Mutex<usize>,
    /// A blocking connect is under way on this socket.
    pub connecting: AtomicBool,
    /// Counted among the files alive until everything above is dropped
    /// (declared last, so dropped last).
    _live: Live,
}

/// One served file alive, in the table or still used by a call or a
/// release (see [`ServedFiles::release_all`]).
struct Live(Arc<AtomicUsize>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How long the end of a view waits for served files still being
/// released (their handles may be answering a last call of the service).
const RELEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Bytes in a placeholder pipe for each readiness: readable and writable,
/// only writable, only readable (two pages' worth of pipe, one full and
/// one byte in the next: no room left).
const BOTH: usize = 1;
const WRITE_ONLY: usize = 0;
const READ_ONLY: usize = 4097;
const SMALL_PIPE: i32 = 8192;

/// Events that make a placeholder poll readable: what `read` would not
/// wait for (data, end of stream, an error).
const READ_EVENTS: u32 =
    READABLE | (libc::POLLPRI | libc::POLLHUP | libc::POLLERR | libc::POLLRDHUP) as u32;
const WRITE_EVENTS: u32 = WRITABLE | libc::POLLERR as u32;

impl ServedFile {
    /// The access mode allows reading (not `O_WRONLY`, not `O_PATH`).
    pub fn readable(&self) -> Result<(), Errno> {
        let f = *self.flags.lock();
        if f & libc::O_PATH != 0 || f & libc::O_ACCMODE == libc::O_WRONLY {
            Err(Errno::EBADF)
        } else {
            Ok(())
        }
    }

    /// The access mode allows writing.
    pub fn writable(&self) -> Result<(), Errno> {
        let f = *self.flags.lock();
        if f & libc::O_PATH != 0 || f & libc::O_ACCMODE == libc::O_RDONLY {
            Err(Errno::EBADF)
        } else {
            Ok(())
        }
    }

    /// Opened with `O_PATH`: only fd-level calls work on it.
    pub fn is_path_only(&self) -> bool {
        *self.flags.lock() & libc::O_PATH != 0
    }

    /// The file's status, from the handle.
    pub fn stat(&self) -> Result<FileStat, Errno> {
        self.handle.stat()
    }

    /// The memory copy of the file to map (made on first use); `shared`:
    /// the mapping is shared and writable, so the copy is written back.
    pub fn map_copy(&self, shared: bool) -> Result<Arc<OwnedFd>, Errno> {
        let mut copy = self.copy.lock();
        let fd = match &*copy {
            Some(fd) => fd.clone(),
            None => {
                let fd = Arc::new(copy_of(self.handle.as_ref())?);
                *copy = Some(fd.clone());
                fd
            }
        };
        if shared {
            self.shared_map.store(true, Ordering::Release);
        }
        Ok(fd)
    }

    /// The file changed through its fd: a later mapping needs a new copy
    /// (a shared one stays, as its pages are the file's for its users).
    pub fn changed(&self) {
        if !self.shared_map.load(Ordering::Acquire) {
            *self.copy.lock() = None;
        }
    }

    /// Writes a shared writable mapping's copy back to the service.
    pub fn write_back(&self) -> Result<(), Errno> {
        if !self.shared_map.load(Ordering::Acquire) {
            return Ok(());
        }
        let Some(fd) = self.copy.lock().clone() else {
            return Ok(());
        };
        use std::os::unix::fs::FileExt;
        let file = std::fs::File::from(fd.try_clone()?);
        let len = file.metadata()?.len();
        let mut buf = vec![0u8; 1 << 20];
        let mut at = 0u64;
        while at < len {
            let n = file.read_at(&mut buf, at)?;
            if n == 0 {
                break;
            }
            let mut done = 0;
            while done < n {
                let w = self.handle.write(at + done as u64, &buf[done..n])?;
                if w == 0 {
                    return Err(Errno::EIO);
                }
                done += w;
            }
            at += n as u64;
        }
        Ok(())
    }

    /// A real directory served by the host itself (its listing has mount
    /// points added): names below it are real.
    pub fn is_real_dir(&self) -> bool {
        self.is_dir && self.mount.service == REAL
    }

    /// The view path of the file (for a dirfd or fchdir).
    pub fn view_path(&self) -> PathBuf {
        self.mount.view_path(&self.path)
    }

    /// The fd is in blocking mode (no `O_NONBLOCK`).
    pub fn blocking(&self) -> bool {
        *self.flags.lock() & libc::O_NONBLOCK == 0
    }

    /// Makes the placeholder poll as the handle does now; returns the
    /// handle's readiness.
    pub fn refresh(&self) -> u32 {
        let bits = self.handle.poll();
        let want = match (bits & READ_EVENTS != 0, bits & WRITE_EVENTS != 0) {
            (true, true) => BOTH,
            (true, false) => READ_ONLY,
            (false, _) => WRITE_ONLY,
        };
        let mut have = self.in_pipe.lock();
        if *have != want {
            if let Ok(n) = set_pipe_fill(&self.reader, *have, want) {
                *have = n;
            }
        }
        bits
    }
}

/// Changes the bytes in the pipe whose read end is `reader` from `have` to
/// `want`; returns how many it holds then.
fn set_pipe_fill(reader: &OwnedFd, have: usize, want: usize) -> io::Result<usize> {
    let fd = reader.as_raw_fd();
    let mut buf = [0u8; READ_ONLY];
    let mut left = have;
    while left > 0 {
        // SAFETY: reads into a local buffer of its length; the end is
        // non-blocking.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        left = left.saturating_sub(n as usize);
    }
    if want == 0 {
        return Ok(0);
    }
    if want == READ_ONLY {
        // Two pages: one full page and one byte fill both slots.
        // SAFETY: fcntl with an integer argument.
        unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, SMALL_PIPE) };
    }
    let path = CString::new(format!("/proc/self/fd/{fd}"))
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: open of a NUL-terminated path we own.
    let w = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_WRONLY | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    if w < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new fd we own.
    let w = unsafe { OwnedFd::from_raw_fd(w) };
    // SAFETY: writes from a local buffer of at least `want` bytes.
    let n = unsafe { libc::write(w.as_raw_fd(), buf.as_ptr().cast(), want) };
    Ok(n.max(0) as usize)
}

/// Threads sleeping in a blocking call on a served file, and the ones to
/// wake ([`ServedFiles::wait`]).
struct Waiters {
    /// By thread: the file's inode and the events it waits for.
    asleep: Mutex<HashMap<i32, (u64, u32)>>,
    /// Threads for the tracer to interrupt: their file is ready.
    woken: Arc<Inbox<i32>>,
}

impl Waiters {
    /// File `ino` is ready for `bits`: wake who waits for them.
    fn ready(&self, ino: u64, bits: u32) {
        let mut asleep = self.asleep.lock();
        let ready: Vec<i32> = asleep
            .iter()
            .filter(|(_, &(i, ev))| i == ino && ev & bits != 0)
            .map(|(&tid, _)| tid)
            .collect();
        if ready.is_empty() {
            return;
        }
        for tid in &ready {
            asleep.remove(tid);
        }
        drop(asleep);
        for tid in ready {
            self.woken.push(tid);
        }
    }
}

/// A file system that answers nothing: the stand-in mount of sockets and
/// of devices opened by number, which are no file of a mount.
struct NoFileSystem;
impl FileSystem for NoFileSystem {}

/// The stand-in mount of the sockets `service` makes.
pub fn socket_mount(service: &str) -> Mount {
    pathless_mount(service, "socket")
}

/// The stand-in mount of the devices `service` opens by number.
pub fn device_mount(service: &str) -> Mount {
    pathless_mount(service, "device")
}

fn pathless_mount(service: &str, what: &str) -> Mount {
    Mount {
        request: MountRequest {
            source: what.into(),
            target: PathBuf::from("/"),
            fstype: service.into(),
            flags: 0,
            options: String::new(),
            fd: None,
            launcher: None,
        },
        service: service.into(),
        fs: Arc::new(NoFileSystem),
    }
}

/// The served files of one view, by the inode of their placeholder pipe.
pub struct ServedFiles {
    files: RwLock<HashMap<u64, Arc<ServedFile>>>,
    count: AtomicUsize,
    /// epoll set of the readers, watched by the release thread.
    epoll: OwnedFd,
    /// Thread groups that have the fd filter.
    filtered: Mutex<HashSet<i32>>,
    /// Opens waiting for their caller's fd filter: by thread.
    pending: Mutex<HashMap<i32, Pending>>,
    /// Threads waiting in blocking calls.
    waiters: Arc<Waiters>,
    /// Served files alive (see [`Live`]).
    live: Arc<AtomicUsize>,
    /// Real files processes hold for direct transfers.
    pub direct: Arc<crate::direct::DirectFds>,
}

/// A new placeholder ([`ServedFiles::create`]).
pub struct Placeholder {
    /// The fd to give the program.
    pub fd: OwnedFd,
    /// The text its `/proc/PID/fd` link will show.
    pub link: PathBuf,
    /// The open file it stands for.
    pub file: Arc<ServedFile>,
}

/// A placeholder made for a call that waits until the fd filter is in its
/// process.
pub struct Pending {
    /// The syscall it answers, and its arguments.
    pub nr: u64,
    /// The call's arguments (the same call comes back).
    pub args: [u64; 6],
    /// The placeholder to install.
    pub fd: OwnedFd,
    /// Close-on-exec.
    pub cloexec: bool,
    /// Set when adding the filter failed: the call fails with it.
    pub failed: Option<Errno>,
}

impl ServedFiles {
    /// An empty table.
    pub fn new() -> io::Result<ServedFiles> {
        // SAFETY: epoll_create1 has no memory arguments.
        let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if ep < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(ServedFiles {
            files: RwLock::new(HashMap::new()),
            count: AtomicUsize::new(0),
            // SAFETY: a new fd we own.
            epoll: unsafe { OwnedFd::from_raw_fd(ep) },
            filtered: Mutex::new(HashSet::new()),
            pending: Mutex::new(HashMap::new()),
            waiters: Arc::new(Waiters {
                asleep: Mutex::new(HashMap::new()),
                woken: Inbox::new()?,
            }),
            live: Arc::new(AtomicUsize::new(0)),
            direct: Arc::default(),
        })
    }

    /// The thread to wake when a waiting call's file becomes ready.
    pub fn set_tracer(&self, tid: i32) {
        self.waiters.woken.set_tracer(tid);
    }

    /// Thread `tid` is about to sleep until `file` is ready for `events`
    /// (poll bits). Returns `false` if it is ready already (no sleep: make
    /// the call again at once).
    pub fn wait(&self, tid: i32, file: &ServedFile, events: u32) -> bool {
        self.waiters
            .asleep
            .lock()
            .insert(tid, (file.ino, events | libc::POLLERR as u32));
        // Readiness that came before the thread was registered.
        if file.handle.poll() & (events | (libc::POLLERR | libc::POLLHUP) as u32) != 0 {
            self.waiters.asleep.lock().remove(&tid);
            return false;
        }
        true
    }

    /// Thread `tid` no longer waits.
    pub fn end_wait(&self, tid: i32) {
        self.waiters.asleep.lock().remove(&tid);
    }

    /// The waiting threads whose file became ready (to interrupt).
    pub fn take_woken(&self) -> Vec<i32> {
        self.waiters.woken.take()
    }

    /// True while no served file is open (the common case: every fd is
    /// real and nothing needs looking up).
    pub fn is_empty(&self) -> bool {
        self.count.load(Ordering::Acquire) == 0
    }

    /// Registers `handle`, opened with `flags`, and returns the placeholder
    /// to give the program.
    pub fn create(
        &self,
        handle: Box<dyn FileHandle>,
        mount: Mount,
        path: PathBuf,
        flags: i32,
    ) -> Result<Placeholder, Errno> {
        let is_dir = handle.stat().map(|s| s.is_dir()).unwrap_or(false);
        let (reader, placeholder) = placeholder_pipe().map_err(Errno::from)?;
        let ino = inode_of(&placeholder).map_err(Errno::from)?;
        let file = Arc::new(ServedFile {
            ino,
            in_pipe: Mutex::new(BOTH),
            connecting: AtomicBool::new(false),
            handle,
            mount,
            path,
            flags: Mutex::new(flags & !(libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC)),
            offset: Mutex::new(0),
            is_dir,
            copy: Mutex::new(None),
            shared_map: Default::default(),
            reader,
            _live: {
                self.live.fetch_add(1, Ordering::AcqRel);
                Live(self.live.clone())
            },
        });
        let mut ev = libc::epoll_event {
            events: 0,
            u64: ino,
        };
        // SAFETY: adding an fd we own to our epoll set; the kernel copies the
        // event. Events 0: only hang-up and error are reported.
        let r = unsafe {
            libc::epoll_ctl(
                self.epoll.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                file.reader.as_raw_fd(),
                &mut ev,
            )
        };
        if r < 0 {
            return Err(Errno::from(io::Error::last_os_error()));
        }
        // The handle tells when its readiness changes.
        let weak = Arc::downgrade(&file);
        let waiters = self.waiters.clone();
        file.handle.watch(Notifier::new(move || {
            if let Some(f) = weak.upgrade() {
                let bits = f.refresh();
                waiters.ready(f.ino, bits);
            }
        }));
        file.refresh();
        self.files.write().insert(ino, file.clone());
        self.count.fetch_add(1, Ordering::AcqRel);
        Ok(Placeholder {
            fd: placeholder,
            link: link_name(ino),
            file,
        })
    }

    /// The served file thread `tid`'s `fd` stands for, if any.
    pub fn of_fd(&self, tid: i32, fd: i32) -> Option<Arc<ServedFile>> {
        if self.is_empty() || fd < 0 {
            return None;
        }
        let link = std::fs::read_link(format!("/proc/{tid}/fd/{fd}")).ok()?;
        self.of_link(&link)
    }

    /// The served file a `/proc/TID/fd/N` link names, if any.
    fn of_link(&self, link: &Path) -> Option<Arc<ServedFile>> {
        let ino = ino_of_link(link)?;
        self.files.read().get(&ino).cloned()
    }

    /// Waits for hang-ups of placeholders (every copy closed) and removes
    /// their files; `on_release` gets each link name. Runs until the
    /// process ends.
    pub fn release_loop(&self, on_release: impl Fn(&Path)) {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 32];
        loop {
            // SAFETY: epoll_wait fills at most `events.len()` entries.
            let n = unsafe {
                libc::epoll_wait(
                    self.epoll.as_raw_fd(),
                    events.as_mut_ptr(),
                    events.len() as i32,
                    -1,
                )
            };
            if n < 0 {
                if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                return;
            }
            for ev in &events[..n as usize] {
                let ino = ev.u64;
                let Some(file) = self.files.write().remove(&ino) else {
                    continue;
                };
                self.count.fetch_sub(1, Ordering::AcqRel);
                // SAFETY: removing an fd we own from our epoll set.
                unsafe {
                    libc::epoll_ctl(
                        self.epoll.as_raw_fd(),
                        libc::EPOLL_CTL_DEL,
                        file.reader.as_raw_fd(),
                        std::ptr::null_mut(),
                    )
                };
                on_release(&link_name(ino));
                // Mapped pages outlive the fd; what they hold now is kept.
                let _ = file.write_back();
                // The handle is dropped here, or when the last call still
                // using it ends.
                drop(file);
            }
        }
    }

    /// Releases every file at the end of the view (no process is left to
    /// close them): mappings are written back and the handles dropped.
    /// Waits (a bounded time) for files another thread is still releasing,
    /// so that their services have seen every release before the mounts
    /// are closed.
    pub fn release_all(&self) {
        let files: Vec<_> = self.files.write().drain().map(|(_, f)| f).collect();
        self.count.store(0, Ordering::Release);
        for f in files {
            let _ = f.write_back();
        }
        let deadline = std::time::Instant::now() + RELEASE_WAIT;
        while self.live.load(Ordering::Acquire) > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    /// Writes back every shared writable mapping (at munmap and msync).
    pub fn write_back_all(&self) {
        if self.is_empty() {
            return;
        }
        let files: Vec<_> = self.files.read().values().cloned().collect();
        for f in files {
            let _ = f.write_back();
        }
    }

    /// Whether thread group `tgid` has the fd filter.
    pub fn has_fd_filter(&self, tgid: i32) -> bool {
        self.filtered.lock().contains(&tgid)
    }

    /// Records that `tgid` has the fd filter.
    pub fn set_fd_filter(&self, tgid: i32) {
        self.filtered.lock().insert(tgid);
    }

    /// A new process `child` of `parent` inherits its filters.
    pub fn inherit(&self, parent_tgid: i32, child_tgid: i32) {
        let mut f = self.filtered.lock();
        if f.contains(&parent_tgid) {
            f.insert(child_tgid);
        }
    }

    /// True when some process has the fd filter.
    pub fn any_filtered(&self) -> bool {
        !self.filtered.lock().is_empty()
    }

    /// Thread `tid` ended (and the process with it when it was the leader).
    pub fn thread_gone(&self, tid: i32) {
        self.direct.thread_gone(tid);
        self.filtered.lock().remove(&tid);
        self.pending.lock().remove(&tid);
        self.end_wait(tid);
    }

    /// Keeps `p` until thread `tid` makes its call again.
    pub fn park(&self, tid: i32, p: Pending) {
        self.pending.lock().insert(tid, p);
    }

    /// The placeholder parked for thread `tid`'s call `nr` with `args`.
    pub fn unpark(&self, tid: i32, nr: u64, args: &[u64; 6]) -> Option<Pending> {
        let mut pending = self.pending.lock();
        match pending.get(&tid) {
            Some(p) if p.nr == nr && &p.args == args => pending.remove(&tid),
            _ => None,
        }
    }

    /// Marks the call parked for `tid` as failed with `e`.
    pub fn fail_parked(&self, tid: i32, e: Errno) {
        if let Some(p) = self.pending.lock().get_mut(&tid) {
            p.failed = Some(e);
        }
    }
}

/// A memory file holding a copy of what `handle` reads (to execute or map
/// a served file, which needs a real one).
pub fn copy_of(handle: &dyn FileHandle) -> Result<OwnedFd, Errno> {
    use std::io::Write;
    let mut f = crate::memfd::create("viewos-served")?;
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0u64;
    loop {
        let n = handle.read(at, &mut buf)?;
        if n == 0 {
            break;
        }
        f.write_all(&buf[..n.min(buf.len())])?;
        at += n as u64;
    }
    Ok(OwnedFd::from(f))
}

/// The fd link text of a placeholder (`pipe:[INODE]`).
pub fn link_name(ino: u64) -> PathBuf {
    PathBuf::from(format!("pipe:[{ino}]"))
}

fn ino_of_link(link: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let b = link.as_os_str().as_bytes();
    let digits = b.strip_prefix(b"pipe:[")?.strip_suffix(b"]")?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// A pipe whose read end the host keeps and whose other end, opened
/// read-write through `/proc/self/fd`, is the placeholder; one byte waits
/// in it so the placeholder polls readable.
fn placeholder_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 writes two fds into our array.
    // The host's read end never blocks (it is drained to change readiness);
    // the placeholder, a new open of the pipe, is in blocking mode.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both are new fds we own.
    let (reader, writer) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: writing one byte from a local.
    if unsafe { libc::write(writer.as_raw_fd(), [0u8].as_ptr().cast(), 1) } != 1 {
        return Err(io::Error::last_os_error());
    }
    let path = CString::new(format!("/proc/self/fd/{}", reader.as_raw_fd()))
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: open of a NUL-terminated path we own.
    let rw = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if rw < 0 {
        return Err(io::Error::last_os_error());
    }
    drop(writer);
    // SAFETY: a new fd we own.
    Ok((reader, unsafe { OwnedFd::from_raw_fd(rw) }))
}

fn inode_of(fd: &OwnedFd) -> io::Result<u64> {
    // SAFETY: fstat fills a zeroed stat we own.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st.st_ino)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_name_inodes() {
        assert_eq!(ino_of_link(&link_name(4242)), Some(4242));
        assert_eq!(ino_of_link(Path::new("/usr/bin")), None);
        assert_eq!(ino_of_link(Path::new("pipe:[x]")), None);
    }

    #[test]
    fn placeholder_hangs_up_when_closed() {
        let (reader, placeholder) = placeholder_pipe().unwrap();
        let poll = |fd: &OwnedFd| {
            let mut p = libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN | libc::POLLOUT,
                revents: 0,
            };
            // SAFETY: one pollfd we own, no wait.
            unsafe { libc::poll(&mut p, 1, 0) };
            p.revents
        };
        // The program's end is readable and writable, like a regular file.
        assert_eq!(
            poll(&placeholder) & (libc::POLLIN | libc::POLLOUT),
            libc::POLLIN | libc::POLLOUT
        );
        assert_eq!(poll(&reader) & libc::POLLHUP, 0);
        // Every readiness a pipe can show.
        let both = libc::POLLIN | libc::POLLOUT;
        for (have, want, shows) in [
            (BOTH, WRITE_ONLY, libc::POLLOUT),
            (WRITE_ONLY, READ_ONLY, libc::POLLIN),
            (READ_ONLY, BOTH, both),
            (BOTH, READ_ONLY, libc::POLLIN),
            (READ_ONLY, WRITE_ONLY, libc::POLLOUT),
            (WRITE_ONLY, BOTH, both),
        ] {
            assert_eq!(set_pipe_fill(&reader, have, want).unwrap(), want);
            assert_eq!(poll(&placeholder) & both, shows, "{have} -> {want}");
        }
        drop(placeholder);
        assert_ne!(poll(&reader) & libc::POLLHUP, 0);
    }
}
