//! Closing netfilter sockets off the operation's path.
//!
//! Closing a `NETLINK_NETFILTER` socket (nf_tables or ctnetlink) makes the
//! kernel flush nf_tables' deferred transaction cleanup, which waits for an
//! RCU grace period: about 10 ms here, on every close that follows a commit.
//! Sockets opened for one call in an endpoint namespace are therefore handed
//! to a [`Reaper`], whose thread drops them; the operation returns at once.
//! The same thread runs clean-up work that must happen but need not delay
//! the operation ([`Reaper::later`]), in order.

use std::sync::mpsc::{channel, Sender};
use std::sync::Mutex;

/// A job for the reaper's thread (dropping a socket is a job too).
type Item = Box<dyn FnOnce() + Send>;

/// A background thread that drops what it is given, in order.
#[derive(Debug)]
pub struct Reaper {
    tx: Mutex<Option<Sender<Item>>>,
}

impl Default for Reaper {
    fn default() -> Self {
        Self::new()
    }
}

impl Reaper {
    pub fn new() -> Self {
        let (tx, rx) = channel::<Item>();
        let spawned = std::thread::Builder::new()
            .name("bulkhead-reaper".into())
            .spawn(move || {
                for job in rx {
                    job();
                }
            });
        // Without a thread, jobs run inline (see `send`).
        Self {
            tx: Mutex::new(spawned.ok().map(|_| tx)),
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

    fn send(&self, item: Item) {
        let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        let item = match tx.as_ref() {
            Some(tx) => match tx.send(item) {
                Ok(()) => return,
                Err(unsent) => unsent.0,
            },
            None => item,
        };
        drop(tx);
        // No thread to take it: do the work here, slower but never wrong.
        item();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
}
