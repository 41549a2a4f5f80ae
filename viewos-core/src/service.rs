//! The trait every View-OS module implements.

use crate::Interest;

/// A module loaded into a view.
///
/// A service names itself, says which system call families it needs to see
/// ([`Service::interest`]), and answers the requests of those families. A
/// service is shared by every process of the view and may be called from
/// several host threads, hence `Send + Sync`.
pub trait Service: Send + Sync {
    /// Short name, as used by `um_add_service` and `um_ls_service`
    /// (`"umfuse"`, `"viewfs"`).
    fn name(&self) -> &str;

    /// One-line description shown by `um_ls_service`
    /// (`"virtual file systems (user level FUSE)"`).
    fn description(&self) -> &str;

    /// The system call families this service needs to see. The host traps
    /// nothing a loaded service does not ask for.
    fn interest(&self) -> Interest {
        Interest::empty()
    }
}
