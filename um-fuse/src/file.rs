//! [`FuseFile`]: a file or directory the server opened, served to the
//! program through the host ([`viewos_core::FileHandle`]).
//!
//! Reads go through the node's page cache ([`crate::cache`]): bytes in
//! its valid prefix come from there (or straight from its memfd, by the
//! program itself, through [`FileHandle::extent`]); a read at the
//! prefix's end fetches a read-ahead window with READs of the largest
//! size the server allows, all sent at once, and keeps it. Reads
//! elsewhere, and every read of an `O_DIRECT` or `FOPEN_DIRECT_IO` open,
//! go to the server. Writes are WRITEs of the largest size the server
//! allows, all sent at once, then copied into the cache. Listings are
//! READDIR, with the server's offsets as the cookies; the last close of
//! the program's fd sends FLUSH and RELEASE (RELEASEDIR for a directory).

use std::sync::Arc;

use viewos_core::handle::Extent;
use viewos_core::{DirEntry, Errno, FileHandle, FileStat};

use crate::cache::NodeCache;
use crate::client::Client;
use crate::connection::Ticket;
use crate::proto::{self, fattr, Opcode, SetattrIn};
use crate::wire::Dec;

/// How many bytes of listing to ask for at a time.
const READDIR_SIZE: u32 = 32 * 1024;

/// The largest read-ahead window: the window doubles with the cached
/// prefix, from what the read asks, up to this.
const READ_AHEAD_MAX: u64 = 4 << 20;

/// Caches smaller than this are not offered to the host as extents: the
/// program would hold one more fd for each small file it reads (the
/// handle serves them from the cache instead).
const EXTENT_MIN: u64 = 256 * 1024;

/// `FOPEN_DIRECT_IO`: the open bypasses the page cache.
const FOPEN_DIRECT_IO: u32 = 1 << 0;
/// `FOPEN_KEEP_CACHE`: the open keeps what the page cache holds.
const FOPEN_KEEP_CACHE: u32 = 1 << 1;

/// An open file of a FUSE server (see the module docs).
pub struct FuseFile {
    client: Arc<Client>,
    nodeid: u64,
    /// The server's handle; `None` for an `O_PATH` open, which the server
    /// never sees.
    fh: Option<u64>,
    dir: bool,
    flags: u32,
    /// The node's cache (regular files).
    cache: Option<Arc<NodeCache>>,
    /// Reads bypass the cache (`O_DIRECT`, `FOPEN_DIRECT_IO`).
    direct: bool,
}

impl FuseFile {
    /// The file `fh` of node `nodeid`, opened with `flags` (a directory
    /// when `dir`); `open_flags` are the `FOPEN_*` flags of the server's
    /// reply: without `FOPEN_KEEP_CACHE` the node's cache is dropped, as
    /// the kernel does.
    pub fn new(
        client: Arc<Client>,
        nodeid: u64,
        fh: u64,
        dir: bool,
        flags: u32,
        open_flags: u32,
    ) -> FuseFile {
        client.nodes.acquire(nodeid);
        let cache = (!dir).then(|| client.caches.of(nodeid));
        if let Some(c) = &cache {
            if open_flags & FOPEN_KEEP_CACHE == 0 {
                c.invalidate();
            } else if flags & libc::O_TRUNC as u32 != 0 {
                c.resized(0);
            }
        }
        let direct = open_flags & FOPEN_DIRECT_IO != 0 || flags & libc::O_DIRECT as u32 != 0;
        FuseFile {
            client,
            nodeid,
            fh: Some(fh),
            dir,
            flags,
            cache,
            direct,
        }
    }

    /// An `O_PATH` open of `nodeid`: only `fstat` works.
    pub fn path_only(client: Arc<Client>, nodeid: u64) -> FuseFile {
        client.nodes.acquire(nodeid);
        FuseFile {
            client,
            nodeid,
            fh: None,
            dir: false,
            flags: 0,
            cache: None,
            direct: true,
        }
    }

    fn fh(&self) -> Result<u64, Errno> {
        self.fh.ok_or(Errno::EBADF)
    }

