//! `/proc/self/mounts` and `/proc/self/mountinfo` as a view shows them:
//! the real mounts followed by the view's, so that `findmnt`, `df` and
//! `mount` list virtual mounts too.
//!
//! When a program opens one of these files (also as `/proc/mounts`,
//! `/proc/PID/...`, `/proc/thread-self/...` or `/etc/mtab`), the host reads
//! the real file, appends the view's mounts in the same format, and gives
//! the program a memory file with that text.

use std::fmt::Write as _;
use std::io::{Seek, Write as _};
use std::os::fd::OwnedFd;
use std::path::Path;

use viewos_core::mounts::MountTable;

/// Which listing a path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listing {
    /// `mounts` (fstab format).
    Mounts,
    /// `mountinfo`.
    MountInfo,
}

/// The listing the absolute, normalized `path` names, if any; `tgid` is
/// the caller's process (for `self`).
pub fn listing_of(path: &Path) -> Option<Listing> {
    let s = path.to_str()?;
    if s == "/proc/mounts" || s == "/etc/mtab" {
        return Some(Listing::Mounts);
    }
    let rest = s.strip_prefix("/proc/")?;
    let mut parts: Vec<&str> = rest.split('/').collect();
    // /proc/PID/task/TID/FILE is the same file as /proc/PID/FILE.
    if parts.len() == 4 && parts[1] == "task" && parts[2].bytes().all(|b| b.is_ascii_digit()) {
        parts.drain(1..3);
    }
    if parts.len() != 2 {
        return None;
    }
    let who = parts[0];
    if !(who == "self" || who == "thread-self" || who.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    match parts[1] {
        "mounts" => Some(Listing::Mounts),
        "mountinfo" => Some(Listing::MountInfo),
        _ => None,
    }
}

/// Escapes a path as the kernel does in these files.
fn escape(p: &Path) -> String {
    let mut out = String::new();
    for c in p.to_string_lossy().chars() {
        match c {
            ' ' => out.push_str("\\040"),
            '\t' => out.push_str("\\011"),
            '\n' => out.push_str("\\012"),
            '\\' => out.push_str("\\134"),
            c => out.push(c),
        }
    }
    out
}

fn options(flags: u64, extra: &str) -> String {
    let mut o = if flags & libc::MS_RDONLY != 0 {
        "ro".to_string()
    } else {
        "rw".to_string()
    };
    // ro/rw come from the flags; the service's own options follow.
    for opt in extra
        .split(',')
        .filter(|o| !o.is_empty() && *o != "ro" && *o != "rw")
    {
        o.push(',');
        o.push_str(opt);
    }
    o
}

/// What a mount lists as its source (`none` when it has none).
fn source_of(r: &viewos_core::MountRequest) -> &str {
    if r.source.is_empty() {
        "none"
    } else {
        &r.source
    }
}

/// The real listing of `tid` followed by the view's mounts.
pub fn render(listing: Listing, tid: i32, mounts: &MountTable) -> std::io::Result<String> {
    let file = match listing {
        Listing::Mounts => "mounts",
        Listing::MountInfo => "mountinfo",
    };
    let mut text = std::fs::read_to_string(format!("/proc/{tid}/{file}"))?;
    if listing == Listing::Mounts {
        for m in mounts.iter() {
            let r = &m.request;
            let source = source_of(r);
            let _ = writeln!(
                text,
                "{} {} {} {} 0 0",
                escape(Path::new(source)),
                escape(&r.target),
                r.fstype,
                options(r.flags, &r.options)
            );
        }
        return Ok(text);
    }
    // mountinfo: "ID PARENT MAJ:MIN ROOT POINT OPTS - TYPE SOURCE SUPER".
    // View mounts get ids above the real ones; the parent is the mount the
    // target lies in (the longest real or earlier view mount point).
    let mut points: Vec<(u64, String)> = text
        .lines()
        .filter_map(|l| {
            let mut f = l.split(' ');
            let id = f.next()?.parse().ok()?;
            let point = f.nth(3)?.to_string();
            Some((id, point))
        })
        .collect();
    let first_id = points.iter().map(|p| p.0).max().unwrap_or(0) + 1000;
    for (i, m) in mounts.iter().enumerate() {
        let id = first_id + i as u64;
        let r = &m.request;
        let point = escape(&r.target);
        let parent = points
            .iter()
            .filter(|(_, p)| p == "/" || point == *p || point.starts_with(&format!("{p}/")))
            .max_by_key(|(_, p)| p.len())
            .map_or(1, |(id, _)| *id);
        let source = source_of(r);
        let _ = writeln!(
            text,
            "{id} {parent} 0:{} / {point} {} - {} {} {}",
            1000 + i,
            options(r.flags, ""),
            r.fstype,
            escape(Path::new(source)),
            options(r.flags, &r.options)
        );
        points.push((id, point));
    }
    Ok(text)
}

/// A memory file holding `text`, positioned at its start.
pub fn memory_file(text: &str) -> std::io::Result<OwnedFd> {
    let mut f = crate::memfd::create("viewos-mounts")?;
    f.write_all(text.as_bytes())?;
    f.rewind()?;
    Ok(OwnedFd::from(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            listing_of(Path::new("/proc/self/mounts")),
            Some(Listing::Mounts)
        );
        assert_eq!(
            listing_of(Path::new("/proc/12/mountinfo")),
            Some(Listing::MountInfo)
        );
        assert_eq!(
            listing_of(Path::new("/proc/12/task/13/mountinfo")),
            Some(Listing::MountInfo)
        );
        assert_eq!(listing_of(Path::new("/proc/mounts")), Some(Listing::Mounts));
        assert_eq!(listing_of(Path::new("/etc/mtab")), Some(Listing::Mounts));
        assert_eq!(listing_of(Path::new("/proc/self/status")), None);
        assert_eq!(listing_of(Path::new("/proc/x/mounts")), None);
    }

    #[test]
    fn escapes_like_the_kernel() {
        assert_eq!(escape(Path::new("/a b\\c")), "/a\\040b\\134c");
    }
}
