//! Volume descriptors (ECMA-119 8): where the primary tree and a Joliet
//! tree start.

use std::io::{Read, Seek, SeekFrom};

use viewos_core::Errno;

use super::record::{Record, SECTOR};

/// The most descriptors read before giving up on a terminator.
const MAX_DESCRIPTORS: u64 = 64;

/// The roots an image offers.
#[derive(Clone, Debug)]
pub(crate) struct Descriptors {
    /// Root of the primary tree.
    pub primary: Record,
    /// Root of the Joliet tree, if any.
    pub joliet: Option<Record>,
}

/// Reads the descriptors from sector 16 on.
pub(crate) fn read<S: Read + Seek>(disk: &mut S) -> Result<Descriptors, Errno> {
    let mut primary = None;
    let mut joliet = None;
    let mut sector = [0u8; SECTOR as usize];
    for n in 16..16 + MAX_DESCRIPTORS {
        disk.seek(SeekFrom::Start(n * SECTOR))?;
        disk.read_exact(&mut sector).map_err(|_| Errno::EINVAL)?;
        if &sector[1..6] != b"CD001" {
            return Err(Errno::EINVAL);
        }
        match sector[0] {
            1 if primary.is_none() => {
                primary = Some(Record::parse(&sector[156..190], 0)?.0);
            }
            // Joliet: a supplementary descriptor with a UCS-2 escape.
            2 if sector[88] == b'%' && sector[89] == b'/' && b"@CE".contains(&sector[90]) => {
                joliet = Some(Record::parse(&sector[156..190], 0)?.0);
            }
            255 => break,
            _ => {}
        }
    }
    Ok(Descriptors {
        primary: primary.ok_or(Errno::EINVAL)?,
        joliet,
    })
}
