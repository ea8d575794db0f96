//! The events ring: what bulkhead saw happen to the traffic and the
//! firewalls it programs — drops (sampled by the kernel, see
//! `docs/nftables.md`), tampering with a host firewall and its restoration,
//! reconcile repairs — kept in memory for `bulkhead events`.
//!
//! Contract: [`EventRing`] holds the last [`EventRing::capacity`] events,
//! oldest first; every event gets a sequence number one higher than the
//! previous one (from 1), so a reader that remembers the last number it saw
//! reads each later event exactly once, and can tell from a gap that the
//! ring overwrote some. [`EventRing::push`] never blocks on readers and
//! costs O(1); [`EventRing::wait`] blocks a reader until an event newer than
//! its cursor exists or its timeout passes. Nothing is persisted: a restart
//! starts an empty ring.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The ring's default size: a few minutes of the kernel's drop sampling
/// across a busy host, a few hundred KiB of memory.
pub const DEFAULT_CAPACITY: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A packet an ACL (custom or default) blocked.
    Drop,
    /// Someone other than bulkhead changed or removed a host firewall.
    Tamper,
    /// bulkhead put a host firewall back after tampering.
    Restore,
    /// Reconcile repaired the kernel.
    Reconcile,
}

/// One event. Fields that do not apply to a kind are `None`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    pub kind: EventKind,
    pub endpoint: Option<String>,
    pub namespace: Option<String>,
    /// `host_firewall` or `switch_port`.
    pub point: Option<String>,
    /// `in` or `out` (as the endpoint sees the packet).
    pub direction: Option<String>,
    /// The deciding rule: a custom rule id or a default rule's name.
    pub rule: Option<String>,
    pub protocol: Option<u8>,
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    pub src_port: Option<u16>,
    pub dst_port: Option<u16>,
    /// What happened, in words (tamper, restore, reconcile).
    pub detail: Option<String>,
}

impl Event {
    /// An event of `kind` at `time`, every other field empty.
    pub fn new(kind: EventKind, time: SystemTime) -> Self {
        Self {
            seq: 0,
            time_ms: time
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            kind,
            endpoint: None,
            namespace: None,
            point: None,
            direction: None,
            rule: None,
            protocol: None,
            src: None,
            dst: None,
            src_port: None,
            dst_port: None,
            detail: None,
        }
    }
}

#[derive(Debug)]
struct Ring {
    events: VecDeque<Event>,
    last: u64,
}

/// A bounded, in-memory ring of recent events; shared (`Arc`) by writers
/// (the watcher, reconcile) and readers (the API).
#[derive(Debug)]
pub struct EventRing {
    ring: Mutex<Ring>,
    grew: Condvar,
    capacity: usize,
    /// Totals since start, of events and reconcile runs (for metrics).
    tally: crate::tally::Tally,
}

impl Default for EventRing {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl EventRing {
    pub fn new(capacity: usize) -> Self {
        Self {
            ring: Mutex::new(Ring {
                events: VecDeque::with_capacity(capacity.min(1024)),
                last: 0,
            }),
            grew: Condvar::new(),
            capacity: capacity.max(1),
            tally: crate::tally::Tally::default(),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Every event and reconcile run since start, counted.
    pub fn tally(&self) -> &crate::tally::Tally {
        &self.tally
    }

    fn lock(&self) -> MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends `event` (its `seq` is assigned here), overwriting the oldest
    /// when full; returns the sequence number.
    pub fn push(&self, mut event: Event) -> u64 {
        self.tally.event(&event);
        let mut ring = self.lock();
        ring.last += 1;
        event.seq = ring.last;
        if ring.events.len() == self.capacity {
            ring.events.pop_front();
        }
        ring.events.push_back(event);
        let seq = ring.last;
        drop(ring);
        self.grew.notify_all();
        seq
    }

    /// The sequence number of the newest event (0: none yet).
    pub fn last_seq(&self) -> u64 {
        self.lock().last
    }

    /// The events with a sequence number above `after` that `keep`
    /// accepts, oldest first.
    pub fn since(&self, after: u64, keep: impl Fn(&Event) -> bool) -> Vec<Event> {
        let ring = self.lock();
        // Sequence numbers are consecutive, so the first wanted one is at a
        // known offset from the oldest kept.
        let oldest = ring.events.front().map_or(ring.last + 1, |e| e.seq);
        let skip = after.saturating_add(1).saturating_sub(oldest) as usize;
        ring.events
            .iter()
            .skip(skip)
            .filter(|e| keep(e))
            .cloned()
            .collect()
    }

    /// [`EventRing::since`], waiting up to `timeout` for at least one
    /// event newer than `after` (not necessarily one `keep` accepts: a
    /// reader then comes back with a later cursor, [`EventRing::last_seq`]).
    pub fn wait(&self, after: u64, timeout: Duration, keep: impl Fn(&Event) -> bool) -> Vec<Event> {
        let deadline = Instant::now() + timeout;
        let mut ring = self.lock();
        while ring.last <= after {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            ring = self
                .grew
                .wait_timeout(ring, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        drop(ring);
        self.since(after, keep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn drop_event(endpoint: &str) -> Event {
        let mut e = Event::new(EventKind::Drop, SystemTime::now());
        e.endpoint = Some(endpoint.into());
        e
    }

    #[test]
    fn the_ring_keeps_the_newest_and_numbers_them_consecutively() {
        let ring = EventRing::new(3);
        for i in 0..5 {
            assert_eq!(ring.push(drop_event(&format!("e{i}"))), i + 1);
        }
        let all = ring.since(0, |_| true);
        let seqs: Vec<u64> = all.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [3, 4, 5]);
        assert_eq!(ring.since(4, |_| true).len(), 1);
        assert!(ring.since(5, |_| true).is_empty());
        let e4 = ring.since(0, |e| e.endpoint.as_deref() == Some("e4"));
        assert_eq!(e4.len(), 1);
    }

    #[test]
    fn a_waiting_reader_wakes_on_a_push_and_times_out_without_one() {
        let ring = Arc::new(EventRing::new(8));
        let start = Instant::now();
        assert!(ring.wait(0, Duration::from_millis(50), |_| true).is_empty());
        assert!(start.elapsed() >= Duration::from_millis(50));
        let writer = ring.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            writer.push(drop_event("a"));
        });
        let got = ring.wait(0, Duration::from_secs(10), |_| true);
        t.join().unwrap();
        assert_eq!(got.len(), 1);
        assert!(start.elapsed() < Duration::from_secs(5));
    }
}
