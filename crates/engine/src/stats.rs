//! `acl ls --stats`: the packets and bytes each rule of an endpoint's
//! enforcement points has counted, read from the kernel.
//!
//! Contract: one row per (point, direction, rule) — every custom rule of
//! the endpoint, and every counted default rule its points hold (the
//! profile's defaults, `stateful`, `always:allow-nd`), zero when nothing
//! was counted. Custom rules are summed over every kernel object the
//! compiler made of them: verdict-map elements owned by the rule (one per
//! region it wins) and region-chain rules commented `acl:<id>`. What
//! belongs to the endpoint is what its own chains reach in the programmed
//! IR (`ep_<ifname>_<dir>` in its namespace, `sw_<port>_<dir>` in the
//! host), plus, in the host firewall, the counted rules of the namespace's
//! base chains (`input` → in, `output` → out), shared by the namespace's
//! endpoints. The engine's lock is held only to copy what is read; the
//! dumps run without it. Read-only: nothing is reset.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use bulkhead_dataplane::counters::TableCounters;
use bulkhead_model::Direction;
use bulkhead_policy::ir::{counter_owner, Action, Table, Verdict};
use bulkhead_policy::EnforcementPoint;
use serde::Serialize;

use crate::error::{EngineError, Result};
use crate::Engine;

/// One rule's counters at one point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleCounters {
    pub point: EnforcementPoint,
    pub direction: Direction,
    /// The custom rule's id, or the default rule's name.
    pub rule: String,
    /// Whether `rule` is a default rule (not one of the endpoint's ACLs).
    pub default: bool,
    pub packets: u64,
    pub bytes: u64,
}

/// What to read at one point: the objects the endpoint's chains reach,
/// each with its direction, and a copy of the table holding only the sets
/// whose owners are needed.
struct Reach {
    point: EnforcementPoint,
    netns: Option<PathBuf>,
    chains: BTreeMap<String, Direction>,
    sets: BTreeMap<String, Direction>,
    table: Table,
    /// Every (direction, owner) the IR counts, for the zero rows.
    owners: BTreeSet<(Direction, String)>,
}

fn chain_of(v: &Verdict) -> Option<&str> {
    match v {
        Verdict::Jump(c) | Verdict::Goto(c) => Some(c),
        _ => None,
    }
}

/// Follows `roots` through rules (jump/goto, vmap) and map elements.
fn reach(
    point: EnforcementPoint,
    netns: Option<PathBuf>,
    table: &Table,
    roots: &[(String, Direction)],
) -> Reach {
    let mut r = Reach {
        point,
        netns,
        chains: BTreeMap::new(),
        sets: BTreeMap::new(),
        table: Table::new(table.family, &table.name),
        owners: BTreeSet::new(),
    };
    let mut todo: Vec<(String, Direction)> = roots.to_vec();
    while let Some((name, dir)) = todo.pop() {
        let Some(chain) = table.chains.get(name.as_str()) else {
            continue;
        };
        if r.chains.insert(name, dir).is_some() {
            continue;
        }
        for rule in &chain.rules {
            if let (true, Some(c)) = (rule.counter, &rule.comment) {
                r.owners.insert((dir, c.to_string()));
            }
            match &rule.action {
                Action::Verdict(v) => todo.extend(chain_of(v).map(|c| (c.to_owned(), dir))),
                Action::Vmap { map, .. } => {
                    let Some(set) = table.sets.get(map) else {
                        continue;
                    };
                    if r.sets.insert(map.clone(), dir).is_some() {
                        continue;
                    }
                    let targets = set.elements.values().flatten().filter_map(chain_of);
                    todo.extend(targets.map(|c| (c.to_owned(), dir)));
                    if set.counter && !set.owners.is_empty() {
                        r.owners
                            .extend(set.owners.values().map(|o| (dir, o.to_string())));
                        r.table.add_set(set.clone());
                    }
                }
                _ => {}
            }
        }
    }
    r
}

