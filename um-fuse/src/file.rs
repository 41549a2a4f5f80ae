//! [`FuseFile`]: a file or directory the server opened, served to the
//! program through the host ([`viewos_core::FileHandle`]).
//!
//! Reads and writes are READ and WRITE with the server's file handle, cut
//! into pieces the connection allows; listings are READDIR, with the
//! server's offsets as the cookies; the last close of the program's fd
//! sends FLUSH and RELEASE (RELEASEDIR for a directory).

use std::sync::Arc;

use viewos_core::{DirEntry, Errno, FileHandle, FileStat};

use crate::client::Client;
use crate::proto::{self, fattr, Opcode, SetattrIn};
use crate::wire::Dec;

/// How many bytes of listing to ask for at a time.
const READDIR_SIZE: u32 = 32 * 1024;

/// An open file of a FUSE server (see the module docs).
pub struct FuseFile {
    client: Arc<Client>,
    nodeid: u64,
    /// The server's handle; `None` for an `O_PATH` open, which the server
    /// never sees.
    fh: Option<u64>,
    dir: bool,
    flags: u32,
}

impl FuseFile {
    /// The file `fh` of node `nodeid`, opened with `flags` (a directory
    /// when `dir`).
    pub fn new(client: Arc<Client>, nodeid: u64, fh: u64, dir: bool, flags: u32) -> FuseFile {
        client.nodes.acquire(nodeid);
        FuseFile {
            client,
            nodeid,
            fh: Some(fh),
            dir,
            flags,
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
        }
    }

    fn fh(&self) -> Result<u64, Errno> {
        self.fh.ok_or(Errno::EBADF)
    }

    fn request(&self, op: Opcode, args: &[&[u8]]) -> Result<Vec<u8>, Errno> {
        self.client.conn.request(op, self.nodeid, args)
    }
}

impl FileHandle for FuseFile {
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let fh = self.fh()?;
        if self.dir {
            return Err(Errno::EISDIR);
        }
        let chunk = self.client.conn.max_read();
        let mut done = 0;
        while done < buf.len() {
            let want = (buf.len() - done).min(chunk);
            let at = offset + done as u64;
            let data = self.request(
                Opcode::Read,
                &[&proto::read_in(fh, at, want as u32, self.flags)],
            );
            let data = match data {
                Ok(d) => d,
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            };
            let n = data.len().min(want);
            buf[done..done + n].copy_from_slice(&data[..n]);
            done += n;
            if n < want {
                break;
            }
        }
        Ok(done)
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<usize, Errno> {
        let fh = self.fh()?;
        let chunk = self.client.conn.max_write();
        let mut done = 0;
        while done < data.len() {
            let piece = &data[done..data.len().min(done + chunk)];
            let at = offset + done as u64;
            let head = proto::write_in(fh, at, piece.len() as u32, self.flags);
            let reply = match self.request(Opcode::Write, &[&head, piece]) {
                Ok(r) => r,
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            };
            let n = (Dec::new(&reply).u32()? as usize).min(piece.len());
            done += n;
            if n < piece.len() {
                break;
            }
        }
        Ok(done)
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
