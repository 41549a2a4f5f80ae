//! File names without Rock Ridge: plain ISO 9660 identifiers and Joliet's
//! UCS-2 ones.

/// A plain identifier as Linux's `map=normal` shows it: the `;N` version
/// cut, a trailing `.` (no extension) dropped, lowercased. With `map=off`
/// the identifier is shown as stored.
pub(crate) fn plain(id: &[u8], map_normal: bool) -> Vec<u8> {
    if !map_normal {
        return id.to_vec();
    }
    let base = match id.iter().rposition(|&c| c == b';') {
        Some(i) => &id[..i],
        None => id,
    };
    let base = base.strip_suffix(b".").unwrap_or(base);
    base.to_ascii_lowercase()
}

/// A Joliet identifier (UCS-2 big-endian) as UTF-8, its `;N` version cut.
pub(crate) fn joliet(id: &[u8]) -> Vec<u8> {
    let units: Vec<u16> = id
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    let name = String::from_utf16_lossy(&units);
    let name = match name.rfind(';') {
        Some(i) if name[i + 1..].bytes().all(|b| b.is_ascii_digit()) => &name[..i],
        _ => &name[..],
    };
    name.as_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_joliet_names() {
        assert_eq!(plain(b"README.TXT;1", true), b"readme.txt");
        assert_eq!(plain(b"MAKEFILE.;1", true), b"makefile");
        assert_eq!(plain(b"DIR", true), b"dir");
        assert_eq!(plain(b"README.TXT;1", false), b"README.TXT;1");
        let id: Vec<u8> = "Grüße;1"
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        assert_eq!(joliet(&id), "Grüße".as_bytes());
        assert_eq!(joliet(&[0, b'a', 0]), b"a");
    }
}
