//! Fuzz target `mount_options`: the parsers of `mount -o` strings and of
//! the module option strings (`umview -p MODULE,SPECS`), all fed by a
//! program of the view.
//!
//! Input: one selector byte, then the string (invalid UTF-8 is replaced,
//! as the host does with a C string it cannot take as text). The selector
//! picks the parser: viewos-core's preload specs and `mstack -f`
//! families; viewfs' modes, `except=`, `mode=`, `uid=`; um-fuse's FUSE
//! options, the `fuse` mount options of FUSE programs, `umfusefat`'s and
//! `umfuseiso9660`'s; um-dev's `size=`, `mbr`, ...; um-net's `vd0=URL`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let s = text.as_ref();
    let flags = if selector & 0x80 != 0 {
        libc::MS_RDONLY
    } else {
        0
    };
    match selector % 14 {
        0 => drop(viewos_core::fs::parse_preload_specs(s, "umfuse")),
        1 => drop(viewos_core::stack::Families::parse(s)),
        2 => drop(viewfs::options::parse(s)),
        3 => drop(viewfs::options::parse_preload(s)),
        4 => drop(um_fuse::options::parse(s, flags, &["fsname", "debug"])),
        5 => drop(um_fuse::options::parse_preload(s)),
        6 => drop(um_fuse::dev_fuse::parse_kernel_options(s)),
        7 => drop(um_fuse::fuzzing::fat_options(s)),
        8 => drop(um_fuse::fuzzing::iso9660_options(s)),
        9 => drop(um_dev::options::parse(s, flags, &["size", "mbr", "vde"])),
        10 => drop(um_dev::options::parse_size(s)),
        11 => drop(um_dev::options::parse_preload(s)),
        12 => drop(um_net::fuzzing::mount_options(s)),
        _ => drop(um_binfmt::UmBinfmt::create(s)),
    }
});
