//! The threads that answer calls stopped at the tracer.
//!
//! A call stopped at the tracer (mount, chdir, an fd call on a served
//! file) may wait on a program of the view: a FUSE server run in the view
//! answers the file's reads, and its own calls (a read of a device the
//! view serves, its mount(2)) stop at the tracer too. So the tracer only
//! decodes such a call and hands it here; the stopped thread waits in its
//! ptrace stop while a worker asks the service, and the tracer applies the
//! answer when it comes back through its [`crate::inbox::Inbox`].
//!
//! The pool grows when a job finds no waiting worker (one job waiting on
//! another never waits behind it) and a worker idle for 30 s leaves.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

type Job = Box<dyn FnOnce() + Send>;

struct State {
    queue: VecDeque<Job>,
    /// Workers blocked waiting for a job.
    waiting: usize,
}

/// An elastic pool of worker threads.
#[derive(Clone)]
pub struct Workers {
    shared: Arc<(Mutex<State>, Condvar)>,
}

/// How long an idle worker stays.
const IDLE: Duration = Duration::from_secs(30);

impl Workers {
    /// A pool with no thread yet.
    pub fn new() -> Workers {
        Workers {
            shared: Arc::new((
                Mutex::new(State {
                    queue: VecDeque::new(),
                    waiting: 0,
                }),
                Condvar::new(),
            )),
        }
    }

    /// Runs `job` on a worker: a waiting one, or a new one if every worker
    /// is busy (or already claimed by queued jobs).
    pub fn submit(&self, job: impl FnOnce() + Send + 'static) {
        let (lock, cv) = &*self.shared;
        let mut st = lock.lock();
        st.queue.push_back(Box::new(job));
        if st.waiting >= st.queue.len() {
            cv.notify_one();
            return;
        }
        drop(st);
        let pool = self.clone();
        let spawned = std::thread::Builder::new()
            .name("tracer-worker".into())
            .spawn(move || pool.work());
        if spawned.is_err() {
            // No thread to be had: run it here rather than never.
            let job = lock.lock().queue.pop_back();
            if let Some(job) = job {
                job();
            }
        }
    }

    fn work(&self) {
        let (lock, cv) = &*self.shared;
        let mut st = lock.lock();
        loop {
            if let Some(job) = st.queue.pop_front() {
                drop(st);
                job();
                st = lock.lock();
                continue;
            }
            st.waiting += 1;
            let timed_out = cv.wait_for(&mut st, IDLE).timed_out();
            st.waiting -= 1;
            if timed_out && st.queue.is_empty() {
                return;
            }
        }
    }
}

impl Default for Workers {
    fn default() -> Workers {
        Workers::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn a_job_waiting_on_a_later_one_does_not_deadlock() {
        let pool = Workers::new();
        let (tx, rx) = mpsc::channel::<u32>();
        let (done_tx, done_rx) = mpsc::channel::<u32>();
        // The first job waits for what the second sends.
        pool.submit(move || {
            let v = rx.recv().unwrap();
            done_tx.send(v + 1).unwrap();
        });
        pool.submit(move || tx.send(41).unwrap());
        assert_eq!(done_rx.recv_timeout(Duration::from_secs(5)), Ok(42));
    }

    #[test]
    fn many_jobs_all_run() {
        let pool = Workers::new();
        let (tx, rx) = mpsc::channel::<usize>();
        for i in 0..200 {
            let tx = tx.clone();
            pool.submit(move || tx.send(i).unwrap());
        }
        let mut got: Vec<usize> = (0..200)
            .map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap())
            .collect();
        got.sort_unstable();
        assert_eq!(got, (0..200).collect::<Vec<_>>());
    }
}
