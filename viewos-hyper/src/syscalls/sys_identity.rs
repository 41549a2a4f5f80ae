//! User and group identity in a view with identities (`--root-id`, `-s`,
//! [`crate::identity`]): the get/set id calls, capget and capset answered
//! from the process's [`Ids`]. `sys_owners` has the file calls whose
//! answers depend on the view's identities.
//!
//! Without identities these calls do not stop (they are in the filter
//! only with [`Interest::IDENTITY`]); a handler reached anyway lets the
//! kernel answer.
//!
//! [`Interest::IDENTITY`]: viewos_core::Interest::IDENTITY

use viewos_core::Errno;

use super::{Call, Context, Verdict};
use crate::identity::{Identities, Ids};
use crate::memory;

/// The identity state; handlers run only in a view that has one.
pub(super) fn ids(ctx: &Context) -> Result<&Identities, Verdict> {
    ctx.identity.as_ref().ok_or(Verdict::Native)
}

pub(super) fn verdict(r: Result<i64, Errno>) -> Verdict {
    match r {
        Ok(v) => Verdict::Return(v),
        Err(e) => Verdict::Error(e),
    }
}

fn ids_of(ctx: &Context, call: &Call<'_>) -> Result<Ids, Verdict> {
    Ok(ids(ctx)?.ids_of(call.tid))
}

/// Implements getuid(2), geteuid(2), getgid(2) and getegid(2).
pub fn get_id(ctx: &Context, call: &Call<'_>) -> Verdict {
    let ids = match ids_of(ctx, call) {
        Ok(i) => i,
        Err(v) => return v,
    };
    let v = match call.entry.nr as i64 {
        libc::SYS_getuid => ids.uid[0],
        libc::SYS_geteuid => ids.uid[1],
        libc::SYS_getgid => ids.gid[0],
        _ => ids.gid[1],
    };
    Verdict::Return(v as i64)
}

/// Implements getresuid(2) and getresgid(2).
pub fn getres(ctx: &Context, call: &Call<'_>) -> Verdict {
    let ids = match ids_of(ctx, call) {
        Ok(i) => i,
        Err(v) => return v,
    };
    let three = if call.entry.nr == libc::SYS_getresuid as u64 {
        ids.uid
    } else {
        ids.gid
    };
    let a = call.entry.args;
    let r = (0..3).try_for_each(|i| memory::write_all(call.tid, a[i], &three[i].to_ne_bytes()));
    verdict(r.map(|_| 0))
}

/// Applies `f` to the caller's ids: a set*id call.
fn change(
    ctx: &Context,
    call: &Call<'_>,
    f: impl FnOnce(&mut Ids) -> Result<i64, Errno>,
) -> Verdict {
    match ids(ctx) {
        Ok(ids) => verdict(ids.update(call.tid, f)),
        Err(v) => v,
    }
}

/// Implements setuid(2), setgid(2), setreuid(2), setregid(2),
/// setresuid(2), setresgid(2), setfsuid(2) and setfsgid(2).
pub fn set_id(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args.map(|v| v as u32);
    let nr = call.entry.nr as i64;
    change(ctx, call, |ids| match nr {
        libc::SYS_setuid => ids.setuid(a[0]).map(|_| 0),
        libc::SYS_setgid => ids.setgid(a[0]).map(|_| 0),
        libc::SYS_setreuid => ids.setreuid(a[0], a[1]).map(|_| 0),
        libc::SYS_setregid => ids.setregid(a[0], a[1]).map(|_| 0),
        libc::SYS_setresuid => ids.setresuid(a[0], a[1], a[2]).map(|_| 0),
        libc::SYS_setresgid => ids.setresgid(a[0], a[1], a[2]).map(|_| 0),
        libc::SYS_setfsuid => Ok(ids.setfsuid(a[0]) as i64),
        _ => Ok(ids.setfsgid(a[0]) as i64),
    })
}

/// The most supplementary groups (`NGROUPS_MAX`).
const NGROUPS_MAX: u64 = 65536;

/// Implements getgroups(2).
pub fn getgroups(ctx: &Context, call: &Call<'_>) -> Verdict {
    let ids = match ids_of(ctx, call) {
        Ok(i) => i,
        Err(v) => return v,
    };
    let size = call.entry.args[0] as i32;
    if size < 0 {
        return Verdict::Error(Errno::EINVAL);
    }
    let n = ids.groups.len();
    if size == 0 {
        return Verdict::Return(n as i64);
    }
    if (size as usize) < n {
        return Verdict::Error(Errno::EINVAL);
    }
    let bytes: Vec<u8> = ids.groups.iter().flat_map(|g| g.to_ne_bytes()).collect();
    verdict(memory::write_all(call.tid, call.entry.args[1], &bytes).map(|_| n as i64))
}

