//! The binfmt_misc wire formats: the `register` string, the commands
//! written to `status` and to an entry, and an entry's status text.
//!
//! Parsing follows the kernel's rules byte for byte (see
//! `Documentation/admin-guide/binfmt-misc.rst`), so that a string the
//! kernel refuses with `EINVAL` is refused here with `EINVAL` too:
//!
//! `:name:type:offset:magic:mask:interpreter:flags`
//!
//! - the first byte is the delimiter (any byte, `:` by convention);
//! - `name`: not empty, not `.` or `..`, no `/`;
//! - `type`: `M` (magic) or `E` (extension);
//! - `offset` (M only; ignored for E): decimal, not negative, empty is 0;
//! - `magic`: M: bytes with `\xHH` escapes (an escaped delimiter is part
//!   of it), not empty; E: the extension without the dot, no `/`;
//! - `mask` (M only; ignored for E): empty, or as many bytes as the magic;
//!   `offset + len(magic)` fits in the kernel's 256-byte buffer;
//! - `interpreter`: not empty;
//! - `flags`: any of `P`, `O`, `C` (implies `O`), `F`, then an optional
//!   newline and nothing else.
//!
//! The whole string is 11 to 1920 bytes long.

use viewos_core::binfmt::BINPRM_BUF_SIZE;
use viewos_core::Errno;

/// Longest string `register` accepts (`MAX_REGISTER_LENGTH`).
pub const MAX_REGISTER_LENGTH: usize = 1920;

/// How an entry recognizes its files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Matcher {
    /// The file name's extension (after its last `.`).
    Extension(Vec<u8>),
    /// Bytes at `offset` of the file, compared under `mask`.
    Magic {
        /// Where the magic starts in the file.
        offset: usize,
        /// The magic, already masked (as the kernel stores it).
        magic: Vec<u8>,
        /// The mask, as long as the magic; `None`: all bits count.
        mask: Option<Vec<u8>>,
    },
}

/// binfmt_misc's flags of an entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    /// `P`: keep the program's `argv[0]`.
    pub preserve_argv0: bool,
    /// `O`: open the file and pass its fd (`C` implies it).
    pub open_binary: bool,
    /// `C`: credentials from the file, not the interpreter.
    pub credentials: bool,
    /// `F`: open the interpreter at registration.
    pub fix_binary: bool,
}

/// A parsed `register` string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    /// The entry's name (its file in the mount).
    pub name: Vec<u8>,
    /// What files it claims.
    pub matcher: Matcher,
    /// The interpreter, as written.
    pub interpreter: Vec<u8>,
    /// Its flags.
    pub flags: Flags,
}

/// A command written to `status` or to an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// An empty write: nothing happens.
    Nothing,
    /// `0`: disable.
    Disable,
    /// `1`: enable.
    Enable,
    /// `-1`: remove.
    Remove,
}

/// Parses what a write to an entry or to `status` says (`0`, `1`, `-1`,
/// each with an optional newline); anything else is `EINVAL`.
pub fn parse_command(data: &[u8]) -> Result<Command, Errno> {
    if data.len() > 3 {
        return Err(Errno::EINVAL);
    }
    if data.is_empty() {
        return Ok(Command::Nothing);
    }
    let data = data.strip_suffix(b"\n").unwrap_or(data);
    match data {
        b"0" => Ok(Command::Disable),
        b"1" => Ok(Command::Enable),
        b"-1" => Ok(Command::Remove),
        _ => Err(Errno::EINVAL),
    }
}

/// A cursor over the register string, padded past its end with the
/// delimiter as the kernel pads its copy, and stopping at a NUL as the
/// kernel's string functions do.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    del: u8,
}