/// Sums what was read into `rows`, keyed by (direction, owner).
fn sum(r: &Reach, read: &TableCounters, rows: &mut BTreeMap<(Direction, String), (u64, u64)>) {
    let objects = read
        .rules
        .iter()
        .filter_map(|c| r.chains.get(&c.object).map(|d| (d, c)))
        .chain(
            read.elements
                .iter()
                .filter_map(|c| r.sets.get(&c.object).map(|d| (d, c))),
        );
    for (dir, c) in objects {
        let e = rows.entry((*dir, c.owner.clone())).or_default();
        e.0 += c.packets;
        e.1 += c.bytes;
    }
}

impl Engine {
    /// The counters of every rule of `endpoint`'s enforcement points.
    pub fn acl_counters(&self, endpoint: &str) -> Result<Vec<RuleCounters>> {
        let (record, reaches) = {
            let inner = self.lock();
            let e = inner.state.endpoint(endpoint)?.clone();
            let mut reaches = Vec::new();
            let dirs = [Direction::In, Direction::Out];
            let netns = inner
                .state
                .namespaces
                .get(&e.namespace)
                .and_then(|n| n.netns_path.clone());
            if let (Some(t), Some(netns)) = (inner.programmed.firewalls.get(&e.namespace), netns) {
                let roots: Vec<_> = dirs
                    .iter()
                    .map(|d| (format!("ep_{}_{d}", e.ifname), *d))
                    .collect();
                if t.chains.contains_key(roots[0].0.as_str()) {
                    let mut r = reach(EnforcementPoint::HostFirewall, Some(netns), t, &roots);
                    for (base, d) in [("input", Direction::In), ("output", Direction::Out)] {
                        r.chains.insert(base.into(), d);
                        let counted = t.chains.get(base).into_iter().flat_map(|c| &c.rules);
                        for rule in counted.filter(|x| x.counter) {
                            r.owners
                                .extend(rule.comment.as_deref().map(|c| (d, c.to_owned())));
                        }
                    }
                    reaches.push(r);
                }
            }
            let switch = inner.programmed.switch.as_ref().map(|t| &t.switch);
            if let Some(t) = switch {
                let roots: Vec<_> = dirs
                    .iter()
                    .map(|d| (format!("sw_{}_{d}", e.switch_port), *d))
                    .collect();
                if t.chains.contains_key(roots[0].0.as_str()) {
                    reaches.push(reach(EnforcementPoint::SwitchPort, None, t, &roots));
                }
            }
            (e, reaches)
        };
        let mut out = Vec::new();
        for r in &reaches {
            let sets: Vec<String> = r.table.sets.keys().cloned().collect();
            let read = self
                .kernel
                .counters(r.netns.as_deref(), &r.table, &sets)
                .map_err(EngineError::kernel)?;
            let mut rows: BTreeMap<(Direction, String), (u64, u64)> =
                r.owners.iter().map(|k| (k.clone(), (0, 0))).collect();
            for a in record
                .acls
                .iter()
                .filter(|a| EnforcementPoint::of(a.rule_type) == r.point)
            {
                rows.entry((a.direction, counter_owner(a.id.as_str()).to_string()))
                    .or_default();
            }
            sum(r, &read, &mut rows);
            // A comment longer than the kernel keeps is cut: match the
            // custom rules' owners by what the kernel kept.
            let ids: BTreeMap<String, String> = record
                .acls
                .iter()
                .map(|a| {
                    let o = counter_owner(a.id.as_str());
                    let cut = bulkhead_dataplane::lower::comment_userdata(&o);
                    let kept = String::from_utf8_lossy(&cut[2..cut.len() - 1]).into_owned();
                    (kept, a.id.to_string())
                })
                .collect();
            let mut merged: BTreeMap<(Direction, String, bool), (u64, u64)> = BTreeMap::new();
            for ((direction, owner), (p, b)) in rows {
                let key = match ids.get(&owner) {
                    Some(id) => (direction, id.clone(), false),
                    None => match owner.strip_prefix("acl:") {
                        Some(id) => (direction, id.to_owned(), false),
                        None => (direction, owner, true),
                    },
                };
                let e = merged.entry(key).or_default();
                e.0 += p;
                e.1 += b;
            }
            out.extend(
                merged
                    .into_iter()
                    .map(|((direction, rule, default), (p, b))| RuleCounters {
                        point: r.point,
                        direction,
                        rule,
                        default,
                        packets: p,
                        bytes: b,
                    }),
            );
        }
        Ok(out)
    }
}
