//! Services for testing hosts and the API itself.
//!
//! [`Unreal`] is UMview's classic test service: it mounts itself on
//! `/unreal` and shows the whole real tree there, through the Service API
//! (every call is answered by the service, nothing is rewritten), so the
//! same program run on `X` and on `/unreal/X` must give the same results.

//! [`Faulty`] fails on purpose (errors and panics), to test that a broken
//! service does not take the host down.

mod faulty;
mod unreal;

pub use faulty::{Faulty, FaultyFs};
pub use unreal::Unreal;
