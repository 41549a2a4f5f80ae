//! System use entries (SUSP, IEEE P1281) and the Rock Ridge ones (IEEE
//! P1282) this module reads: `NM`, `PX`, `SL`, `TF`, `CL`, `RE`, `CE`.

use std::time::SystemTime;

use viewos_core::Errno;

use super::record::{long_date, short_date};

/// The most continuation areas followed for one record.
const MAX_CONTINUATIONS: usize = 16;
/// The most bytes of continuation areas read for one record.
const MAX_CONTINUATION_BYTES: usize = 64 << 10;

/// Where a continuation area (`CE`) is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Continuation {
    /// Sector.
    pub block: u32,
    /// Offset in it.
    pub offset: u32,
    /// Length.
    pub len: u32,
}

/// What the Rock Ridge entries of one record say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RockRidge {
    /// An `SP` entry was seen (only meaningful for the root's `.`).
    pub sp_skip: Option<u8>,
    /// The name (`NM`), joined over continued entries.
    pub name: Option<Vec<u8>>,
    /// mode, nlink, uid, gid (`PX`).
    pub px: Option<(u32, u32, u32, u32)>,
    /// The symlink target (`SL`).
    pub symlink: Option<Vec<u8>>,
    /// Modification, access and attribute-change times (`TF`).
    pub mtime: Option<SystemTime>,
    /// Access time.
    pub atime: Option<SystemTime>,
    /// Attribute change time.
    pub ctime: Option<SystemTime>,
    /// The directory moved here (`CL`): the sector of its `.`.
    pub child_link: Option<u32>,
    /// A relocated directory, shown where its `CL` is (`RE`).
    pub relocated: bool,
    /// The last `SL` component goes on in the next one.
    component_continues: bool,
}

fn le32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

impl RockRidge {
    /// Reads the entries of one area; returns a continuation if one is
    /// named (`CE`).
    fn read_area(&mut self, area: &[u8]) -> Option<Continuation> {
        let mut next = None;
        let mut at = 0;
        while at + 4 <= area.len() {
            let len = usize::from(area[at + 2]);
            if len < 4 || at + len > area.len() {
                break;
            }
            let e = &area[at..at + len];
            match &e[..2] {
                b"SP" if len >= 7 && e[4] == 0xBE && e[5] == 0xEF => self.sp_skip = Some(e[6]),
                b"CE" if len >= 28 => {
                    next = Some(Continuation {
                        block: le32(e, 4),
                        offset: le32(e, 12),
                        len: le32(e, 20),
                    })
                }
                b"NM" if len >= 5 => {
                    let name = self.name.get_or_insert_with(Vec::new);
                    match e[4] {
                        f if f & 2 != 0 => *name = b".".to_vec(),
                        f if f & 4 != 0 => *name = b"..".to_vec(),
                        _ => name.extend_from_slice(&e[5..]),
                    }
                }
                b"PX" if len >= 36 => {
                    self.px = Some((le32(e, 4), le32(e, 12), le32(e, 20), le32(e, 28)))
                }
                b"SL" if len >= 5 => self.read_sl(&e[5..]),
                b"TF" if len >= 5 => self.read_tf(e[4], &e[5..]),
                b"CL" if len >= 12 => self.child_link = Some(le32(e, 4)),
                b"RE" => self.relocated = true,
                b"ST" => break,
                _ => {}
            }
            at += len;
        }
        next
    }

    /// One `SL` entry's components.
    fn read_sl(&mut self, mut comps: &[u8]) {
        let target = self.symlink.get_or_insert_with(Vec::new);
        while comps.len() >= 2 {
            let (flags, len) = (comps[0], usize::from(comps[1]));
            let Some(content) = comps.get(2..2 + len) else {
                break;
            };
            let joined = self.component_continues;
            if !joined && !target.is_empty() && target != b"/" {
                target.push(b'/');
            }
            match flags {
                f if f & 2 != 0 => target.push(b'.'),
                f if f & 4 != 0 => target.extend_from_slice(b".."),
                f if f & 8 != 0 => {
                    target.clear();
                    target.push(b'/');
                }
                _ => target.extend_from_slice(content),
            }
            self.component_continues = flags & 1 != 0;
            comps = &comps[2 + len..];
        }
    }

