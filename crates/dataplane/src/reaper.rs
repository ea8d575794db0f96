//! Closing netfilter sockets off the operation's path.
//!
//! Closing a `NETLINK_NETFILTER` socket (nf_tables or ctnetlink) makes the
//! kernel flush nf_tables' deferred transaction cleanup, which waits for an
//! RCU grace period: about 10 ms here, on every close that follows a commit.
//! Sockets opened for one call in an endpoint namespace are therefore handed
//! to a [`Reaper`], whose thread drops them; the operation returns at once.

use std::sync::mpsc::{channel, Sender};
use std::sync::Mutex;

type Item = Box<dyn Send>;

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
                for item in rx {
                    drop(item);
                }
            });
        // Without a thread, `reap` drops inline: slower, never wrong.
        Self {
            tx: Mutex::new(spawned.ok().map(|_| tx)),
        }
    }

    /// Drops `item` on the reaper's thread.
    pub fn reap<T: Send + 'static>(&self, item: T) {
        let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = tx.as_ref() {
            // A send only fails when the thread is gone; `item` is then
            // dropped here with the error.
            let _ = tx.send(Box::new(item));
        }
    }
}
