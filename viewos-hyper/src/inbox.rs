//! Work other host threads hand to the tracer thread.
//!
//! Only the tracer thread may change a stopped thread's registers and let
//! it go on (ptrace requests come from the tracer), so supervisor and
//! worker threads queue what they need done here (and served files the
//! threads to interrupt when their file becomes ready) and wake the tracer from
//! its `waitpid` with [`crate::tracer::wake_signal`]. The signal may come
//! just before the tracer blocks in `waitpid` (its handler runs, `waitpid`
//! then sleeps): a kicker thread repeats it every 2 ms until the tracer has
//! taken the queue.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

/// A queue of work for the tracer thread.
pub struct Inbox<T> {
    items: Mutex<Vec<T>>,
    kick: Condvar,
    tracer: AtomicI32,
}

impl<T: Send + 'static> Inbox<T> {
    /// An empty inbox with its kicker thread (which lives as long as the
    /// inbox is shared).
    pub fn new() -> std::io::Result<Arc<Inbox<T>>> {
        let inbox = Arc::new(Inbox {
            items: Mutex::new(Vec::new()),
            kick: Condvar::new(),
            tracer: AtomicI32::new(0),
        });
        let weak = Arc::downgrade(&inbox);
        std::thread::Builder::new()
            .name("tracer-kick".into())
            .spawn(move || kick_loop(weak))?;
        Ok(inbox)
    }

    /// Sets the tracer thread to wake.
    pub fn set_tracer(&self, tid: i32) {
        self.tracer.store(tid, Ordering::Release);
    }

    /// The tracer thread (0 until it runs).
    pub fn tracer(&self) -> i32 {
        self.tracer.load(Ordering::Acquire)
    }

    /// Queues `item` and wakes the tracer.
    pub fn push(&self, item: T) {
        self.items.lock().push(item);
        self.kick.notify_one();
        crate::tracer::wake_thread(self.tracer.load(Ordering::Acquire));
    }

    /// Everything queued so far, oldest first.
    pub fn take(&self) -> Vec<T> {
        std::mem::take(&mut *self.items.lock())
    }
}

/// Repeats the wake signal while items wait; ends with the inbox.
fn kick_loop<T>(inbox: std::sync::Weak<Inbox<T>>) {
    loop {
        let Some(inbox) = inbox.upgrade() else {
            return;
        };
        {
            let mut items = inbox.items.lock();
            if items.is_empty() {
                // Bounded, so that a dropped inbox ends this thread.
                inbox.kick.wait_for(&mut items, Duration::from_secs(1));
                if items.is_empty() {
                    continue;
                }
            }
        }
        crate::tracer::wake_thread(inbox.tracer.load(Ordering::Acquire));
        drop(inbox);
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_come_out_in_order() {
        let inbox = Inbox::new().unwrap();
        inbox.push(1);
        inbox.push(2);
        assert_eq!(inbox.take(), vec![1, 2]);
        assert!(inbox.take().is_empty());
    }
}
