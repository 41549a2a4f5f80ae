//! mount(2) and umount2(2).
//!
//! Mounts of service types go to the view's services; with no service that
//! claims the type the call runs natively (and the kernel answers, usually
//! `EPERM` for an unprivileged user).

use super::{Call, Context, Verdict};

/// Implements mount(2): no loaded service claims a type yet, so it runs
/// natively.
pub fn mount(_ctx: &Context, _call: &Call<'_>) -> Verdict {
    Verdict::Native
}

/// Implements umount2(2): runs natively (see [`mount`]).
pub fn umount2(_ctx: &Context, _call: &Call<'_>) -> Verdict {
    Verdict::Native
}
