//! Clean-up off the operation's path.
//!
//! Closing a `NETLINK_NETFILTER` socket (nf_tables or ctnetlink) makes the
//! kernel flush nf_tables' deferred transaction cleanup, which waits for an
//! RCU grace period: about 10 ms here, on every close that follows a commit.
//! Destroying a network device (`unregister_netdevice`) waits for more of
//! them: 25–40 ms for a veth pair. Sockets opened for one call in an
//! endpoint namespace are therefore handed to a [`Reaper`], whose thread
//! drops them, and retired switch ports are destroyed there too
//! ([`Reaper::later`]); the operation returns at once.
//!
//! Contract: jobs run one at a time, in the order they were queued, on one
//! thread. [`Reaper::flush`] blocks until every job queued before the call
//! has run (shutdown, and whoever must see the clean-up done); dropping the
//! reaper runs what is queued and joins the thread. A job that panics is
//! logged and does not stop the ones after it. Jobs must not call `flush`.

use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// A job for the reaper's thread (dropping a socket is a job too).
type Item = Box<dyn FnOnce() + Send>;

/// How many jobs have run (they run in order, so job `n` has run once
/// `done >= n`).
#[derive(Debug, Default)]
struct Progress {
    done: Mutex<u64>,
    ran: Condvar,
}

impl Progress {
    fn finish_one(&self) {
        *self.done.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.ran.notify_all();
    }

    fn wait_for(&self, ticket: u64) {
        let mut done = self.done.lock().unwrap_or_else(|p| p.into_inner());
        while *done < ticket {
            done = self.ran.wait(done).unwrap_or_else(|p| p.into_inner());
        }
    }
}

fn run_job(job: Item) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
        tracing::error!("a clean-up job panicked");
    }
}

#[derive(Debug)]
struct Queue {
    tx: Option<Sender<Item>>,
    /// Jobs queued so far (the ticket of the last one).
    queued: u64,
}

/// A background thread that runs clean-up jobs and drops what it is given,
/// in order.
#[derive(Debug)]
pub struct Reaper {
    queue: Mutex<Queue>,
    progress: Arc<Progress>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Default for Reaper {
    fn default() -> Self {
        Self::new()
    }
}

impl Reaper {
    pub fn new() -> Self {
        Self::named("bulkhead-reaper")
    }

    /// A reaper whose thread is called `name` (at most 15 bytes show).
    pub fn named(name: &str) -> Self {
        let (tx, rx) = channel::<Item>();
        let progress = Arc::new(Progress::default());
        let p = progress.clone();
        let spawned = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                for job in rx {
                    run_job(job);
                    p.finish_one();
                }
            });
        // Without a thread, jobs run inline (see `send`).
        let (tx, thread) = match spawned {
            Ok(h) => (Some(tx), Some(h)),
            Err(_) => (None, None),
        };
        Self {
            queue: Mutex::new(Queue { tx, queued: 0 }),
            progress,
            thread: Mutex::new(thread),
        }
    }

    /// Drops `item` on the reaper's thread.
    pub fn reap<T: Send + 'static>(&self, item: T) {
        self.send(Box::new(move || drop(item)));
    }

    /// Runs `job` on the reaper's thread, after what was queued before it.
    pub fn later(&self, job: impl FnOnce() + Send + 'static) {
        self.send(Box::new(job));
    }

    /// Blocks until every job queued before this call has run.
    pub fn flush(&self) {
        let ticket = self.queue().queued;
        self.progress.wait_for(ticket);
    }

    /// Jobs queued and not yet run.
    pub fn pending(&self) -> u64 {
        let queued = self.queue().queued;
        let done = *self.progress.done.lock().unwrap_or_else(|p| p.into_inner());
        queued.saturating_sub(done)
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn send(&self, item: Item) {
        let mut q = self.queue();
        q.queued += 1;
        let item = match q.tx.as_ref() {
            Some(tx) => match tx.send(item) {
                Ok(()) => return,
                Err(unsent) => {
                    // The thread is gone: no later job may be sent to it.
                    q.tx = None;
                    unsent.0
                }
            },
            None => item,
        };
        // No thread to take it: do the work here, slower but never wrong.
        // Still in order: the thread has run (or will never run) every
        // earlier job, and the queue lock keeps later ones waiting.
        run_job(item);
        self.progress.finish_one();
    }
}

impl Drop for Reaper {
    /// Runs what is queued, then joins the thread.
    fn drop(&mut self) {
        self.queue().tx = None;
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = thread {
            if h.thread().id() != std::thread::current().id() {
                let _ = h.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc::channel;
    use std::time::Duration;

    #[test]
    fn jobs_run_in_order_and_reaped_items_are_dropped() {
        struct Flag(std::sync::mpsc::Sender<&'static str>);
        impl Drop for Flag {
            fn drop(&mut self) {
                let _ = self.0.send("dropped");
            }
        }
        let (tx, rx) = channel();
        let r = Reaper::new();
        let t1 = tx.clone();
        r.later(move || t1.send("first").unwrap_or(()));
        r.reap(Flag(tx.clone()));
        r.later(move || tx.send("last").unwrap_or(()));
        let got: Vec<_> = (0..3)
            .map(|_| rx.recv_timeout(Duration::from_secs(5)).expect("job ran"))
            .collect();
        assert_eq!(got, ["first", "dropped", "last"]);
    }

    #[test]
    fn flush_waits_for_queued_jobs_and_a_panic_does_not_stop_the_queue() {
        let r = Reaper::new();
        let ran = Arc::new(AtomicUsize::new(0));
        for i in 0..5 {
            let ran = ran.clone();
            r.later(move || {
                std::thread::sleep(Duration::from_millis(5));
                assert!(i != 2, "job 2 fails");
                ran.fetch_add(1, Ordering::SeqCst);
            });
        }
        r.flush();
        assert_eq!(
            ran.load(Ordering::SeqCst),
            4,
            "every job but the panicking one ran"
        );
        assert_eq!(r.pending(), 0);
        r.flush(); // nothing queued: returns at once
    }

    #[test]
    fn drop_runs_what_is_queued() {
        let ran = Arc::new(AtomicUsize::new(0));
        let r = Reaper::new();
        for _ in 0..3 {
            let ran = ran.clone();
            r.later(move || {
                std::thread::sleep(Duration::from_millis(5));
                ran.fetch_add(1, Ordering::SeqCst);
            });
        }
        drop(r);
        assert_eq!(ran.load(Ordering::SeqCst), 3);
    }
}
