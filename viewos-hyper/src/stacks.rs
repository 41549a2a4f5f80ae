//! The network stack each process chose with `mstack`
//! ([`viewos_core::stack`]): process id to [`StackChoice`], set through the
//! control channel ([`viewos_core::control::set_stack`]), inherited by
//! children at fork and clone.
//!
//! Most views never use `mstack`: then the table is empty and socket(2)
//! costs no lookup. A child whose first call comes before the tracer saw
//! its parent's fork event takes the choice of its nearest ancestor that
//! has one (read from `/proc`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use viewos_core::stack::{Families, StackChoice};

use crate::resolve::{status_field, tgid_of};

/// How far up the process tree a choice is looked for.
const MAX_ANCESTORS: usize = 64;

/// The stacks processes chose, by process id.
#[derive(Default)]
pub struct ProcessStacks {
    chosen: Mutex<HashMap<i32, StackChoice>>,
    /// Some process ever chose: the table must be asked.
    used: AtomicBool,
}

impl ProcessStacks {
    /// An empty table.
    pub fn new() -> ProcessStacks {
        ProcessStacks::default()
    }

    /// True once some process has chosen a stack.
    pub fn in_use(&self) -> bool {
        self.used.load(Ordering::Acquire)
    }

    /// Process `tgid` uses the stack at `path` for `families` from now on.
    pub fn choose(&self, tgid: i32, families: Families, path: PathBuf) {
        let mut m = self.chosen.lock();
        m.entry(tgid).or_default().choose(families, path);
        self.used.store(true, Ordering::Release);
    }

    /// A new process `child` of `parent` starts with its parent's choice.
    pub fn inherit(&self, parent: i32, child: i32) {
        if parent == child {
            return;
        }
        let mut m = self.chosen.lock();
        match m.get(&parent).cloned() {
            Some(c) => {
                m.insert(child, c);
            }
            None => {
                m.remove(&child);
            }
        }
    }

    /// Thread `tid` ended: when it led its process, the choice goes.
    pub fn thread_gone(&self, tid: i32) {
        if self.in_use() {
            self.chosen.lock().remove(&tid);
        }
    }

    /// The stack path thread `tid`'s process chose for `family`, if any.
    pub fn path_for(&self, tid: i32, family: Families) -> Option<PathBuf> {
        if !self.in_use() {
            return None;
        }
        let tgid = tgid_of(tid);
        {
            let m = self.chosen.lock();
            if let Some(c) = m.get(&tgid) {
                return c.path_for(family).map(Path::to_path_buf);
            }
            if m.is_empty() {
                return None;
            }
        }
        // Not seen yet: a new child, or a process outside any mstack.
        // What is found is kept, an empty choice too (a process's choice
        // changes only by its own mstack).
        let mut pid = tgid;
        let mut found = StackChoice::default();
        for _ in 0..MAX_ANCESTORS {
            pid = match status_field(pid, "PPid:").and_then(|v| v.parse().ok()) {
                Some(p) if p > 1 => p,
                _ => break,
            };
            if let Some(c) = self.chosen.lock().get(&pid) {
                found = c.clone();
                break;
            }
        }
        let path = found.path_for(family).map(Path::to_path_buf);
        self.chosen.lock().entry(tgid).or_insert(found);
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_are_inherited_and_forgotten() {
        let s = ProcessStacks::new();
        let me = std::process::id() as i32;
        assert!(!s.in_use());
        assert_eq!(s.path_for(me, Families::INET4), None);
        s.choose(1_000_000, Families::INET4, "/dev/net/null".into());
        s.inherit(1_000_000, 1_000_001);
        s.inherit(42, 1_000_002);
        let m = s.chosen.lock();
        assert!(m.contains_key(&1_000_001));
        assert!(!m.contains_key(&1_000_002));
        drop(m);
        s.thread_gone(1_000_001);
        assert!(!s.chosen.lock().contains_key(&1_000_001));
        // This process has no choice and no ancestor with one; that is
        // remembered.
        assert_eq!(s.path_for(me, Families::INET4), None);
        assert_eq!(s.chosen.lock().get(&me), Some(&StackChoice::default()));
        s.choose(me, Families::INET6, "/dev/net/x".into());
        assert_eq!(s.path_for(me, Families::INET4), None);
        assert_eq!(
            s.path_for(me, Families::INET6),
            Some(PathBuf::from("/dev/net/x"))
        );
    }
}
