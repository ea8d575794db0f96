//! The addresses of deleted endpoints whose host connections are still to
//! be forgotten, gathered into batches ([`Gathering`]).
//!
//! Forgetting walks the kernel's whole connection table (every bucket of
//! the global hash, every namespace's entries, under the bucket locks):
//! milliseconds whatever it finds. Deleted one after another, endpoints
//! used to cost one walk each, back to back: most of a CPU while a runtime
//! tore down containers. A batch is now taken once no address has joined
//! it for [`QUIET`], or [`MOST`] after its first one, so a burst of deletes
//! costs a walk per [`MOST`] at most.
//!
//! Contract: whoever needs the connections gone ([`Gathering::hurry`]: a
//! create reusing a forgotten address, `settle`) makes the pending batch
//! due at once; the delay never holds back a waiting operation. Until its
//! batch is walked, a deleted endpoint's address has no interface and no
//! route on the host, so its leftover entries match no packet that could
//! reach an endpoint.

use std::net::IpAddr;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A batch is due once no address has joined it for this long…
pub(super) const QUIET: Duration = Duration::from_millis(20);
/// …or this long after its first address.
pub(super) const MOST: Duration = Duration::from_millis(100);

/// Addresses gathered for the next walk (see the module doc).
#[derive(Debug, Default)]
pub(super) struct Gathering {
    state: Mutex<Batch>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct Batch {
    addrs: Vec<IpAddr>,
    first: Option<Instant>,
    last: Option<Instant>,
    hurry: bool,
}

impl Gathering {
    fn lock(&self) -> MutexGuard<'_, Batch> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds `addr` to the pending batch; true when it starts one (the
    /// caller queues the job that takes it, [`Gathering::take_when_due`]).
    pub fn add(&self, addr: IpAddr) -> bool {
        let now = Instant::now();
        let mut b = self.lock();
        b.addrs.push(addr);
        b.last = Some(now);
        let first = b.first.is_none();
        b.first.get_or_insert(now);
        first
    }

    /// Waits until the pending batch is due and takes it: no address
    /// joined for `quiet`, `most` since its first one, or someone hurries.
    pub fn take_when_due(&self, quiet: Duration, most: Duration) -> Vec<IpAddr> {
        let mut b = self.lock();
        loop {
            let now = Instant::now();
            let due = match (b.first, b.last) {
                (Some(first), Some(last)) => (last + quiet).min(first + most),
                _ => now,
            };
            if b.hurry || due <= now {
                b.hurry = false;
                b.first = None;
                b.last = None;
                return std::mem::take(&mut b.addrs);
            }
            b = (self.changed.wait_timeout(b, due - now))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Makes the pending batch, if any, due now.
    pub fn hurry(&self) {
        let mut b = self.lock();
        if !b.addrs.is_empty() {
            b.hurry = true;
            self.changed.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn addr(i: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, i])
    }

    #[test]
    fn a_burst_is_one_batch_taken_after_a_quiet_spell() {
        let g = Arc::new(Gathering::default());
        assert!(g.add(addr(1)), "the first address starts a batch");
        let taker = {
            let g = g.clone();
            std::thread::spawn(move || {
                let t = Instant::now();
                (
                    g.take_when_due(Duration::from_millis(50), Duration::from_secs(5)),
                    t.elapsed(),
                )
            })
        };
        for i in 2..=5 {
            std::thread::sleep(Duration::from_millis(10));
            assert!(!g.add(addr(i)), "later addresses join it");
        }
        let (batch, waited) = taker.join().expect("taker");
        assert_eq!(batch, (1..=5).map(addr).collect::<Vec<_>>());
        assert!(
            waited >= Duration::from_millis(80),
            "taken before the burst was quiet: {waited:?}"
        );
        assert!(g.add(addr(6)), "after a take, a new batch");
    }

    #[test]
    fn a_steady_stream_is_taken_at_most_after_the_longest_wait() {
        let g = Arc::new(Gathering::default());
        g.add(addr(1));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let feeder = {
            let (g, stop) = (g.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    g.add(addr(2));
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        };
        let t = Instant::now();
        let batch = g.take_when_due(Duration::from_millis(50), Duration::from_millis(200));
        let waited = t.elapsed();
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        feeder.join().expect("feeder");
        assert!(batch.len() > 2, "the stream joined the batch");
        assert!(
            waited >= Duration::from_millis(190) && waited < Duration::from_secs(2),
            "taken after {waited:?}"
        );
    }

    #[test]
    fn hurry_makes_the_batch_due_at_once() {
        let g = Arc::new(Gathering::default());
        g.add(addr(1));
        let taker = {
            let g = g.clone();
            std::thread::spawn(move || {
                let t = Instant::now();
                let batch = g.take_when_due(Duration::from_secs(30), Duration::from_secs(60));
                (batch, t.elapsed())
            })
        };
        std::thread::sleep(Duration::from_millis(20));
        g.hurry();
        let (batch, waited) = taker.join().expect("taker");
        assert_eq!(batch, vec![addr(1)]);
        assert!(waited < Duration::from_secs(5), "waited {waited:?}");
        // Nothing pending: hurrying leaves no mark on the next batch.
        g.hurry();
        g.add(addr(2));
        let t = Instant::now();
        g.take_when_due(Duration::from_millis(50), Duration::from_secs(5));
        assert!(t.elapsed() >= Duration::from_millis(40));
    }
}
