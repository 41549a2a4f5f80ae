//! # um-fuse: user-level file systems in a view
//!
//! (docs are being written)

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod connection;
pub mod proto;
pub mod wire;

#[cfg(test)]
mod testing;