    /// One `TF` entry: times in the order of their flag bits.
    fn read_tf(&mut self, flags: u8, mut times: &[u8]) {
        let size = if flags & 0x80 != 0 { 17 } else { 7 };
        for bit in 0..7 {
            if flags & (1 << bit) == 0 {
                continue;
            }
            let Some(raw) = times.get(..size) else {
                return;
            };
            let t = if size == 17 {
                long_date(raw)
            } else {
                short_date(raw)
            };
            match bit {
                1 => self.mtime = Some(t),
                2 => self.atime = Some(t),
                3 => self.ctime = Some(t),
                _ => {}
            }
            times = &times[size..];
        }
    }
}

/// Reads the Rock Ridge entries of a record's system use area (after
/// `skip` bytes) and of the continuation areas it names, which `fetch`
/// reads (sector, offset, length), at most [`MAX_CONTINUATIONS`] of
/// them and [`MAX_CONTINUATION_BYTES`] in all.
pub(crate) fn read(
    system_use: &[u8],
    skip: usize,
    mut fetch: impl FnMut(Continuation) -> Result<Vec<u8>, Errno>,
) -> Result<RockRidge, Errno> {
    let mut rr = RockRidge::default();
    let mut next = rr.read_area(system_use.get(skip..).unwrap_or(&[]));
    let mut total = 0usize;
    for _ in 0..MAX_CONTINUATIONS {
        let Some(ce) = next else {
            return Ok(rr);
        };
        total += ce.len as usize;
        if total > MAX_CONTINUATION_BYTES {
            return Err(Errno::EIO);
        }
        let area = fetch(ce)?;
        next = rr.read_area(&area);
    }
    match next {
        Some(_) => Err(Errno::EIO),
        None => Ok(rr),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(sig: &[u8; 2], body: &[u8]) -> Vec<u8> {
        let mut e = sig.to_vec();
        e.push(4 + body.len() as u8);
        e.push(1);
        e.extend_from_slice(body);
        e
    }

    #[test]
    fn names_links_and_continuations() {
        let mut area = entry(b"NM", b"\x01long ");
        let mut sl = vec![0u8];
        sl.extend_from_slice(&[8, 0, 0, 3]);
        sl.extend_from_slice(b"usr");
        sl.extend_from_slice(&[1, 2]);
        sl.extend_from_slice(b"li");
        area.extend(entry(b"SL", &sl));
        area.extend(entry(b"SL", &[0, 0, 1, b'b', 4, 0]));
        let mut ce = vec![0u8; 24];
        ce[0..4].copy_from_slice(&30u32.to_le_bytes());
        ce[16..20].copy_from_slice(&10u32.to_le_bytes());
        area.extend(entry(b"CE", &ce));
        let rr = read(&area, 0, |c| {
            assert_eq!((c.block, c.len), (30, 10));
            Ok(entry(b"NM", b"\x00name"))
        })
        .unwrap();
        assert_eq!(rr.name.as_deref(), Some(&b"long name"[..]));
        assert_eq!(rr.symlink.as_deref(), Some(&b"/usr/lib/.."[..]));
    }

    #[test]
    fn endless_continuations_are_eio() {
        let mut ce = vec![0u8; 24];
        ce[16..20].copy_from_slice(&28u32.to_le_bytes());
        let area = entry(b"CE", &ce);
        let again = area.clone();
        assert_eq!(read(&area, 0, |_| Ok(again.clone())), Err(Errno::EIO));
        assert!(read(&[b'N', b'M', 200, 1], 0, |_| Ok(vec![])).is_ok());
    }
}
