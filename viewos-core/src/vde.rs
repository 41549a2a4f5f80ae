//! A port of a VDE switch (Virtual Distributed Ethernet, vde2's
//! `vde_switch`), as vde2's `libvdeplug` connects one: a stream connection
//! to the switch's control socket carries one request, the address of a
//! datagram socket of ours; the switch answers the address of its data
//! socket for the new port, and Ethernet frames then go both ways as
//! datagrams between the two. The port lives as long as the control
//! connection.
//!
//! Shared by the services that plug into a switch: um-dev's tap device and
//! um-net's Ethernet links. It knows nothing of the processes of a view.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use std::io::{Read, Write};

/// The request's magic number.
const MAGIC: u32 = 0xfeed_face;
/// The protocol version vde2's switches speak.
const VERSION: u32 = 3;
/// `REQ_NEW_CONTROL`: a new port.
const NEW_CONTROL: u32 = 0;
/// `sizeof(struct sockaddr_un)`.
const SOCKADDR_UN: usize = 110;
/// The length of a connection's description.
const DESCRIPTION: usize = 128;
/// The largest frame a port carries (with a VLAN tag), and more.
pub const MAX_FRAME: usize = 9018;

/// Names of our data sockets: unique in this process.
static NEXT: AtomicU32 = AtomicU32::new(0);

/// The switch's control socket for a `vde=` option: `vde://PATH`,
/// `vde:PATH` or `PATH`, a switch's directory (its `ctl` inside) or the
/// control socket itself.
pub fn control_socket(url: &str) -> PathBuf {
    let path = url
        .strip_prefix("vde://")
        .or_else(|| url.strip_prefix("vde:"))
        .unwrap_or(url);
    let path = Path::new(path);
    if path.is_dir() {
        path.join("ctl")
    } else {
        path.to_path_buf()
    }
}

