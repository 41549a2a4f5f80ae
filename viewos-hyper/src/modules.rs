//! Finding a module by name: a built-in one from the host's registry, or a
//! shared library (`-p ./libx.so`, `um_add_service /path/libx.so`).
//!
//! A spec with a `/`, or ending in `.so`, is a library: it is opened with
//! dlopen (a bare `libx.so` is searched on `LD_LIBRARY_PATH` and the
//! system's library path, as the seed documents say), its
//! [`ModuleDecl`] is checked against this
//! host's viewos-core and compiler, and only then is its service made. A
//! loaded library stays loaded until the host exits (its code may still be
//! running in services it made).

use viewos_core::module::{ModuleDecl, MODULE_SYMBOL};
use viewos_core::{Errno, ModuleRegistry, Service};

/// Why a module could not be loaded.
#[derive(Debug)]
pub enum LoadError {
    /// No built-in module has this name.
    Unknown,
    /// The library could not be opened, or declares no module.
    Library(String),
    /// The library was built for another viewos-core or compiler.
    Incompatible(String),
    /// The module refused its options or failed to start.
    Failed(Errno),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Unknown => write!(f, "no such module"),
            LoadError::Library(why) | LoadError::Incompatible(why) => f.write_str(why),
            LoadError::Failed(e) => write!(f, "{e}"),
        }
    }
}

/// True if `name` names a library file rather than a built-in module.
pub fn is_library(name: &str) -> bool {
    name.contains('/') || name.ends_with(".so")
}

/// Makes the service `name` with `options`.
pub fn load(
    registry: &ModuleRegistry,
    name: &str,
    options: &str,
) -> Result<Box<dyn Service>, LoadError> {
    if let Some(factory) = registry.get(name) {
        return factory(options).map_err(LoadError::Failed);
    }
    if !is_library(name) {
        return Err(LoadError::Unknown);
    }
    let decl = open_library(name)?;
    (decl.create)(options).map_err(LoadError::Failed)
}

fn open_library(name: &str) -> Result<&'static ModuleDecl, LoadError> {
    // SAFETY: loading a library runs its initializers; a View-OS module
    // library has none beyond Rust's. That is the user's choice of code to
    // run, as with any plugin.
    let lib = unsafe { libloading::Library::new(name) }
        .map_err(|e| LoadError::Library(format!("cannot load {name}: {e}")))?;
    // SAFETY: the symbol is read as a pointer to data; nothing is called
    // until the declaration has been checked.
    let decl: *const ModuleDecl = unsafe {
        match lib.get::<*const ModuleDecl>(MODULE_SYMBOL) {
            Ok(sym) => *sym,
            Err(_) => {
                return Err(LoadError::Library(format!(
                    "{name} is not a View-OS module (no viewos_module symbol)"
                )))
            }
        }
    };
    if decl.is_null() {
        return Err(LoadError::Library(format!(
            "{name}: null module declaration"
        )));
    }
    // The library stays mapped for the life of the host.
    std::mem::forget(lib);
    // SAFETY: the library is never unloaded, so the declaration lives for
    // the rest of the process.
    let decl: &'static ModuleDecl = unsafe { &*decl };
    // SAFETY: `check` reads the magic number first, and the strings only if
    // it matches (a declaration made by `declare_module!`).
    unsafe { decl.check() }.map_err(|why| LoadError::Incompatible(format!("{name}: {why}")))?;
    Ok(decl)
}
