//! The page cache of a mount: what the server sent of each file, kept in
//! a memfd per node, so that rereads do not go to the server and the host
//! can let the program read the bytes itself
//! ([`viewos_core::handle::Extent`]).
//!
//! A node's cache holds a *prefix* of the file: bytes `[0, valid)` of its
//! memfd are the file's. Reads fill it in order (read-ahead,
//! [`crate::file`]) and reads inside it are answered from it. Once the
//! prefix is the whole file, and while the file's attributes are fresh
//! (the server's attribute timeout has not run out), the open file
//! answers [`viewos_core::FileHandle::extent`] with it, and the program
//! `pread`s the memfd directly.
//!
//! Coherence follows the kernel's FUSE:
//! - an open without `FOPEN_KEEP_CACHE` drops the node's cache; an open
//!   with `FOPEN_DIRECT_IO` or `O_DIRECT` reads past it;
//! - attributes seen in any reply (GETATTR, SETATTR, LOOKUP, CREATE) with
//!   another size or modification time than the cached ones drop it (the
//!   kernel's `auto_inval_data`, always on here); once the attribute
//!   timeout has run out, the next read asks GETATTR first;
//! - writes through um-fuse write the same bytes into the cache (under a
//!   per-node lock, so the server and the cache see them in one order);
//!   truncates cut it; a node the server forgets loses its cache (its id
//!   may name another file later);
//! - every change bumps a generation: a read-ahead that raced with one is
//!   not kept.
//!
//! Memory is bounded: at most [`MAX_BYTES`] bytes and [`MAX_NODES`] memfds
//! in all; the least recently used caches of files nobody has open go
//! first.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use viewos_core::handle::Extent;
use viewos_core::Errno;

use crate::proto::Attr;

/// The most bytes all caches of a mount hold.
pub const MAX_BYTES: u64 = 1 << 30;

/// The most nodes of a mount with a cache (each holds a memfd).
pub const MAX_NODES: usize = 256;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a node's cache knows.
#[derive(Debug, Default)]
struct State {
    /// Bytes `[0, valid)` of the memfd are the file's.
    valid: u64,
    /// The file's size, as last seen or changed through um-fuse.
    size: Option<u64>,
    /// The file's modification time as last seen; `None` after a change
    /// through um-fuse (the next attributes seen are taken as they come).
    mtime: Option<(u64, u32)>,
    /// Until when the attributes are known good.
    fresh_until: Option<Instant>,
    /// Bumped by every change and invalidation.
    gen: u64,
}

/// One node's cache (see the module docs).
#[derive(Debug, Default)]
pub struct NodeCache {
    memfd: OnceLock<OwnedFd>,
    state: Mutex<State>,
    /// Held by writers for the whole write (server and cache).
    writing: Mutex<()>,
    /// Bytes counted against the mount's budget (the high-water mark of
    /// `valid` since the memory was last released).
    held: AtomicU64,
    /// When last used, for eviction (a tick of [`Caches`]).
    used: AtomicU64,
}

/// A read-ahead's ticket: where it starts and the generation it saw.
#[derive(Clone, Copy, Debug)]
pub struct Fill {
    /// The first byte it fetches (the valid prefix's end when it began).
    pub at: u64,
    gen: u64,
}

impl NodeCache {
    fn memfd(&self) -> Result<&OwnedFd, Errno> {
        if let Some(fd) = self.memfd.get() {
            return Ok(fd);
        }
        let fd =
            nix::sys::memfd::memfd_create(c"umfuse-cache", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
                .map_err(|e| Errno::new(e as i32))?;
        Ok(self.memfd.get_or_init(|| fd))
    }

    /// True while the attributes are within the server's timeout.
    pub fn fresh(&self) -> bool {
        let s = lock(&self.state);
        s.fresh_until.is_some_and(|t| Instant::now() < t)
    }

    /// The cached file as an extent of the memfd, once the whole file is
    /// cached and while the attributes are fresh; `None` otherwise. Never
    /// waits on the server.
    ///
    /// Only a whole file: the host cuts a transfer that crosses the
    /// extent's end there, and a program must not see a short read
    /// before the end of the file (`tar -d` takes it for an error).
    pub fn extent(&self) -> Option<Extent<'_>> {
        let s = lock(&self.state);
        if s.valid == 0
            || s.size != Some(s.valid)
            || !s.fresh_until.is_some_and(|t| Instant::now() < t)
        {
            return None;
        }
        Some(Extent {
            file: self.memfd.get()?.as_fd(),
            start: 0,
            len: s.valid,
            writable: false,
        })
    }

    /// Copies cached bytes at `offset` into `buf`, if `offset` is inside
    /// the valid prefix: how many (0 if it is not).
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> usize {
        let s = lock(&self.state);
        let Some(fd) = self.memfd.get() else {
            return 0;
        };
        if offset >= s.valid {
            return 0;
        }
        let want = buf.len().min((s.valid - offset) as usize);
        pread_all(fd, offset, &mut buf[..want])
    }

