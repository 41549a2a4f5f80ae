//! One view: its name, its options and the services loaded into it.

use crate::{Interest, Service};

/// Options of a view fixed at start (`umview -V NAME -x`).
#[derive(Clone, Debug, Default)]
pub struct ViewConfig {
    /// The view's name (`-V`), read and changed by `viewname`.
    pub name: String,
    /// Module nesting is disabled (`-x`): a service's own I/O does not go
    /// through the view.
    pub no_nesting: bool,
}

/// A view: its configuration and its ordered services.
pub struct View {
    config: ViewConfig,
    services: Vec<Box<dyn Service>>,
}

impl View {
    /// A view with no services: transparent.
    pub fn new(config: ViewConfig) -> View {
        View {
            config,
            services: Vec::new(),
        }
    }

    /// The view's configuration.
    pub fn config(&self) -> &ViewConfig {
        &self.config
    }

    /// Adds a service at the end of the search order.
    pub fn add_service(&mut self, service: Box<dyn Service>) {
        self.services.push(service);
    }

    /// The loaded services, in search order.
    pub fn services(&self) -> impl Iterator<Item = &dyn Service> {
        self.services.iter().map(|s| s.as_ref())
    }

    /// The system call families the host must trap for this view: the
    /// host's own minimum plus every service's interest.
    pub fn interest(&self) -> Interest {
        self.services
            .iter()
            .fold(Interest::HOST_MINIMUM, |acc, s| acc | s.interest())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct PathOnly;
    impl Service for PathOnly {
        fn name(&self) -> &str {
            "p"
        }
        fn description(&self) -> &str {
            "path"
        }
        fn interest(&self) -> Interest {
            Interest::PATH
        }
    }

    #[test]
    fn interest_is_union_of_services() {
        let mut v = View::new(ViewConfig::default());
        assert_eq!(v.interest(), Interest::HOST_MINIMUM);
        v.add_service(Box::new(PathOnly));
        assert_eq!(v.interest(), Interest::HOST_MINIMUM | Interest::PATH);
    }
}
