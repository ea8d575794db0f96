//! The engine's side of the watcher ([`crate::watch`]): which namespaces
//! to watch, what a logged drop means (endpoint and deciding rule), whether
//! a commit tampered with a host firewall, and putting one back.
//!
//! Contract: every method takes the engine lock briefly and touches the
//! kernel only to restore (one replace transaction of the table exactly as
//! last programmed); attribution reads the in-memory state, never the store.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bulkhead_dataplane::events::{Commit, LoggedPacket};
use bulkhead_dataplane::nft::{Family, NftSocket, Table as NftTable};
use bulkhead_model::{Direction, Id};
use bulkhead_policy::compile::{FIREWALL_TABLE, LOG_PREFIX};
use bulkhead_policy::{evaluate, CtState, Decider, EnforcementPoint, Packet};

use crate::events::{Event, EventKind, EventRing};
use crate::records::EndpointRecord;
use crate::state::State;
use crate::Engine;

/// nf_tables family number of `inet` (NFPROTO_INET).
const NFPROTO_INET: u8 = 1;

fn decider_name(d: &Decider) -> String {
    match d {
        Decider::Custom(id) => id.to_string(),
        Decider::Default(name) => (*name).to_owned(),
        Decider::Stateful => "stateful".into(),
        Decider::NotProgrammable => "not-programmable".into(),
    }
}

/// `bulkhead host_firewall in` → (point, direction).
fn parse_prefix(prefix: &str) -> Option<(EnforcementPoint, Direction)> {
    let mut words = prefix.strip_prefix(LOG_PREFIX)?.split_whitespace();
    let point = match words.next()? {
        "host_firewall" => EnforcementPoint::HostFirewall,
        "switch_port" => EnforcementPoint::SwitchPort,
        _ => return None,
    };
    let direction = match words.next()? {
        "in" => Direction::In,
        "out" => Direction::Out,
        _ => return None,
    };
    Some((point, direction))
}

fn owns(e: &EndpointRecord, state: &State, addr: IpAddr) -> bool {
    e.ip_address.addr == addr
        || crate::tables::policy_of(state, e).is_ok_and(|p| p.facts().addresses.contains(&addr))
}

impl Engine {
    /// The ring events are recorded in.
    pub fn events(&self) -> &Arc<EventRing> {
        &self.events
    }