    fn request(&self, op: Opcode, args: &[&[u8]]) -> Result<Vec<u8>, Errno> {
        self.client.conn.request(op, self.nodeid, args)
    }

    /// READs of `len` bytes from `offset`, all sent before the first
    /// reply is waited for: the pieces up to the first short one (the
    /// end of the file). An error is returned only if it hit the first.
    fn fetch(&self, fh: u64, offset: u64, len: usize) -> Result<Vec<Vec<u8>>, Errno> {
        let chunk = self.client.conn.max_read();
        let mut tickets: Vec<(usize, Result<Ticket, Errno>)> = Vec::new();
        let mut at = 0;
        while at < len {
            let want = (len - at).min(chunk);
            let head = proto::read_in(fh, offset + at as u64, want as u32, self.flags);
            let t = self.client.conn.submit(Opcode::Read, self.nodeid, &[&head]);
            let failed = t.is_err();
            tickets.push((want, t));
            if failed {
                break;
            }
            at += want;
        }
        let mut pieces = Vec::with_capacity(tickets.len());
        let mut ended = false;
        for (want, t) in tickets {
            let r = t.and_then(|t| self.client.conn.wait(t));
            if ended {
                continue;
            }
            match r {
                Ok(mut d) => {
                    d.truncate(want);
                    ended = d.len() < want;
                    pieces.push(d);
                }
                Err(e) if pieces.is_empty() => return Err(e),
                Err(_) => ended = true,
            }
        }
        Ok(pieces)
    }

    /// Reads from the server, past the cache.
    fn read_server(&self, fh: u64, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let pieces = self.fetch(fh, offset, buf.len())?;
        Ok(copy_pieces(&pieces, 0, buf))
    }

    /// A read through the cache (see the module docs).
    fn read_cached(
        &self,
        cache: &NodeCache,
        fh: u64,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, Errno> {
        if !cache.fresh() && self.client.getattr(self.nodeid, Some(fh)).is_err() {
            return self.read_server(fh, offset, buf);
        }
        let done = cache.read(offset, buf);
        if done == buf.len() {
            return Ok(done);
        }
        let at = offset + done as u64;
        let rest = &mut buf[done..];
        let fill = cache.begin_fill();
        let window = (rest.len() as u64).max(fill.at.clamp(128 * 1024, READ_AHEAD_MAX));
        if fill.at != at || !self.client.caches.room_for(window) {
            return match self.read_server(fh, at, rest) {
                Ok(n) => Ok(done + n),
                Err(_) if done > 0 => Ok(done),
                Err(e) => Err(e),
            };
        }
        let pieces = match self.fetch(fh, at, window as usize) {
            Ok(p) => p,
            Err(_) if done > 0 => return Ok(done),
            Err(e) => return Err(e),
        };
        let n = copy_pieces(&pieces, 0, rest);
        let refs: Vec<&[u8]> = pieces.iter().map(|p| &p[..]).collect();
        cache.commit(fill, &refs);
        Ok(done + n)
    }
}

/// Copies bytes `skip..` of the concatenated `pieces` into `buf`: how
/// many.
fn copy_pieces(pieces: &[Vec<u8>], mut skip: usize, buf: &mut [u8]) -> usize {
    let mut done = 0;
    for p in pieces {
        if done == buf.len() {
            break;
        }
        if skip >= p.len() {
            skip -= p.len();
            continue;
        }
        let src = &p[skip..];
        skip = 0;
        let n = src.len().min(buf.len() - done);
        buf[done..done + n].copy_from_slice(&src[..n]);
        done += n;
    }
    done
}

impl FileHandle for FuseFile {
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let fh = self.fh()?;
        if self.dir {
            return Err(Errno::EISDIR);
        }
        match &self.cache {
            Some(c) if !self.direct => self.read_cached(c, fh, offset, buf),
            _ => self.read_server(fh, offset, buf),
        }
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<usize, Errno> {
        let fh = self.fh()?;
        let _writing = self.cache.as_ref().map(|c| c.writing());
        let chunk = self.client.conn.max_write();
        let mut tickets = Vec::new();
        for (i, piece) in data.chunks(chunk).enumerate() {
            let at = offset + (i * chunk) as u64;
            let head = proto::write_in(fh, at, piece.len() as u32, self.flags);
            let t = self
                .client
                .conn
                .submit(Opcode::Write, self.nodeid, &[&head, piece]);
            let failed = t.is_err();
            tickets.push((piece.len(), t));
            if failed {
                break;
            }
        }
        let count = tickets.len();
        let mut done = 0;
        let mut first_err = None;
        let mut short_at = None;
        for (i, (len, t)) in tickets.into_iter().enumerate() {
            let r = t.and_then(|t| self.client.conn.wait(t));
            if short_at.is_some() {
                continue;
            }
            match r.and_then(|reply| Ok(Dec::new(&reply).u32()? as usize)) {
                Ok(n) => {
                    done += n.min(len);
                    if n < len {
                        short_at = Some(i);
                    }
                }
                Err(e) => {
                    first_err = Some(e);
                    short_at = Some(i);
                }
            }
        }
        if let Some(c) = &self.cache {
            match short_at {
                // Pieces after a short one may have reached the file: the
                // cache cannot know which bytes.
                Some(i) if i + 1 < count => c.invalidate(),
                _ => c.written(offset, &data[..done]),
            }
        }
        match first_err {
            Some(e) if done == 0 => Err(e),
            _ => Ok(done),
        }
    }