    /// Attributes seen in a reply, good for `valid_for`: a size or time
    /// unlike the cached ones drops the cache.
    pub fn observe(&self, attr: &Attr, valid_for: Duration) {
        let mut s = lock(&self.state);
        let mtime = (attr.mtime, attr.mtimensec);
        let changed = s.size.is_some_and(|z| z != attr.size) || s.mtime.is_some_and(|m| m != mtime);
        if changed {
            self.drop_bytes(&mut s);
        }
        s.size = Some(attr.size);
        s.mtime = Some(mtime);
        s.fresh_until = Instant::now().checked_add(valid_for);
    }

    /// Drops every cached byte.
    pub fn invalidate(&self) {
        let mut s = lock(&self.state);
        self.drop_bytes(&mut s);
        s.size = None;
        s.mtime = None;
        s.fresh_until = None;
    }

    /// Forgets the cached bytes. The memfd keeps its pages (a later fill
    /// writes over them): a program's read of it already under way must
    /// not come back short.
    fn drop_bytes(&self, s: &mut State) {
        s.gen += 1;
        s.valid = 0;
    }

    /// Frees the memory too: for a cache nobody reads any more (evicted,
    /// or its node forgotten).
    fn release(&self) {
        let mut s = lock(&self.state);
        self.drop_bytes(&mut s);
        s.size = None;
        s.mtime = None;
        s.fresh_until = None;
        if let Some(fd) = self.memfd.get() {
            let _ = nix::unistd::ftruncate(fd, 0);
        }
        self.held.store(0, Ordering::Relaxed);
    }

    /// Starts a read-ahead: the bytes it should fetch begin at the valid
    /// prefix's end.
    pub fn begin_fill(&self) -> Fill {
        let s = lock(&self.state);
        Fill {
            at: s.valid,
            gen: s.gen,
        }
    }

    /// Keeps what a read-ahead `fill` fetched (`pieces`, in order from
    /// `fill.at`), unless the cache changed meanwhile; false if not kept.
    pub fn commit(&self, fill: Fill, pieces: &[&[u8]]) -> bool {
        let mut s = lock(&self.state);
        if s.gen != fill.gen || s.valid != fill.at {
            return false;
        }
        let Ok(fd) = self.memfd() else {
            return false;
        };
        let mut at = fill.at;
        for p in pieces {
            if !pwrite_all(fd, at, p) {
                return false;
            }
            at += p.len() as u64;
        }
        s.valid = at;
        self.held.fetch_max(at, Ordering::Relaxed);
        true
    }

    /// Serializes writes of this node (server and cache in one order).
    pub fn writing(&self) -> MutexGuard<'_, ()> {
        lock(&self.writing)
    }

    /// `data` was written at `offset` through um-fuse (call under
    /// [`NodeCache::writing`]): the cached prefix gets the same bytes.
    pub fn written(&self, offset: u64, data: &[u8]) {
        let mut s = lock(&self.state);
        s.gen += 1;
        s.mtime = None;
        s.fresh_until = None;
        let end = offset.saturating_add(data.len() as u64);
        if let Some(z) = s.size.as_mut() {
            *z = (*z).max(end);
        }
        if s.valid == 0 || offset > s.valid {
            return;
        }
        match self.memfd.get() {
            Some(fd) if pwrite_all(fd, offset, data) => {
                s.valid = s.valid.max(end);
                self.held.fetch_max(s.valid, Ordering::Relaxed);
            }
            _ => self.drop_bytes(&mut s),
        }
    }

    /// Drops the cached bytes from `offset` on (the prefix model cannot
    /// keep what lies after a hole).
    pub fn drop_from(&self, offset: u64) {
        let mut s = lock(&self.state);
        if s.valid > offset {
            s.gen += 1;
            s.valid = offset;
        }
    }

    /// The file's size was set to `len` through um-fuse.
    pub fn resized(&self, len: u64) {
        let mut s = lock(&self.state);
        s.gen += 1;
        s.mtime = None;
        s.fresh_until = None;
        s.size = Some(len);
        s.valid = s.valid.min(len);
    }

    /// The file's size as last known.
    pub fn size(&self) -> Option<u64> {
        lock(&self.state).size
    }
}