impl Cursor<'_> {
    /// The byte at `i`: past the end, the delimiter (the padding).
    fn at(&self, i: usize) -> u8 {
        self.buf.get(i).copied().unwrap_or(self.del)
    }

    /// The field up to the next delimiter (`strchr`), moving past it; a
    /// NUL before it is `EINVAL`.
    fn field(&mut self) -> Result<&[u8], Errno> {
        let start = self.pos;
        let mut i = start;
        loop {
            match self.at(i) {
                c if c == self.del => break,
                0 => return Err(Errno::EINVAL),
                _ => i += 1,
            }
        }
        self.pos = i + 1;
        Ok(self.slice(start, i))
    }

    /// The field up to the next delimiter that is not inside a `\xHH`
    /// escape (the kernel's `scanarg`), moving past it.
    fn escaped_field(&mut self) -> Result<&[u8], Errno> {
        let start = self.pos;
        let mut i = start;
        loop {
            let c = self.at(i);
            i += 1;
            if c == self.del {
                break;
            }
            if c == 0 {
                return Err(Errno::EINVAL);
            }
            if c == b'\\' && self.at(i) == b'x' {
                i += 1;
                for _ in 0..2 {
                    if !self.at(i).is_ascii_hexdigit() {
                        return Err(Errno::EINVAL);
                    }
                    i += 1;
                }
            }
        }
        self.pos = i;
        Ok(self.slice(start, i - 1))
    }

    /// Bytes `start..end`, the padding included as delimiters.
    fn slice(&self, start: usize, end: usize) -> &[u8] {
        let end = end.min(self.buf.len());
        self.buf.get(start..end).unwrap_or_default()
    }
}

/// The kernel's `string_unescape_inplace(s, UNESCAPE_HEX)`: `\xH` and
/// `\xHH` become the byte, any other backslash pair stays as it is.
fn unescape_hex(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\' && i + 1 < s.len() {
            i += 1;
            if s[i] == b'x' {
                if let Some(hi) = s.get(i + 1).and_then(|&c| hex(c)) {
                    let mut num = hi;
                    i += 2;
                    if let Some(lo) = s.get(i).and_then(|&c| hex(c)) {
                        num = (num << 4) | lo;
                        i += 1;
                    }
                    out.push(num);
                    continue;
                }
            }
            out.push(b'\\');
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// The kernel's `kstrtoint(s, 10)` for the offset: an optional sign,
/// decimal digits, an optional final newline; must be `>= 0`.
fn parse_offset(s: &[u8]) -> Result<usize, Errno> {
    if s.is_empty() {
        return Ok(0);
    }
    let s = s.strip_suffix(b"\n").unwrap_or(s);
    let (neg, digits) = match s.first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(Errno::EINVAL);
    }
    let text = std::str::from_utf8(digits).map_err(|_| Errno::EINVAL)?;
    let value: i64 = text.parse().map_err(|_| Errno::EINVAL)?;
    if neg || value > i64::from(i32::MAX) {
        // Negative offsets, and ones kstrtoint finds out of range.
        return match (neg, value) {
            (true, 0) => Ok(0),
            _ => Err(Errno::EINVAL),
        };
    }
    Ok(value as usize)
}

