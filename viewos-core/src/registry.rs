//! Built-in modules, found by name (`umview -p NAME,opts`).

use crate::{Errno, Service};

/// Builds a service from its option string (the part after the first comma
/// of `-p NAME,opts`, empty when none was given).
pub type ModuleFactory = fn(options: &str) -> Result<Box<dyn Service>, Errno>;

/// The modules a host can load by name.
///
/// The host binary registers the modules it is built with; a name that is
/// not registered is an error the user sees (`unknown module`).
#[derive(Default)]
pub struct ModuleRegistry {
    entries: Vec<(String, ModuleFactory)>,
}

impl ModuleRegistry {
    /// An empty registry.
    pub fn new() -> ModuleRegistry {
        ModuleRegistry::default()
    }

    /// Registers `factory` under `name`, replacing an earlier one of that name.
    pub fn register(&mut self, name: &str, factory: ModuleFactory) {
        self.entries.retain(|(n, _)| n != name);
        self.entries.push((name.to_string(), factory));
    }

    /// The factory registered under `name`.
    pub fn get(&self, name: &str) -> Option<ModuleFactory> {
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, f)| *f)
    }

    /// The registered names, in registration order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(n, _)| n.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dummy;
    impl Service for Dummy {
        fn name(&self) -> &str {
            "dummy"
        }
        fn description(&self) -> &str {
            "test"
        }
    }

    fn make(_: &str) -> Result<Box<dyn Service>, Errno> {
        Ok(Box::new(Dummy))
    }

    #[test]
    fn lookup_by_name() {
        let mut r = ModuleRegistry::new();
        assert!(r.get("dummy").is_none());
        r.register("dummy", make);
        let s = r.get("dummy").expect("registered")("").expect("built");
        assert_eq!(s.name(), "dummy");
        assert_eq!(r.names().collect::<Vec<_>>(), vec!["dummy"]);
    }
}