    fn stat(&self) -> Result<FileStat, Errno> {
        // As the kernel: the file handle goes with GETATTR only for a
        // regular file (a directory's handle is the server's listing
        // state; libfuse 2 servers such as fuse2fs refuse it).
        let fh = if self.dir { None } else { self.fh };
        let attr = self.client.getattr(self.nodeid, fh)?;
        Ok(self.client.stat(&attr))
    }

    fn read_dir(
        &self,
        cookie: u64,
        fill: &mut dyn FnMut(DirEntry<'_>) -> bool,
    ) -> Result<(), Errno> {
        let fh = self.fh()?;
        if !self.dir {
            return Err(Errno::ENOTDIR);
        }
        let mut at = cookie;
        loop {
            let data = self.request(
                Opcode::Readdir,
                &[&proto::read_in(fh, at, READDIR_SIZE, self.flags)],
            )?;
            if data.is_empty() {
                return Ok(());
            }
            for e in proto::dirents(&data) {
                let e = e?;
                let entry = DirEntry {
                    ino: e.ino,
                    kind: e.kind as u8,
                    name: e.name,
                    next: e.off,
                };
                if !fill(entry) {
                    return Ok(());
                }
                at = e.off;
            }
        }
    }

    fn truncate(&self, len: u64) -> Result<(), Errno> {
        let s = SetattrIn {
            valid: fattr::SIZE | fattr::FH,
            fh: self.fh()?,
            size: len,
            ..SetattrIn::default()
        };
        self.client.setattr(self.nodeid, &s)
    }

    fn extent(&self) -> Option<Extent<'_>> {
        if self.direct || self.fh.is_none() {
            return None;
        }
        self.cache
            .as_ref()?
            .extent()
            .filter(|e| e.len >= EXTENT_MIN)
    }

    fn drop_cached(&self, offset: u64, len: u64) {
        if let Some(c) = &self.cache {
            let _ = len;
            c.drop_from(offset);
        }
    }

    fn sync(&self, data_only: bool) -> Result<(), Errno> {
        let op = if self.dir {
            Opcode::Fsyncdir
        } else {
            Opcode::Fsync
        };
        match self.request(op, &[&proto::fsync_in(self.fh()?, data_only)]) {
            Err(e) if e == Errno::ENOSYS => Ok(()),
            r => r.map(|_| ()),
        }
    }
}

impl Drop for FuseFile {
    fn drop(&mut self) {
        if let Some(fh) = self.fh {
            if self.dir {
                let _ = self.request(Opcode::Releasedir, &[&proto::release_in(fh, self.flags)]);
            } else {
                let _ = self.request(Opcode::Flush, &[&proto::flush_in(fh)]);
                let _ = self.request(Opcode::Release, &[&proto::release_in(fh, self.flags)]);
            }
        }
        let forget = self.client.nodes.release(self.nodeid);
        self.client.forget(forget);
    }
}