/// Implements setgroups(2).
pub fn setgroups(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let n = a[0] as i32;
    if n < 0 || n as u64 > NGROUPS_MAX {
        return Verdict::Error(Errno::EINVAL);
    }
    let mut raw = vec![0u8; n as usize * 4];
    if let Err(e) = memory::read_exact(call.tid, a[1], &mut raw) {
        return Verdict::Error(e);
    }
    let groups = raw
        .chunks_exact(4)
        .map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    change(ctx, call, |ids| ids.setgroups(groups).map(|_| 0))
}

const CAP_V1: u32 = 0x1998_0330;
const CAP_V2: u32 = 0x2007_1026;
const CAP_V3: u32 = 0x2008_0522;

/// Reads a capget/capset header: the number of data structs of its
/// version, and the pid. An unknown version is answered with the one the
/// kernel prefers written back, and `EINVAL`.
fn cap_header(tid: i32, addr: u64) -> Result<(usize, i32), Errno> {
    let mut h = [0u8; 8];
    memory::read_exact(tid, addr, &mut h)?;
    let version = u32::from_ne_bytes([h[0], h[1], h[2], h[3]]);
    let pid = i32::from_ne_bytes([h[4], h[5], h[6], h[7]]);
    match version {
        CAP_V1 => Ok((1, pid)),
        CAP_V2 | CAP_V3 => Ok((2, pid)),
        _ => {
            memory::write_all(tid, addr, &CAP_V3.to_ne_bytes())?;
            Err(Errno::EINVAL)
        }
    }
}

/// Implements capget(2).
pub fn capget(ctx: &Context, call: &Call<'_>) -> Verdict {
    let Ok(identities) = ids(ctx) else {
        return Verdict::Native;
    };
    let a = call.entry.args;
    let (structs, pid) = match cap_header(call.tid, a[0]) {
        Ok(h) => h,
        Err(e) => return Verdict::Error(e),
    };
    if pid < 0 {
        return Verdict::Error(Errno::EINVAL);
    }
    if a[1] == 0 {
        return Verdict::Return(0);
    }
    let who = if pid == 0 { call.tid } else { pid };
    if std::fs::metadata(format!("/proc/{who}")).is_err() {
        return Verdict::Error(Errno::new(libc::ESRCH));
    }
    let ids = identities.ids_of(who);
    let mut out = Vec::with_capacity(24);
    for i in 0..structs {
        let part = |set: u64| ((set >> (32 * i)) as u32).to_ne_bytes();
        out.extend_from_slice(&part(ids.cap_effective));
        out.extend_from_slice(&part(ids.cap_permitted));
        out.extend_from_slice(&part(ids.cap_inheritable));
    }
    verdict(memory::write_all(call.tid, a[1], &out).map(|_| 0))
}

/// Implements capset(2): only the caller's own sets.
pub fn capset(ctx: &Context, call: &Call<'_>) -> Verdict {
    let a = call.entry.args;
    let (structs, pid) = match cap_header(call.tid, a[0]) {
        Ok(h) => h,
        Err(e) => return Verdict::Error(e),
    };
    if pid != 0 && pid != call.tid && pid != crate::resolve::tgid_of(call.tid) {
        return Verdict::Error(Errno::EPERM);
    }
    let mut raw = vec![0u8; structs * 12];
    if let Err(e) = memory::read_exact(call.tid, a[1], &mut raw) {
        return Verdict::Error(e);
    }
    let mut sets = [0u64; 3];
    for (i, chunk) in raw.chunks_exact(12).enumerate() {
        for (j, set) in sets.iter_mut().enumerate() {
            let w = u32::from_ne_bytes([
                chunk[j * 4],
                chunk[j * 4 + 1],
                chunk[j * 4 + 2],
                chunk[j * 4 + 3],
            ]);
            *set |= (w as u64) << (32 * i);
        }
    }
    change(ctx, call, |ids| {
        ids.capset(sets[0], sets[1], sets[2]).map(|_| 0)
    })
}

/// `CAP_SYS_ADMIN`.
pub(super) const CAP_SYS_ADMIN: u32 = 21;

/// True if thread `tid` has capability `cap` in the view: always in a
/// view without identities (the kernel decides), else by its ids.
pub(super) fn capable(ctx: &Context, tid: i32, cap: u32) -> bool {
    match &ctx.identity {
        None => true,
        Some(ids) => ids.ids_of(tid).cap_effective & (1 << cap) != 0,
    }
}