    /// Records what a reconcile repaired (nothing when it found nothing to
    /// repair beyond reprogramming the tables, which it always does).
    pub(crate) fn record_reconcile(&self, r: &crate::ReconcileReport) {
        let counts = [
            (r.intents_finished, "operations finished"),
            (r.namespaces_created, "namespaces recreated"),
            (r.ports_created, "switch ports recreated"),
            (r.namespaces_removed, "namespaces removed"),
            (r.links_removed, "links removed"),
            (r.adopted_gone, "adopted namespaces gone"),
            (r.errors.len(), "errors"),
        ];
        let parts: Vec<String> = counts
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("{n} {what}"))
            .collect();
        if parts.is_empty() {
            return;
        }
        let mut e = Event::new(EventKind::Reconcile, SystemTime::now());
        e.detail = Some(parts.join(", "));
        self.events.push(e);
    }

    /// Wakes the watcher (a namespace gained a firewall).
    pub(crate) fn poke_watcher(&self) {
        if let Some(w) = &self.wake {
            w.poke();
        }
    }

    /// The watcher's end of [`Engine::poke_watcher`], if there is one.
    pub(crate) fn watcher_wake(&self) -> Option<std::os::unix::net::UnixStream> {
        let w = self.wake.as_ref()?;
        w.receiver()
            .map_err(|e| tracing::warn!(error = %e, "no watcher wake-up"))
            .ok()
    }

    /// Namespaces holding a host firewall bulkhead programmed: id → (name,
    /// path).
    pub(crate) fn firewall_namespaces(&self) -> BTreeMap<Id, (String, PathBuf)> {
        let inner = self.lock();
        inner
            .programmed
            .firewalls
            .keys()
            .filter_map(|id| {
                let ns = inner.state.namespaces.get(id)?;
                Some((*id, (ns.name.to_string(), ns.netns_path.clone()?)))
            })
            .collect()
    }

    /// The `drop` event for a packet logged in namespace `ns` (`None`: the
    /// host's, i.e. the switch port); `None` if the log is not ours or the
    /// packet names no endpoint.
    pub(crate) fn drop_event(&self, ns: Option<Id>, p: &LoggedPacket) -> Option<Event> {
        let (point, direction) = parse_prefix(&p.prefix)?;
        let h = p.headers?;
        let local = match direction {
            Direction::In => h.dst,
            Direction::Out => h.src,
        };
        let inner = self.lock();
        let state = &inner.state;
        let endpoint = match ns {
            Some(id) => state
                .endpoints_in_namespace(id)
                .find(|e| owns(e, state, local)),
            None => state.endpoints.values().find(|e| owns(e, state, local)),
        }?;
        let mut event = Event::new(EventKind::Drop, p.time);
        event.endpoint = Some(endpoint.name.to_string());
        event.namespace = state
            .namespaces
            .get(&endpoint.namespace)
            .map(|n| n.name.to_string());
        event.point = Some(
            match point {
                EnforcementPoint::HostFirewall => "host_firewall",
                EnforcementPoint::SwitchPort => "switch_port",
            }
            .into(),
        );
        event.direction = Some(direction.to_string());
        event.protocol = Some(h.protocol);
        (event.src, event.dst) = (Some(h.src), Some(h.dst));
        (event.src_port, event.dst_port) = (h.src_port, h.dst_port);
        let packet = Packet {
            direction,
            src: h.src,
            dst: h.dst,
            protocol: h.protocol,
            src_port: h.src_port,
            dst_port: h.dst_port,
            icmp_type: h.icmp_type,
            ct: CtState::New,
        };
        if let Ok(policy) = crate::tables::policy_of(state, endpoint) {
            let decision = evaluate(&policy, point, &packet);
            if decision.verdict == bulkhead_policy::Verdict::Block {
                event.rule = Some(decider_name(&decision.decided_by));
            } else {
                // The kernel dropped what the policy now allows: the policy
                // changed after the packet was logged.
                event.detail = Some("the current policy allows this packet".into());
            }
        }
        Some(event)
    }

    /// What a commit by another process did to bulkhead's host firewall,
    /// in words; `None` if it did not touch it.
    pub(crate) fn tampered_with(&self, c: &Commit) -> Option<String> {
        if !c.touches(NFPROTO_INET, FIREWALL_TABLE) {
            return None;
        }
        let mut what: Vec<&str> = c
            .changes
            .iter()
            .filter(|(f, t, _)| *f == NFPROTO_INET && t == FIREWALL_TABLE)
            .map(|(_, _, w)| *w)
            .collect();
        what.sort_unstable();
        what.dedup();
        let pid = c
            .pid
            .map_or("an unknown process".into(), |p| format!("pid {p}"));
        Some(format!(
            "{} in inet {FIREWALL_TABLE} by {pid}",
            what.join(", ")
        ))
    }

    /// Records the tampering (`what`) with namespace `id`'s firewall and
    /// puts the table back as last programmed.
    pub(crate) fn restore_firewall(&self, id: Id, what: &str) {
        let inner = self.lock();
        let Some(table) = inner.programmed.firewalls.get(&id) else {
            return;
        };
        let Some(ns) = inner.state.namespaces.get(&id) else {
            return;
        };
        // Only a process namespace has a firewall (and a path); `None`
        // would mean the host's own namespace to `apply`.
        let Some(netns) = ns.netns_path.as_deref() else {
            return;
        };
        let endpoints: Vec<String> = inner
            .state
            .endpoints_in_namespace(id)
            .map(|e| e.name.to_string())
            .collect();
        let event = |kind, detail: String| {
            let mut e = Event::new(kind, SystemTime::now());
            e.namespace = Some(ns.name.to_string());
            e.endpoint = (!endpoints.is_empty()).then(|| endpoints.join(","));
            e.point = Some("host_firewall".into());
            e.detail = Some(detail);
            e
        };
        tracing::warn!(namespace = %ns.name, change = what, "host firewall tampered with; restoring");
        self.events.push(event(EventKind::Tamper, what.to_owned()));
        let start = Instant::now();
        let change = crate::tables::replacements(std::slice::from_ref(table));
        match self.kernel.apply(Some(netns), &change) {
            Ok(()) => {
                let ms = start.elapsed().as_secs_f64() * 1e3;
                tracing::info!(namespace = %ns.name, ms, "host firewall restored");
                self.events.push(event(
                    EventKind::Restore,
                    format!(
                        "restored inet {FIREWALL_TABLE} ({} rules) in {ms:.1} ms",
                        table.rule_count()
                    ),
                ));
            }
            Err(e) => {
                tracing::error!(namespace = %ns.name, error = %e, "restoring the host firewall failed");
                self.events
                    .push(event(EventKind::Restore, format!("restore failed: {e}")));
            }
        }
    }

    /// After lost change reports: restores namespace `id`'s firewall if its
    /// table is missing or its chains differ from what was programmed.
    pub(crate) fn verify_firewall(&self, id: Id) {
        let (path, want) = {
            let inner = self.lock();
            let (Some(t), Some(path)) = (
                inner.programmed.firewalls.get(&id),
                inner
                    .state
                    .namespaces
                    .get(&id)
                    .and_then(|n| n.netns_path.clone()),
            ) else {
                return;
            };
            let chains: Vec<String> = t.chains.keys().map(|k| k.to_string()).collect();
            (path, chains)
        };
        let table = NftTable::new(Family::Inet, FIREWALL_TABLE);
        let live = NftSocket::open(Some(&path)).and_then(|mut s| s.list_chains(&table));
        let mut have: Vec<String> = match live {
            Ok(c) => c.into_iter().map(|c| c.name).collect(),
            Err(_) => Vec::new(),
        };
        have.sort();
        if have != want {
            self.restore_firewall(id, "changes in inet bulkhead while reports were lost");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_name_the_point_and_direction() {
        assert_eq!(
            parse_prefix("bulkhead host_firewall in"),
            Some((EnforcementPoint::HostFirewall, Direction::In))
        );
        assert_eq!(
            parse_prefix("bulkhead switch_port out"),
            Some((EnforcementPoint::SwitchPort, Direction::Out))
        );
        assert_eq!(parse_prefix("someone else's log"), None);
        assert_eq!(parse_prefix("bulkhead host_firewall sideways"), None);
    }
}
