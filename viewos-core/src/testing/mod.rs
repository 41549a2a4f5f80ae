//! Services for testing hosts and the API itself.
//!
//! [`Unreal`] is UMview's classic test service: it mounts itself on
//! `/unreal` and shows the whole real tree there, through the Service API
//! (every call is answered by the service, nothing is rewritten), so the
//! same program run on `X` and on `/unreal/X` must give the same results.
//!
//! [`Faulty`] fails on purpose (errors and panics), to test that a broken
//! service does not take the host down.
//!
//! [`ServedFs`] serves every file of another file system through
//! [`FileHandle`](crate::FileHandle) calls (`mount -t unreal -o served`):
//! the reference for hosts' served fds.
//!
//! [`EchoDev`] claims a character device number and serves a loop device
//! that blocks when empty: the reference for devices by number and for
//! blocking served files.
//!
//! [`HostName`] hooks uname and sethostname by number: the reference for
//! syscall-number hooks.
//!
//! [`RealNet`] serves the host's own sockets to the view
//! ([`crate::real_socket`]): the reference for hosts' served sockets.

mod echodev;
mod faulty;
mod hostname;
mod realnet;
mod served;
mod unreal;

pub use echodev::EchoDev;
pub use faulty::{Faulty, FaultyFs};
pub use hostname::HostName;
pub use realnet::RealNet;
pub use served::ServedFs;
pub use unreal::Unreal;
