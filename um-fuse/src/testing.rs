//! A fake FUSE server for unit tests: answers `FUSE_INIT` and `DESTROY`
//! itself and every other request with a closure (which also sees the
//! requests that get no answer, such as FORGET; what it returns for them
//! is dropped).

use std::os::fd::{AsRawFd, OwnedFd};
use std::thread::JoinHandle;

use nix::sys::socket::{self, MsgFlags};

use crate::proto::{self, InHeader, OutHeader};
use crate::wire::{Dec, Enc};

/// What the closure answers: a reply body, an errno, or `None` to make
/// the server die (close its end) without answering.
pub type Answer = Option<Result<Vec<u8>, i32>>;

/// A server thread on the server end of a socket pair.
pub struct FakeServer(JoinHandle<()>);

impl FakeServer {
    /// A 7.31 server answering with `f(header, arguments)`.
    pub fn start(
        sock: OwnedFd,
        f: impl FnMut(&InHeader, &[u8]) -> Answer + Send + 'static,
    ) -> FakeServer {
        FakeServer::with_init(sock, proto::KERNEL_VERSION, proto::KERNEL_MINOR_VERSION, f)
    }

    /// A server that claims version `major.minor`.
    pub fn with_init(
        sock: OwnedFd,
        major: u32,
        minor: u32,
        mut f: impl FnMut(&InHeader, &[u8]) -> Answer + Send + 'static,
    ) -> FakeServer {
        FakeServer(std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = match socket::recv(sock.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let mut d = Dec::new(&buf[..n]);
                let Ok(h) = InHeader::decode(&mut d) else {
                    return;
                };
                let answer = match h.opcode {
                    26 => {
                        let mut e = Enc::new();
                        e.u32(major)
                            .u32(minor)
                            .u32(0)
                            .u32(proto::init_flags::BIG_WRITES);
                        e.u16(0).u16(0).u32(1 << 20).u32(1).u16(0).u16(0).zeros(32);
                        Some(Ok(e.0))
                    }
                    2 | 42 | 36 => {
                        let _ = f(&h, d.rest());
                        continue;
                    }
                    38 => {
                        reply(&sock, h.unique, Ok(Vec::new()));
                        return;
                    }
                    _ => f(&h, d.rest()),
                };
                match answer {
                    Some(a) => reply(&sock, h.unique, a),
                    None => return,
                }
            }
        }))
    }

    /// Waits for the server to end.
    pub fn join(self) {
        let _ = self.0.join();
    }
}

fn reply(sock: &OwnedFd, unique: u64, a: Result<Vec<u8>, i32>) {
    let (error, body) = match a {
        Ok(b) => (0, b),
        Err(e) => (-e, Vec::new()),
    };
    let mut e = Enc::new();
    OutHeader {
        len: (OutHeader::SIZE + body.len()) as u32,
        error,
        unique,
    }
    .encode(&mut e);
    e.bytes(&body);
    let _ = socket::send(sock.as_raw_fd(), &e.0, MsgFlags::MSG_NOSIGNAL);
}
