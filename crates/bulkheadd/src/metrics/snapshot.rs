//! The metrics read at scrape time: what the host holds now.
//!
//! Contract: built fresh for each scrape from the engine's state, the
//! kernel's rule counters (the same reads as `acl ls --stats`) and the
//! engine's running totals; values that only grow are counters, the rest
//! gauges. An endpoint whose counters cannot be read (removed during the
//! scrape) is left out and counted in `bulkhead_scrape_errors`. There is no
//! cluster yet, so no cluster metrics (see `docs/metrics.md`).

use std::collections::BTreeMap;

use bulkhead_engine::events::EventKind;
use bulkhead_engine::{Engine, RuleCounters};
use bulkhead_model::Action;
use bulkhead_policy::EnforcementPoint;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use super::Labels;

fn point(p: EnforcementPoint) -> &'static str {
    match p {
        EnforcementPoint::HostFirewall => "host_firewall",
        EnforcementPoint::SwitchPort => "switch_port",
    }
}

/// Whether a counted rule lets packets through: a custom rule by its
/// action, a default rule by its name (`…:block-…` blocks; `stateful`,
/// `always:allow-nd` and `…:allow-…` allow, see the policy's profiles).
pub fn allows(c: &RuleCounters, acls: &[bulkhead_model::AclRule]) -> bool {
    if c.default {
        let last = c.rule.rsplit(':').next().unwrap_or_default();
        return !last.starts_with("block");
    }
    acls.iter()
        .find(|a| a.id.as_str() == c.rule)
        .is_none_or(|a| a.action == Action::Allow)
}

fn kind_name(k: EventKind) -> &'static str {
    match k {
        EventKind::Drop => "drop",
        EventKind::Tamper => "tamper",
        EventKind::Restore => "restore",
        EventKind::Reconcile => "reconcile",
    }
}

