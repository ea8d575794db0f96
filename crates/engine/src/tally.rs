//! Running totals since the engine started, for metrics: every event ever
//! pushed to the ring, by what it was (the ring itself keeps only the
//! newest), and every reconcile run with what it repaired.
//!
//! Contract: totals only grow (they are Prometheus counters); recording
//! costs one short lock and never blocks on readers for long; a snapshot
//! is a copy. The keys are bounded by what the host holds (a drop's key is
//! its point, direction and deciding rule), so the maps stay small.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use crate::events::{Event, EventKind};
use crate::ReconcileReport;

/// What one event is counted under.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct EventKey {
    pub kind: EventKind,
    /// `host_firewall` or `switch_port` (empty when it does not apply).
    pub point: String,
    /// `in` or `out` (empty when it does not apply).
    pub direction: String,
    /// The deciding rule of a drop (custom id or default name; empty for
    /// other kinds).
    pub rule: String,
}

impl EventKey {
    fn of(e: &Event) -> Self {
        Self {
            kind: e.kind,
            point: e.point.clone().unwrap_or_default(),
            direction: e.direction.clone().unwrap_or_default(),
            rule: e.rule.clone().unwrap_or_default(),
        }
    }
}

/// A copy of the totals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    pub events: BTreeMap<EventKey, u64>,
    /// Reconcile runs that finished.
    pub reconciles_ok: u64,
    /// Reconcile runs that failed (the engine retries them).
    pub reconciles_failed: u64,
    /// Repairs by what was repaired (`namespaces_created`, …).
    pub repairs: BTreeMap<&'static str, u64>,
}

/// The engine's running totals (shared with the events ring's writers).
#[derive(Debug, Default)]
pub struct Tally {
    totals: Mutex<Totals>,
}

impl Tally {
    fn lock(&self) -> MutexGuard<'_, Totals> {
        self.totals.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts one event.
    pub fn event(&self, e: &Event) {
        *self.lock().events.entry(EventKey::of(e)).or_default() += 1;
    }

    /// Counts one reconcile run and what it repaired.
    pub fn reconcile(&self, outcome: Result<&ReconcileReport, ()>) {
        let mut t = self.lock();
        match outcome {
            Err(()) => t.reconciles_failed += 1,
            Ok(r) => {
                t.reconciles_ok += 1;
                for (what, n) in r.repairs() {
                    *t.repairs.entry(what).or_default() += n as u64;
                }
            }
        }
    }

    pub fn snapshot(&self) -> Totals {
        self.lock().clone()
    }
}

impl ReconcileReport {
    /// What the run repaired, by kind of repair (every kind, zeros
    /// included, so each series exists from the first run on).
    pub fn repairs(&self) -> [(&'static str, usize); 6] {
        [
            ("intents_finished", self.intents_finished),
            ("namespaces_created", self.namespaces_created),
            ("ports_created", self.ports_created),
            ("namespaces_removed", self.namespaces_removed),
            ("links_removed", self.links_removed),
            ("adopted_gone", self.adopted_gone),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    #[test]
    fn totals_count_every_event_and_run_by_key() {
        let t = Tally::default();
        let mut d = Event::new(EventKind::Drop, SystemTime::now());
        d.point = Some("switch_port".into());
        d.direction = Some("in".into());
        d.rule = Some("r1".into());
        t.event(&d);
        t.event(&d);
        t.event(&Event::new(EventKind::Tamper, SystemTime::now()));
        let report = ReconcileReport {
            ports_created: 2,
            ..Default::default()
        };
        t.reconcile(Ok(&report));
        t.reconcile(Err(()));
        let s = t.snapshot();
        assert_eq!(s.events[&EventKey::of(&d)], 2);
        assert_eq!(s.events.values().sum::<u64>(), 3);
        assert_eq!((s.reconciles_ok, s.reconciles_failed), (1, 1));
        assert_eq!(s.repairs["ports_created"], 2);
        assert_eq!(s.repairs["links_removed"], 0);
    }
}
