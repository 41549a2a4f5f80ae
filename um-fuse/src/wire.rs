//! Byte-level encoding of FUSE messages: a writer and a reader of the
//! native-endian integers every FUSE structure is made of.
//!
//! The FUSE protocol lays its structures out as C does, with no implicit
//! padding (every structure spells its padding out), in the byte order of
//! the host. [`Enc`] appends fields in order, [`Dec`] reads them back and
//! answers `EIO` when a message is shorter than its structure, so a broken
//! server can never make the client read past a reply.

use viewos_core::Errno;

/// Appends native-endian fields to a message.
#[derive(Default, Debug)]
pub struct Enc(pub Vec<u8>);

impl Enc {
    /// An empty message.
    pub fn new() -> Enc {
        Enc(Vec::new())
    }

    /// Appends a `u16`.
    pub fn u16(&mut self, v: u16) -> &mut Enc {
        self.0.extend_from_slice(&v.to_ne_bytes());
        self
    }

    /// Appends a `u32`.
    pub fn u32(&mut self, v: u32) -> &mut Enc {
        self.0.extend_from_slice(&v.to_ne_bytes());
        self
    }

    /// Appends a `u64`.
    pub fn u64(&mut self, v: u64) -> &mut Enc {
        self.0.extend_from_slice(&v.to_ne_bytes());
        self
    }

    /// Appends `n` zero bytes (padding, unused fields).
    pub fn zeros(&mut self, n: usize) -> &mut Enc {
        self.0.resize(self.0.len() + n, 0);
        self
    }

    /// Appends raw bytes.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Enc {
        self.0.extend_from_slice(b);
        self
    }

    /// Appends a name and its terminating NUL.
    pub fn cstr(&mut self, b: &[u8]) -> &mut Enc {
        self.0.extend_from_slice(b);
        self.0.push(0);
        self
    }

    /// The bytes so far.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

/// Reads native-endian fields from a message, front to back.
#[derive(Debug)]
pub struct Dec<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Dec<'a> {
    /// A reader at the start of `data`.
    pub fn new(data: &'a [u8]) -> Dec<'a> {
        Dec { data, at: 0 }
    }

    /// The next `n` bytes, or `EIO` if the message is shorter.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Errno> {
        let end = self.at.checked_add(n).ok_or(Errno::EIO)?;
        let s = self.data.get(self.at..end).ok_or(Errno::EIO)?;
        self.at = end;
        Ok(s)
    }

    /// The next `N` bytes as an array.
    fn array<const N: usize>(&mut self) -> Result<[u8; N], Errno> {
        self.take(N)?.try_into().map_err(|_| Errno::EIO)
    }

    /// Reads a `u16`.
    pub fn u16(&mut self) -> Result<u16, Errno> {
        Ok(u16::from_ne_bytes(self.array()?))
    }

    /// Reads a `u32`.
    pub fn u32(&mut self) -> Result<u32, Errno> {
        Ok(u32::from_ne_bytes(self.array()?))
    }

    /// Reads an `i32`.
    pub fn i32(&mut self) -> Result<i32, Errno> {
        Ok(i32::from_ne_bytes(self.array()?))
    }

    /// Reads a `u64`.
    pub fn u64(&mut self) -> Result<u64, Errno> {
        Ok(u64::from_ne_bytes(self.array()?))
    }

    /// Skips `n` bytes.
    pub fn skip(&mut self, n: usize) -> Result<(), Errno> {
        self.take(n).map(|_| ())
    }

    /// What is left.
    pub fn rest(&self) -> &'a [u8] {
        self.data.get(self.at..).unwrap_or_default()
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_short_messages() {
        let mut e = Enc::new();
        e.u16(7).u32(0xdead_beef).u64(1 << 40).zeros(2).cstr(b"ab");
        let b = e.into_bytes();
        assert_eq!(b.len(), 2 + 4 + 8 + 2 + 3);
        let mut d = Dec::new(&b);
        assert_eq!(d.u16(), Ok(7));
        assert_eq!(d.u32(), Ok(0xdead_beef));
        assert_eq!(d.u64(), Ok(1 << 40));
        d.skip(2).unwrap();
        assert_eq!(d.rest(), b"ab\0");
        assert_eq!(d.u64(), Err(Errno::EIO));
        assert_eq!(d.remaining(), 3);
    }
}
