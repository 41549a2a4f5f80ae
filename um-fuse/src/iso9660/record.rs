//! Directory records (ECMA-119 9.1) and the dates they carry.

use std::time::SystemTime;

use viewos_core::Errno;

use crate::fat::time::{days_from_civil, system_time};

/// Bytes per logical sector (every image this module reads uses 2048).
pub(crate) const SECTOR: u64 = 2048;

/// Record flag: a directory.
pub(crate) const FLAG_DIR: u8 = 0x02;
/// Record flag: the file goes on in the next record (multi-extent).
pub(crate) const FLAG_MORE: u8 = 0x80;

/// One directory record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    /// Byte offset of the record in the image (0 for a descriptor's root).
    pub offset: u64,
    /// First sector of the data.
    pub extent: u32,
    /// Bytes of data.
    pub size: u32,
    /// File flags.
    pub flags: u8,
    /// The identifier as stored.
    pub name: Vec<u8>,
    /// The system use area (SUSP entries).
    pub system_use: Vec<u8>,
    /// Recording time.
    pub time: SystemTime,
}

impl Record {
    /// Parses the record at the start of `buf`, which sits at byte
    /// `offset` of the image; returns it and its length.
    pub(crate) fn parse(buf: &[u8], offset: u64) -> Result<(Record, usize), Errno> {
        let len = usize::from(*buf.first().ok_or(Errno::EIO)?);
        if len < 34 || len > buf.len() {
            return Err(Errno::EIO);
        }
        let b = &buf[..len];
        let le32 = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let name_len = usize::from(b[32]);
        let name_end = 33 + name_len;
        if name_end > len {
            return Err(Errno::EIO);
        }
        let su_start = (name_end + (name_len + 1) % 2).min(len);
        Ok((
            Record {
                offset,
                extent: le32(2),
                size: le32(10),
                flags: b[25],
                name: b[33..name_end].to_vec(),
                system_use: b[su_start..].to_vec(),
                time: short_date(&b[18..25]),
            },
            len,
        ))
    }

    /// A directory?
    pub(crate) fn is_dir(&self) -> bool {
        self.flags & FLAG_DIR != 0
    }

    /// `.` or `..` (identifiers 0 and 1)?
    pub(crate) fn is_dot(&self) -> bool {
        self.name == [0] || self.name == [1]
    }
}

/// Seconds of a broken-down time with a GMT offset in 15-minute units.
fn to_time(y: i64, mo: u32, d: u32, h: i64, mi: i64, s: i64, gmt: i8) -> SystemTime {
    let secs = days_from_civil(y, mo, d) * 86_400 + h.min(23) * 3600 + mi.min(59) * 60 + s.min(59)
        - i64::from(gmt) * 900;
    system_time(secs, 0)
}

/// A 7-byte date (ECMA-119 9.1.5, also Rock Ridge `TF` short form).
pub(crate) fn short_date(b: &[u8]) -> SystemTime {
    match b {
        [y, mo, d, h, mi, s, gmt, ..] => to_time(
            1900 + i64::from(*y),
            u32::from(*mo),
            u32::from(*d),
            i64::from(*h),
            i64::from(*mi),
            i64::from(*s),
            *gmt as i8,
        ),
        _ => SystemTime::UNIX_EPOCH,
    }
}

/// A 17-byte date (ECMA-119 8.4.26.1, `TF` long form): digits and an
/// offset.
pub(crate) fn long_date(b: &[u8]) -> SystemTime {
    let num = |r: std::ops::Range<usize>| -> i64 {
        b.get(r)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| d.parse().ok())
            .unwrap_or(0)
    };
    let gmt = b.get(16).map_or(0, |&g| g as i8);
    to_time(
        num(0..4),
        num(4..6) as u32,
        num(6..8) as u32,
        num(8..10),
        num(10..12),
        num(12..14),
        gmt,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn records_and_dates_parse_and_reject() {
        let mut r = vec![0u8; 40];
        r[0] = 40;
        r[2..6].copy_from_slice(&20u32.to_le_bytes());
        r[10..14].copy_from_slice(&4096u32.to_le_bytes());
        r[18..25].copy_from_slice(&[100, 1, 2, 3, 4, 5, 0]);
        r[25] = FLAG_DIR;
        r[32] = 5;
        r[33..38].copy_from_slice(b"AB;1X");
        let (rec, len) = Record::parse(&r, 7).unwrap();
        assert_eq!((len, rec.extent, rec.size, rec.offset), (40, 20, 4096, 7));
        assert!(rec.is_dir() && !rec.is_dot());
        assert_eq!(rec.name, b"AB;1X");
        assert_eq!(rec.system_use.len(), 2);
        assert_eq!(
            rec.time,
            UNIX_EPOCH + Duration::from_secs(946_782_245) // 2000-01-02 03:04:05
        );
        assert_eq!(long_date(b"2000010203040500\0"), rec.time);
        r[0] = 30;
        assert!(Record::parse(&r, 0).is_err());
        r[0] = 40;
        r[32] = 200;
        assert!(Record::parse(&r, 0).is_err());
        assert!(Record::parse(&[], 0).is_err());
    }
}
