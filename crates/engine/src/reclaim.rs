//! Freeing large values off the caller's path.
//!
//! Contract: [`later`] takes ownership of a value and drops it on one
//! long-lived thread (`bulkhead-reclaim`, started on first use), so an
//! operation does not wait for the allocator to walk a structure it no
//! longer needs. Why: at 10k ACL rules, freeing the previously programmed
//! endpoint-firewall table (tens of thousands of chains, rules and map
//! elements, each its own allocation) was ~15 % of adding one rule
//! (docs/benchmarks.md, "ACL scale"). Dropping has no observable effect
//! besides memory, so when does not matter; if the thread cannot be
//! started the value is dropped in place.

use std::sync::mpsc::{channel, Sender};
use std::sync::{Mutex, OnceLock};

type Garbage = Box<dyn Send>;

fn sender() -> Option<Sender<Garbage>> {
    static TX: OnceLock<Option<Mutex<Sender<Garbage>>>> = OnceLock::new();
    TX.get_or_init(|| {
        let (tx, rx) = channel::<Garbage>();
        std::thread::Builder::new()
            .name("bulkhead-reclaim".into())
            .spawn(move || {
                // Each received value is dropped at the end of the loop body.
                for _garbage in rx {}
            })
            .ok()
            .map(|_| Mutex::new(tx))
    })
    .as_ref()
    .and_then(|m| m.lock().ok().map(|tx| tx.clone()))
}

/// Drops `value` on the reclaim thread (in place if there is none).
pub(crate) fn later<T: Send + 'static>(value: T) {
    match sender() {
        Some(tx) => {
            // A send fails only if the thread is gone: the value comes
            // back in the error and is dropped here.
            let _ = tx.send(Box::new(value));
        }
        None => drop(value),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::channel;

    /// A value handed over is dropped (its destructor runs), not leaked.
    #[test]
    fn values_are_dropped() {
        struct Tell(std::sync::mpsc::Sender<()>);
        impl Drop for Tell {
            fn drop(&mut self) {
                let _ = self.0.send(());
            }
        }
        let (tx, rx) = channel();
        super::later(Tell(tx));
        rx.recv_timeout(std::time::Duration::from_secs(10))
            .expect("the reclaim thread dropped the value");
    }
}