/// Parses a string written to `register`.
pub fn parse_register(data: &[u8]) -> Result<Registration, Errno> {
    if data.len() < 11 || data.len() > MAX_REGISTER_LENGTH {
        return Err(Errno::EINVAL);
    }
    let del = data[0];
    let mut cur = Cursor {
        buf: data,
        pos: 1,
        del,
    };
    let name = cur.field()?.to_vec();
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
        return Err(Errno::EINVAL);
    }
    let kind = cur.at(cur.pos);
    if !matches!(kind, b'E' | b'M') || cur.at(cur.pos + 1) != del {
        return Err(Errno::EINVAL);
    }
    cur.pos += 2;
    let matcher = if kind == b'M' {
        let offset = parse_offset(cur.field()?)?;
        let magic = cur.escaped_field()?.to_vec();
        if magic.is_empty() {
            return Err(Errno::EINVAL);
        }
        let mask = cur.escaped_field()?.to_vec();
        let mut magic = unescape_hex(&magic);
        let mask = match mask.is_empty() {
            true => None,
            false => Some(unescape_hex(&mask)),
        };
        if mask.as_ref().is_some_and(|m| m.len() != magic.len()) {
            return Err(Errno::EINVAL);
        }
        if magic.len() > BINPRM_BUF_SIZE || BINPRM_BUF_SIZE - magic.len() < offset {
            return Err(Errno::EINVAL);
        }
        if let Some(mask) = &mask {
            for (b, m) in magic.iter_mut().zip(mask) {
                *b &= m;
            }
        }
        Matcher::Magic {
            offset,
            magic,
            mask,
        }
    } else {
        cur.field()?; // offset, ignored
        let ext = cur.field()?.to_vec();
        if ext.is_empty() || ext.contains(&b'/') {
            return Err(Errno::EINVAL);
        }
        cur.field()?; // mask, ignored
        Matcher::Extension(ext)
    };
    let interpreter = cur.field()?.to_vec();
    if interpreter.is_empty() {
        return Err(Errno::EINVAL);
    }
    let mut flags = Flags::default();
    loop {
        match cur.buf.get(cur.pos) {
            Some(b'P') => flags.preserve_argv0 = true,
            Some(b'O') => flags.open_binary = true,
            Some(b'C') => {
                flags.credentials = true;
                flags.open_binary = true;
            }
            Some(b'F') => flags.fix_binary = true,
            _ => break,
        }
        cur.pos += 1;
    }
    if cur.buf.get(cur.pos) == Some(&b'\n') {
        cur.pos += 1;
    }
    if cur.pos != data.len() {
        return Err(Errno::EINVAL);
    }
    Ok(Registration {
        name,
        matcher,
        interpreter,
        flags,
    })
}

impl Matcher {
    /// True if an exec of `filename` whose first bytes are `head` is
    /// this entry's (bytes past `head` count as zeros, as in the kernel's
    /// buffer).
    pub fn matches(&self, filename: &[u8], head: &[u8]) -> bool {
        match self {
            Matcher::Extension(ext) => match filename.iter().rposition(|&c| c == b'.') {
                Some(dot) => &filename[dot + 1..] == ext.as_slice(),
                None => false,
            },
            Matcher::Magic {
                offset,
                magic,
                mask,
            } => magic.iter().enumerate().all(|(j, &m)| {
                let byte = head.get(offset + j).copied().unwrap_or(0);
                let bits = mask.as_ref().map_or(0xff, |k| k[j]);
                (byte ^ m) & bits == 0
            }),
        }
    }
}

impl Registration {
    /// What reading the entry's file shows, as the kernel writes it
    /// (`enabled`/`disabled`, the interpreter, the flags, then the
    /// extension or the offset, magic and mask in lowercase hex).
    pub fn status_text(&self, enabled: bool) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(if enabled { b"enabled\n" } else { b"disabled\n" });
        out.extend_from_slice(b"interpreter ");
        out.extend_from_slice(&self.interpreter);
        out.extend_from_slice(b"\nflags: ");
        let f = self.flags;
        for (on, c) in [
            (f.preserve_argv0, b'P'),
            (f.open_binary, b'O'),
            (f.credentials, b'C'),
            (f.fix_binary, b'F'),
        ] {
            if on {
                out.push(c);
            }
        }
        out.push(b'\n');
        match &self.matcher {
            Matcher::Extension(ext) => {
                out.extend_from_slice(b"extension .");
                out.extend_from_slice(ext);
                out.push(b'\n');
            }
            Matcher::Magic {
                offset,
                magic,
                mask,
            } => {
                out.extend_from_slice(format!("offset {offset}\nmagic ").as_bytes());
                out.extend_from_slice(hex_of(magic).as_bytes());
                if let Some(mask) = mask {
                    out.extend_from_slice(b"\nmask ");
                    out.extend_from_slice(hex_of(mask).as_bytes());
                }
                out.push(b'\n');
            }
        }
        out
    }
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
