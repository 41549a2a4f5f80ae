//! Fuzz target `fuse_reply`: um-fuse's client reading the replies of a
//! hostile FUSE server.
//!
//! Input: one selector byte, then the replies the server sends, each as a
//! little-endian `u16` length and that many bytes (a whole reply message,
//! `fuse_out_header` included). The selector picks the file operation the
//! view makes (`lstat`, `open`+`read`, `readdir`, `statfs`, xattrs, the
//! creations, ...); its top bit makes the server answer `FUSE_INIT` with
//! the first reply too, instead of a well-formed 7.31 answer. The server
//! writes the request's `unique` into each reply of 16 bytes or more,
//! except for a reply whose length has its top bit set, which goes out as
//! it is (an unknown request number or a notification); such a reply, and
//! one too short for a header, is followed by the next one for the same
//! request. When the replies run out the
//! server closes its end: every request still waiting gets `ENOTCONN`.
//! The operations run through the real `Connection`, `Client` and
//! `FuseFs`, over a real socket pair; a directory listing must show only
//! names a directory can have.

#![no_main]

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use nix::sys::socket::{self, MsgFlags};
use um_fuse::client::Client;
use um_fuse::connection::{self, Config, Connection};
use um_fuse::fuse_fs::{FuseFs, Policy};
use um_fuse::proto::{InHeader, OutHeader};
use um_fuse::wire::{Dec, Enc};
use viewos_core::{FileSystem, Opened, SetTime};

/// The replies of the input, in order: `(bytes, patch the unique)`.
fn replies(mut data: &[u8]) -> Vec<(Vec<u8>, bool)> {
    let mut out = Vec::new();
    while data.len() >= 2 {
        let len = u16::from_le_bytes([data[0], data[1]]);
        let n = usize::from(len & 0x7fff).min(data.len() - 2);
        out.push((data[2..2 + n].to_vec(), len & 0x8000 == 0));
        data = &data[2 + n..];
    }
    out
}

/// A well-formed 7.31 answer to `FUSE_INIT`.
fn good_init() -> Vec<u8> {
    let mut e = Enc::new();
    e.u32(7).u32(31).u32(0).u32(1 << 5); // major, minor, readahead, BIG_WRITES
    e.u16(0).u16(0).u32(1 << 17).u32(1).u16(0).u16(0).zeros(32);
    let body = e.into_bytes();
    let mut r = Enc::new();
    OutHeader {
        len: (OutHeader::SIZE + body.len()) as u32,
        error: 0,
        unique: 0,
    }
    .encode(&mut r);
    r.bytes(&body);
    r.into_bytes()
}

/// The server: answers each request with the next replies of `script`,
/// then closes its end.
fn serve(sock: OwnedFd, mut script: std::vec::IntoIter<(Vec<u8>, bool)>, fuzz_init: bool) {
    let mut buf = vec![0u8; 1 << 18];
    loop {
        let n = match socket::recv(sock.as_raw_fd(), &mut buf, MsgFlags::empty()) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let Ok(h) = InHeader::decode(&mut Dec::new(&buf[..n])) else {
            return;
        };
        // FORGET, BATCH_FORGET and INTERRUPT get no answer.
        if matches!(h.opcode, 2 | 42 | 36) {
            continue;
        }
        if h.opcode == 26 && !fuzz_init {
            let mut r = good_init();
            r[8..16].copy_from_slice(&h.unique.to_ne_bytes());
            let _ = socket::send(sock.as_raw_fd(), &r, MsgFlags::MSG_NOSIGNAL);
            continue;
        }
        loop {
            let Some((mut reply, patch)) = script.next() else {
                return; // the end of the input: the server goes away
            };
            // Only a reply with a header can answer the request; the client
            // drops a shorter message and goes on waiting.
            let answers = patch && reply.len() >= OutHeader::SIZE;
            if answers {
                reply[8..16].copy_from_slice(&h.unique.to_ne_bytes());
            }
            if socket::send(sock.as_raw_fd(), &reply, MsgFlags::MSG_NOSIGNAL).is_err() {
                return;
            }
            if answers {
                break;
            }
        }
    }
}

/// The view's calls on the mount.
fn operate(fs: &FuseFs, which: u8) {
    let p = Path::new;
    let mut buf = vec![0u8; 8192];
    match which % 16 {
        0 => drop(fs.lstat(p("/a/b"))),
        1 => {
            if let Ok(Opened::Served(f)) = fs.open(p("/f"), libc::O_RDONLY, 0) {
                let _ = f.read(0, &mut buf);
                let _ = f.read(4096, &mut buf);
                let _ = f.stat();
                let _ = f.extent();
            }
        }
        2 => {
            if let Ok(Opened::Served(f)) = fs.open(p("/d"), libc::O_RDONLY | libc::O_DIRECTORY, 0) {
                // What a program's getdents shows must be file names: the
                // kernel's FUSE refuses any other with EIO.
                let _ = f.read_dir(0, &mut |e| {
                    assert!(
                        !e.name.is_empty() && e.name.len() <= 1024,
                        "a bad name length"
                    );
                    assert!(!e.name.contains(&b'/'), "a name with a slash");
                    assert!(!e.name.contains(&0), "a name with a NUL");
                    true
                });
            }
        }
        3 => drop(fs.statfs(p("/"))),
        4 => drop(fs.getxattr(p("/f"), b"user.x")),
        5 => drop(fs.listxattr(p("/f"))),
        6 => drop(fs.readlink(p("/l"))),
        7 => drop(fs.access(p("/f"), libc::R_OK | libc::W_OK)),
        8 => {
            if let Ok(Opened::Served(f)) = fs.open(
                p("/new"),
                libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC,
                0o644,
            ) {
                let _ = f.write(0, b"hello");
                let _ = f.read(0, &mut buf);
                let _ = f.truncate(1);
                let _ = f.sync(true);
            }
        }
        9 => drop(fs.mkdir(p("/d/e"), 0o755)),
        10 => drop(fs.rename(p("/a"), p("/b"), 0)),
        11 => {
            let _ = fs.chmod(p("/f"), 0o600);
            let _ = fs.chown(p("/f"), Some(1), None);
            let _ = fs.utimens(p("/f"), SetTime::Now, SetTime::Omit);
            let _ = fs.truncate(p("/f"), 10);
        }
        12 => {
            let _ = fs.unlink(p("/f"));
            let _ = fs.rmdir(p("/d"));
        }
        13 => drop(fs.symlink(p("target"), p("/s"))),
        14 => drop(fs.link(p("/f"), p("/g"))),
        _ => {
            let _ = fs.mknod(p("/n"), libc::S_IFIFO | 0o644, 0);
            let _ = fs.setxattr(p("/f"), b"user.x", b"v", 0);
            let _ = fs.removexattr(p("/f"), b"user.x");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok((client, server)) = connection::pair() else {
        return;
    };
    let fuzz_init = selector & 0x80 != 0;
    let script = replies(rest).into_iter();
    let server = std::thread::spawn(move || serve(server, script, fuzz_init));
    if let Ok(conn) = Connection::new(client, Config::default()) {
        let policy = Policy {
            human: selector & 0x40 != 0,
            read_only: false,
            ids: None,
        };
        let fs = FuseFs::new(Arc::new(Client::new(conn, 0)), policy);
        operate(&fs, selector & 0x3f);
    }
    let _ = server.join();
});
