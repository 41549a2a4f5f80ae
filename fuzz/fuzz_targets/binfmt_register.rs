//! Fuzz target `binfmt_register`: um-binfmt's parsing of what a program
//! writes to `register` (`:name:type:offset:magic:mask:interpreter:flags`)
//! and to `status` or an entry (`0`, `1`, `-1`).
//!
//! The whole input is the written string. A string that parses must give
//! an entry the kernel would accept (a name that is a file name, a magic
//! that fits the 256-byte buffer, a mask as long as the magic); the entry
//! is then matched against the input itself as a file's first bytes and
//! name, and its status text made.

#![no_main]

use libfuzzer_sys::fuzz_target;
use um_binfmt::format::{parse_command, parse_register, Matcher};
use viewos_core::binfmt::BINPRM_BUF_SIZE;

fuzz_target!(|data: &[u8]| {
    let _ = parse_command(data);
    let Ok(reg) = parse_register(data) else {
        return;
    };
    assert!(!reg.name.is_empty() && !reg.name.contains(&b'/'));
    assert!(reg.name != b"." && reg.name != b"..");
    assert!(!reg.interpreter.is_empty());
    if let Matcher::Magic {
        offset,
        magic,
        mask,
    } = &reg.matcher
    {
        assert!(!magic.is_empty());
        assert!(offset + magic.len() <= BINPRM_BUF_SIZE);
        if let Some(m) = mask {
            assert_eq!(m.len(), magic.len());
        }
    }
    let _ = reg.matcher.matches(data, data);
    let _ = reg.matcher.matches(b"a.out", &[]);
    let text = reg.status_text(true);
    assert!(text.starts_with(b"enabled\n"));
});