/// A `struct sockaddr_un` for `path` (`ENAMETOOLONG` past 107 bytes).
fn sockaddr_un(path: &Path) -> io::Result<[u8; SOCKADDR_UN]> {
    let bytes = path.as_os_str().as_bytes();
    if bytes.len() >= SOCKADDR_UN - 2 {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    let mut a = [0u8; SOCKADDR_UN];
    a[..2].copy_from_slice(&(libc::AF_UNIX as u16).to_ne_bytes());
    a[2..2 + bytes.len()].copy_from_slice(bytes);
    Ok(a)
}

/// The request for a new port whose frames go to our socket at `local`
/// (`struct request_v3`, packed, in the host's byte order).
pub fn request(local: &Path, description: &str) -> io::Result<Vec<u8>> {
    let mut r = Vec::with_capacity(12 + SOCKADDR_UN + DESCRIPTION);
    r.extend_from_slice(&MAGIC.to_ne_bytes());
    r.extend_from_slice(&VERSION.to_ne_bytes());
    r.extend_from_slice(&NEW_CONTROL.to_ne_bytes());
    r.extend_from_slice(&sockaddr_un(local)?);
    let mut d = [0u8; DESCRIPTION];
    let text = description.as_bytes();
    let n = text.len().min(DESCRIPTION - 1);
    d[..n].copy_from_slice(&text[..n]);
    r.extend_from_slice(&d);
    Ok(r)
}

/// The switch's data socket from its answer (a `struct sockaddr_un`).
pub fn parse_reply(reply: &[u8]) -> Option<PathBuf> {
    if reply.len() < 3 || u16::from_ne_bytes([reply[0], reply[1]]) != libc::AF_UNIX as u16 {
        return None;
    }
    let path = &reply[2..];
    let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
    (end > 0).then(|| PathBuf::from(std::ffi::OsStr::from_bytes(&path[..end])))
}

/// A connected port.
pub struct Port {
    /// Closing it ends the port.
    _control: UnixStream,
    data: UnixDatagram,
    /// The switch's data socket for this port.
    switch: PathBuf,
    /// Our data socket's name, removed at drop.
    local: PathBuf,
}

impl Port {
    /// Connects a new port of the switch whose control socket is `ctl`.
    pub fn connect(ctl: &Path, description: &str) -> io::Result<Port> {
        let local = std::env::temp_dir().join(format!(
            "viewos-vde-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&local);
        let data = UnixDatagram::bind(&local)?;
        let port = (|| {
            let mut control = UnixStream::connect(ctl)?;
            // A switch that does not answer is no switch.
            control.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
            control.write_all(&request(&local, description)?)?;
            let mut reply = [0u8; SOCKADDR_UN];
            control.read_exact(&mut reply)?;
            let switch =
                parse_reply(&reply).ok_or_else(|| io::Error::from_raw_os_error(libc::EPROTO))?;
            // Connected to the switch's socket, as libvdeplug does: the
            // kernel then queues the switch's frames for us up to the
            // buffer's size, not only `net.unix.max_dgram_qlen` of them.
            data.connect(&switch)?;
            Ok::<_, io::Error>((control, switch))
        })();
        match port {
            Ok((control, switch)) => Ok(Port {
                _control: control,
                data,
                switch,
                local,
            }),
            Err(e) => {
                let _ = std::fs::remove_file(&local);
                Err(e)
            }
        }
    }

    /// Sends one frame to the switch.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        self.data.send_to(frame, &self.switch).map(|_| ())
    }

    /// Bounds how long [`Port::send`] waits for room in the switch's
    /// queue (`None`: forever); past it the send fails with `EAGAIN`.
    pub fn set_send_timeout(&self, timeout: Option<std::time::Duration>) -> io::Result<()> {
        self.data.set_write_timeout(timeout)
    }

    /// A second handle on the data socket, for a thread that receives.
    pub fn receiver(&self) -> io::Result<UnixDatagram> {
        self.data.try_clone()
    }

    /// Ends the port: a receiver blocked on it returns.
    pub fn shut(&self) {
        let _ = self.data.shutdown(std::net::Shutdown::Both);
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        self.shut();
        let _ = std::fs::remove_file(&self.local);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_replies_have_vde2s_layout() {
        let r = request(Path::new("/tmp/x"), "umdev tap0").unwrap();
        assert_eq!(r.len(), 4 + 4 + 4 + 110 + 128);
        assert_eq!(&r[..4], &0xfeed_faceu32.to_ne_bytes());
        assert_eq!(&r[4..8], &3u32.to_ne_bytes());
        assert_eq!(&r[8..12], &0u32.to_ne_bytes());
        assert_eq!(&r[14..20], b"/tmp/x");
        assert_eq!(&r[122..132], b"umdev tap0");
        let long = "/".repeat(120);
        assert!(request(Path::new(&long), "").is_err());
        let mut reply = [0u8; 110];
        reply[..2].copy_from_slice(&(libc::AF_UNIX as u16).to_ne_bytes());
        reply[2..16].copy_from_slice(b"/tmp/sw/001.5\0");
        assert_eq!(parse_reply(&reply), Some(PathBuf::from("/tmp/sw/001.5")));
        assert_eq!(parse_reply(&[0u8; 110]), None);
    }

    #[test]
    fn urls_name_the_control_socket() {
        let dir = std::env::temp_dir();
        let d = dir.to_str().unwrap();
        assert_eq!(control_socket(&format!("vde://{d}")), dir.join("ctl"));
        assert_eq!(control_socket(d), dir.join("ctl"));
        assert_eq!(
            control_socket("/no/such/ctl"),
            PathBuf::from("/no/such/ctl")
        );
        assert_eq!(control_socket("vde:/x/ctl"), PathBuf::from("/x/ctl"));
    }

    #[test]
    fn a_missing_switch_is_an_error() {
        let e = Port::connect(Path::new("/nonexistent/vde/ctl"), "x").err();
        assert_eq!(e.and_then(|e| e.raw_os_error()), Some(libc::ENOENT));
    }
}
