//! Services as shared libraries (`umview -p ./libmyservice.so`).
//!
//! A module library exports one symbol, [`MODULE_SYMBOL`], a
//! [`ModuleDecl`] that says which viewos-core and which compiler built it
//! and how to make the service. [`declare_module!`](crate::declare_module) writes it:
//!
//! ```ignore
//! viewos_core::declare_module!(MyService::create);
//! ```
//!
//! The host compares both versions with its own before it calls anything
//! in the library: services are Rust trait objects, which only the same
//! compiler and the same viewos-core lay out the same way. A library built
//! otherwise is refused with a message naming both versions.

// Checking a declaration reads C strings from a loaded library.
#![allow(unsafe_code)]

use std::ffi::{c_char, CStr};

use crate::{Errno, Service};

/// The name of the exported [`ModuleDecl`] (NUL-terminated, for dlsym).
pub const MODULE_SYMBOL: &[u8] = b"viewos_module\0";

/// First field of every [`ModuleDecl`]: tells a module declaration from
/// any other data with the same name.
pub const MODULE_MAGIC: u64 = 0x5649_4557_4f53_4d31; // "VIEWOSM1"

/// The viewos-core version and compiler this crate was built with, as
/// NUL-terminated strings.
pub const API_VERSION_C: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
/// See [`API_VERSION_C`].
pub const RUSTC_VERSION_C: &str = concat!(env!("VIEWOS_RUSTC_VERSION"), "\0");

/// What a module library exports. The first three fields are plain C data
/// so that any library can be checked before anything Rust is touched.
#[repr(C)]
pub struct ModuleDecl {
    /// [`MODULE_MAGIC`].
    pub magic: u64,
    /// viewos-core version, NUL-terminated.
    pub api_version: *const c_char,
    /// `rustc --version` of the build, NUL-terminated.
    pub rustc_version: *const c_char,
    /// Makes the service from its option string.
    pub create: fn(options: &str) -> Result<Box<dyn Service>, Errno>,
}

// SAFETY: the declaration is immutable static data (two pointers to
// static strings and a function pointer).
unsafe impl Sync for ModuleDecl {}

impl ModuleDecl {
    /// `Ok` if this declaration was built like the running host, else a
    /// message naming both builds.
    ///
    /// # Safety
    /// `self` must be a declaration whose `magic` is [`MODULE_MAGIC`] and
    /// whose string pointers are valid NUL-terminated strings (what
    /// [`declare_module!`](crate::declare_module) makes); the magic is checked first.
    pub unsafe fn check(&self) -> Result<(), String> {
        if self.magic != MODULE_MAGIC {
            return Err("not a View-OS module (bad magic number)".into());
        }
        // SAFETY: the caller guarantees valid strings once the magic is right.
        let (api, rustc) = unsafe {
            (
                CStr::from_ptr(self.api_version).to_string_lossy(),
                CStr::from_ptr(self.rustc_version).to_string_lossy(),
            )
        };
        let host_api = API_VERSION_C.trim_end_matches('\0');
        let host_rustc = RUSTC_VERSION_C.trim_end_matches('\0');
        if api != host_api || rustc != host_rustc {
            return Err(format!(
                "built for viewos-core {api} with {rustc}, but this host has viewos-core {host_api} built with {host_rustc}"
            ));
        }
        Ok(())
    }
}

/// Exports a module declaration for the service made by `$create`
/// (a `fn(&str) -> Result<Box<dyn Service>, Errno>`). Use it once, in a
/// library built with `crate-type = ["cdylib"]`.
#[macro_export]
macro_rules! declare_module {
    ($create:path) => {
        #[no_mangle]
        #[used]
        pub static viewos_module: $crate::module::ModuleDecl = $crate::module::ModuleDecl {
            magic: $crate::module::MODULE_MAGIC,
            api_version: $crate::module::API_VERSION_C.as_ptr() as *const ::std::ffi::c_char,
            rustc_version: $crate::module::RUSTC_VERSION_C.as_ptr() as *const ::std::ffi::c_char,
            create: $create,
        };
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn make(_: &str) -> Result<Box<dyn Service>, Errno> {
        Err(Errno::ENOSYS)
    }

    #[test]
    fn a_declaration_from_this_build_passes_and_others_do_not() {
        let mut d = ModuleDecl {
            magic: MODULE_MAGIC,
            api_version: API_VERSION_C.as_ptr() as *const c_char,
            rustc_version: RUSTC_VERSION_C.as_ptr() as *const c_char,
            create: make,
        };
        // SAFETY: valid static strings.
        assert!(unsafe { d.check() }.is_ok());
        d.api_version = c"0.0.1".as_ptr();
        // SAFETY: as above.
        let e = unsafe { d.check() }.unwrap_err();
        assert!(e.contains("viewos-core 0.0.1"), "{e}");
        assert!(e.contains(API_VERSION_C.trim_end_matches('\0')), "{e}");
        d.magic = 1;
        // SAFETY: as above.
        assert!(unsafe { d.check() }.is_err());
    }
}
