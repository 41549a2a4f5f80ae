//! Services for testing hosts and the API itself.
//!
//! [`Unreal`] is UMview's classic test service: it mounts itself on
//! `/unreal` and shows the whole real tree there, through the Service API
//! (every call is answered by the service, nothing is rewritten), so the
//! same program run on `X` and on `/unreal/X` must give the same results.

mod unreal;

pub use unreal::Unreal;