fn pread_all(fd: &OwnedFd, mut offset: u64, mut buf: &mut [u8]) -> usize {
    let mut done = 0;
    while !buf.is_empty() {
        match nix::sys::uio::pread(fd, buf, offset as i64) {
            Ok(0) => break,
            Ok(n) => {
                done += n;
                offset += n as u64;
                buf = &mut buf[n..];
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
        }
    }
    done
}

fn pwrite_all(fd: &OwnedFd, mut offset: u64, mut data: &[u8]) -> bool {
    while !data.is_empty() {
        match nix::sys::uio::pwrite(fd, data, offset as i64) {
            Ok(0) => return false,
            Ok(n) => {
                offset += n as u64;
                data = &data[n..];
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return false,
        }
    }
    true
}

/// Every node cache of a mount.
#[derive(Debug, Default)]
pub struct Caches {
    nodes: Mutex<HashMap<u64, Arc<NodeCache>>>,
    tick: AtomicU64,
}

impl Caches {
    /// The cache of `nodeid`, made if there is none.
    pub fn of(&self, nodeid: u64) -> Arc<NodeCache> {
        let c = lock(&self.nodes).entry(nodeid).or_default().clone();
        c.used
            .store(self.tick.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
        c
    }

    /// The cache of `nodeid`, if it has one.
    pub fn get(&self, nodeid: u64) -> Option<Arc<NodeCache>> {
        lock(&self.nodes).get(&nodeid).cloned()
    }

    /// Attributes of `nodeid` seen in a reply (see [`NodeCache::observe`]).
    pub fn observe(&self, nodeid: u64, attr: &Attr, valid_for: Duration) {
        if let Some(c) = self.get(nodeid) {
            c.observe(attr, valid_for);
        }
    }

    /// `nodeid` was forgotten: its cache goes (an open file keeps its
    /// handle on it, emptied).
    pub fn forget(&self, nodeid: u64) {
        if let Some(c) = lock(&self.nodes).remove(&nodeid) {
            c.release();
        }
    }

    /// True if `more` bytes may be added to a cache, after evicting the
    /// least recently used caches of files not open (held only here) as
    /// far as needed.
    pub fn room_for(&self, more: u64) -> bool {
        let mut nodes = lock(&self.nodes);
        let total = |n: &HashMap<u64, Arc<NodeCache>>| -> u64 {
            n.values().map(|c| c.held.load(Ordering::Relaxed)).sum()
        };
        let mut used = total(&nodes);
        while used.saturating_add(more) > MAX_BYTES || nodes.len() > MAX_NODES {
            let victim = nodes
                .iter()
                .filter(|(_, c)| Arc::strong_count(c) == 1)
                .min_by_key(|(_, c)| c.used.load(Ordering::Relaxed))
                .map(|(&id, _)| id);
            let Some(id) = victim else {
                break;
            };
            if let Some(c) = nodes.remove(&id) {
                c.release();
            }
            used = total(&nodes);
        }
        used.saturating_add(more) <= MAX_BYTES
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn raw(c: &NodeCache) -> Option<i32> {
        c.memfd.get().map(|f| f.as_raw_fd())
    }

    fn attr(size: u64, mtime: u64) -> Attr {
        Attr {
            size,
            mtime,
            ..Attr::default()
        }
    }

    #[test]
    fn fills_are_kept_and_served_while_fresh() {
        let c = NodeCache::default();
        c.observe(&attr(10, 1), Duration::from_secs(60));
        let f = c.begin_fill();
        assert!(c.commit(f, &[b"hello", b"world"]));
        assert!(raw(&c).is_some());
        let e = c.extent().unwrap();
        assert_eq!((e.start, e.len, e.writable), (0, 10, false));
        // A prefix is no extent: a read across its end would come back
        // short.
        let part = NodeCache::default();
        part.observe(&attr(20, 1), Duration::from_secs(60));
        assert!(part.commit(part.begin_fill(), &[b"hello"]));
        assert!(part.extent().is_none());
        let mut b = [0u8; 4];
        assert_eq!(c.read(3, &mut b), 4);
        assert_eq!(&b, b"lowo");
        assert_eq!(c.read(10, &mut b), 0);
    }

    #[test]
    fn a_change_seen_or_made_is_never_served_stale() {
        let c = NodeCache::default();
        c.observe(&attr(5, 1), Duration::from_secs(60));
        assert!(c.commit(c.begin_fill(), &[b"abcde"]));
        // Our own write: the same bytes land in the cache.
        c.written(1, b"XY");
        let mut b = [0u8; 5];
        assert_eq!(c.read(0, &mut b), 5);
        assert_eq!(&b, b"aXYde");
        assert!(
            c.extent().is_none(),
            "a write ends the attributes' freshness"
        );
        // The next attributes are taken as they come (our write's time).
        c.observe(&attr(5, 2), Duration::from_secs(60));
        assert_eq!(c.extent().map(|e| e.len), Some(5));
        // Someone else's change: another time drops the bytes.
        c.observe(&attr(5, 3), Duration::from_secs(60));
        assert_eq!(c.read(0, &mut b), 0);
        // A read-ahead that raced with a change is not kept.
        let f = c.begin_fill();
        c.written(0, b"z");
        assert!(!c.commit(f, &[b"abcde"]));
    }

    #[test]
    fn truncates_cut_the_prefix() {
        let c = NodeCache::default();
        c.observe(&attr(6, 1), Duration::from_secs(60));
        assert!(c.commit(c.begin_fill(), &[b"abcdef"]));
        c.resized(2);
        let mut b = [0u8; 6];
        assert_eq!(c.read(0, &mut b), 2);
        assert_eq!(c.size(), Some(2));
    }

    #[test]
    fn eviction_spares_open_files() {
        let caches = Caches::default();
        let held = caches.of(7);
        held.observe(&attr(3, 1), Duration::from_secs(60));
        assert!(held.commit(held.begin_fill(), &[b"abc"]));
        assert!(!caches.room_for(MAX_BYTES));
        drop(held);
        assert!(caches.room_for(MAX_BYTES));
        assert!(caches.get(7).is_none());
    }
}