fn labels(pairs: &[(&'static str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
}

/// The registry of host metrics, filled from `engine` now.
pub(super) fn registry(engine: &Engine) -> Registry {
    let mut reg = Registry::with_prefix("bulkhead");
    let objects = Family::<Labels, Gauge>::default();
    let networks = Family::<Labels, Gauge>::default();
    let endpoint_info = Family::<Labels, Gauge>::default();
    let ep_packets = Family::<Labels, Counter>::default();
    let ep_bytes = Family::<Labels, Counter>::default();
    let rule_packets = Family::<Labels, Counter>::default();
    let rule_bytes = Family::<Labels, Counter>::default();
    let scrape_errors = Gauge::<i64>::default();

    let pending = engine.needs_reconcile();
    let state_of = |s: &'static str| if pending { "pending_repair" } else { s };
    let nets = engine.networks();
    let spaces = engine.namespaces();
    let eps = engine.endpoints();
    objects
        .get_or_create(&labels(&[
            ("kind", "network"),
            ("state", state_of("programmed")),
        ]))
        .set(nets.len() as i64);
    for n in &nets {
        networks
            .get_or_create(&labels(&[("driver", &n.driver.to_string())]))
            .inc();
    }
    for ns in &spaces {
        let s = if engine.is_adopted(ns.id) {
            "adopted"
        } else {
            "programmed"
        };
        objects
            .get_or_create(&labels(&[("kind", "namespace"), ("state", state_of(s))]))
            .inc();
    }
    objects
        .get_or_create(&labels(&[
            ("kind", "endpoint"),
            ("state", state_of("programmed")),
        ]))
        .set(eps.len() as i64);

    let name_of_net: BTreeMap<_, _> = nets.iter().map(|n| (n.id, n.name.to_string())).collect();
    let name_of_ns: BTreeMap<_, _> = spaces.iter().map(|n| (n.id, n.name.to_string())).collect();
    for e in &eps {
        let ep = e.name.to_string();
        let network = name_of_net.get(&e.network).cloned().unwrap_or_default();
        endpoint_info
            .get_or_create(&labels(&[
                ("endpoint", &ep),
                ("network", &network),
                (
                    "namespace",
                    name_of_ns.get(&e.namespace).map_or("", String::as_str),
                ),
                ("address", &e.ip_address.addr.to_string()),
                ("switch_port", e.switch_port.as_str()),
            ]))
            .set(1);
        let counters = match engine.acl_counters(&ep) {
            Ok(c) => c,
            Err(err) => {
                tracing::debug!(endpoint = %ep, error = %err, "metrics: counters unreadable");
                scrape_errors.inc();
                continue;
            }
        };
        for c in &counters {
            let verdict = if allows(c, &e.acls) {
                "allowed"
            } else {
                "dropped"
            };
            let dir = c.direction.to_string();
            let base = [
                ("endpoint", ep.as_str()),
                ("point", point(c.point)),
                ("direction", &dir),
            ];
            let mut by_verdict = labels(&base);
            by_verdict.push(("verdict", verdict.to_owned()));
            ep_packets.get_or_create(&by_verdict).inc_by(c.packets);
            ep_bytes.get_or_create(&by_verdict).inc_by(c.bytes);
            let mut by_rule = labels(&base);
            by_rule.push(("rule", c.rule.clone()));
            rule_packets.get_or_create(&by_rule).inc_by(c.packets);
            rule_bytes.get_or_create(&by_rule).inc_by(c.bytes);
        }
    }

    let totals = engine.events().tally().snapshot();
    let events = Family::<Labels, Counter>::default();
    let drops = Family::<Labels, Counter>::default();
    let tampers = Counter::<u64>::default();
    for kind in [
        EventKind::Drop,
        EventKind::Tamper,
        EventKind::Restore,
        EventKind::Reconcile,
    ] {
        events
            .get_or_create(&labels(&[("kind", kind_name(kind))]))
            .inc_by(0);
    }
    for (key, n) in &totals.events {
        events
            .get_or_create(&labels(&[("kind", kind_name(key.kind))]))
            .inc_by(*n);
        match key.kind {
            EventKind::Drop => {
                let l = [
                    ("point", key.point.as_str()),
                    ("direction", &key.direction),
                    ("rule", &key.rule),
                ];
                drops.get_or_create(&labels(&l)).inc_by(*n);
            }
            EventKind::Tamper => {
                tampers.inc_by(*n);
            }
            _ => {}
        }
    }
    let runs = Family::<Labels, Counter>::default();
    runs.get_or_create(&labels(&[("outcome", "ok")]))
        .inc_by(totals.reconciles_ok);
    runs.get_or_create(&labels(&[("outcome", "failed")]))
        .inc_by(totals.reconciles_failed);
    let repairs = Family::<Labels, Counter>::default();
    for (what, n) in &totals.repairs {
        repairs
            .get_or_create(&labels(&[("repair", what)]))
            .inc_by(*n);
    }
    let pending_gauge = Gauge::<i64>::default();
    pending_gauge.set(i64::from(pending));
    let build = Family::<Labels, Gauge>::default();
    build
        .get_or_create(&labels(&[("version", env!("CARGO_PKG_VERSION"))]))
        .set(1);

    reg.register("build_info", "bulkheadd's version (always 1)", build);
    reg.register(
        "objects",
        "Objects in the store, by kind and state (programmed, adopted, pending_repair)",
        objects,
    );
    reg.register("networks", "Networks by driver", networks);
    reg.register(
        "endpoint_info",
        "One series per endpoint naming its network, namespace, address and switch port (always 1)",
        endpoint_info,
    );
    reg.register("endpoint_packets", "Packets counted by the rules of an endpoint's enforcement point, by direction and verdict (allowed, dropped)", ep_packets);
    reg.register_with_unit("endpoint", "Bytes counted by the rules of an endpoint's enforcement point, by direction and verdict (allowed, dropped)", Unit::Bytes, ep_bytes);
    reg.register("acl_rule_packets", "Packets counted by one rule (custom id or default name) of an endpoint's enforcement point", rule_packets);
    reg.register_with_unit(
        "acl_rule",
        "Bytes counted by one rule of an endpoint's enforcement point",
        Unit::Bytes,
        rule_bytes,
    );
    reg.register(
        "events",
        "Events recorded since bulkheadd started, by kind",
        events,
    );
    reg.register("drop_events", "Logged drops (sampled by the kernel: a rate-limited subset of dropped packets), by point, direction and deciding rule", drops);
    reg.register(
        "tamper_events",
        "Host firewalls changed or removed by someone other than bulkhead",
        tampers,
    );
    reg.register(
        "reconcile_runs",
        "Reconcile runs since bulkheadd started, by outcome",
        runs,
    );
    reg.register(
        "reconcile_repairs",
        "What reconcile runs repaired, by kind of repair",
        repairs,
    );
    reg.register(
        "reconcile_pending",
        "1 while the engine must reconcile before its next operation",
        pending_gauge,
    );
    reg.register(
        "scrape_errors",
        "Endpoints whose counters could not be read in this scrape",
        scrape_errors,
    );
    reg
}
