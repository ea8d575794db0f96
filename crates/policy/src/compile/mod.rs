//! The compiler from endpoint policies to nftables IR, one table per
//! enforcement point: [`compile_endpoint_firewall`] (inside an endpoint
//! namespace) and [`compile_switch`] (the host namespace); and the two
//! other tables of the virtual switch in the host namespace, built from
//! networks and endpoints alone: [`nat`] (nat plumbing, published ports,
//! network isolation) and [`antispoof`] (bridged ports).
//!
//! Invariants: pure and deterministic (same input → identical IR); custom
//! rules never become linear rules — each (direction, family, protocol
//! class) list is cut into at most [`MAX_SEGMENTS`](crate::MAX_SEGMENTS)
//! segments ([`segment`](crate::segment())), each one single-field interval
//! verdict map, looked up by one rule in precedence order (first hit wins):
//! the segment's classified regions when its key has one field, else the
//! two-level encoding of [`twolevel`] (lead-field regions → chains of the
//! covering rules). Every map is single-field except small port-only ones;
//! the number of rules a packet walks is O(segments + overlap depth),
//! whatever the number of rules or endpoints. [`endpoint_rules`] must be the
//! last to append to its chain (two-level segments move what follows them
//! into `…_next` chains). The mapping is written down in `docs/nftables.md`.

pub mod antispoof;
mod firewall;
pub mod incremental;
mod kept;
mod lead_regions;
pub mod nat;
#[cfg(test)]
mod nat_tests;
mod region_chains;
mod region_rules;
mod slack;
mod switch;
mod twolevel;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use bulkhead_model::Direction;

pub use firewall::{compile_endpoint_firewall, FirewallEndpoint};
pub use switch::{
    anti_spoofing_head, compile_switch, guard_elements, guard_sets, link_local, SwitchPortPolicy,
};

use bulkhead_model::AclRule;

use crate::boxes::applies;
use crate::classifier::acl_name;
use crate::endpoint::Policy;
use crate::error::PolicyError;
use crate::ir::{
    be_bytes, counter_owner, Action, Chain, Field, Key, KeyBytes, LogSpec, Match, NfProto,
    ProtoList, Rule, Set, SetKind, Table, Verdict as NftVerdict,
};
use crate::matrix::EnforcementPoint;
use crate::packet::{Verdict, ND_TYPES, PORTED_PROTOCOLS};
use crate::profile::{default_rules, DefaultMatch};
use crate::regions::{Classification, ProtoClass};
use crate::segment::{classify_run, run_dims, runs};
use twolevel::{lead_dim, Pieces, TwoLevel};

/// The switch table (host namespace).
pub const TABLE: &str = "bulkhead";
/// The endpoint firewall's table inside an endpoint namespace. Never the
/// switch table's name: no operation on an endpoint namespace can touch a
/// switch table, even one aimed at the host namespace by mistake.
pub const FIREWALL_TABLE: &str = "bulkhead_fw";
/// The name the endpoint firewall had before it got its own (reconcile destroys
/// it in the namespaces it owns).
pub const LEGACY_FIREWALL_TABLE: &str = "bulkhead";

/// The NFLOG group drop events go to, in every namespace (groups are per
/// network namespace, so one number serves the host and every endpoint).
pub const LOG_GROUP: u16 = 0x6268;
/// Drop events logged per second and drop chain at most (the kernel's
/// token bucket, refilled continuously), and the burst it allows.
pub const LOG_RATE: u32 = 20;
pub const LOG_BURST: u32 = 40;
/// Every drop event's prefix starts with this, then the point's name
/// (`host_firewall`, `switch_port`) and the direction: `bulkhead
/// host_firewall in`.
pub const LOG_PREFIX: &str = "bulkhead";

/// The leaf chain a blocked packet of `direction` is sent to (`goto`): it
/// logs a rate-limited sample to [`LOG_GROUP`] and drops.
pub fn drop_chain(direction: Direction) -> String {
    format!("drop_{direction}")
}

/// [`drop_chain`] as the shared name every block's `goto` holds (one
/// allocation per process, not one per rule and element).
fn drop_chain_name(direction: Direction) -> Arc<str> {
    static NAMES: OnceLock<[Arc<str>; 2]> = OnceLock::new();
    let [inbound, outbound] =
        NAMES.get_or_init(|| [Direction::In, Direction::Out].map(|d| Arc::from(drop_chain(d))));
    match direction {
        Direction::In => inbound.clone(),
        Direction::Out => outbound.clone(),
    }
}

/// The NFLOG prefix of drops at `point` in `direction`.
pub fn log_prefix(point: EnforcementPoint, direction: Direction) -> String {
    let point = match point {
        EnforcementPoint::HostFirewall => "host_firewall",
        EnforcementPoint::SwitchPort => "switch_port",
    };
    format!("{LOG_PREFIX} {point} {direction}")
}

/// Adds the two drop chains of a point's table. Only custom and default
/// ACL verdicts go through them; the stateful `ct state invalid drop` and
/// anti-spoofing drops stay plain drops (not ACL decisions).
fn add_drop_chains(table: &mut Table, point: EnforcementPoint) {
    for direction in [Direction::In, Direction::Out] {
        let mut chain = Chain::regular(drop_chain(direction));
        chain.rules = vec![
            Rule::new(
                vec![],
                Action::Log(LogSpec {
                    group: LOG_GROUP,
                    prefix: log_prefix(point, direction),
                    rate: LOG_RATE,
                    burst: LOG_BURST,
                }),
            ),
            Rule::verdict(vec![], NftVerdict::Drop),
        ];
        table.add_chain(chain);
    }
}

/// How allow and block lower at a point: the host firewall accepts (its
/// base chains see one endpoint per packet); the switch returns, so that a
/// packet between two endpoints also meets the second endpoint's chain.
#[derive(Debug, Clone, Copy)]
struct Lowering {
    point: EnforcementPoint,
    allow: fn() -> NftVerdict,
    /// Whether a two-level region chain is entered by `goto` and ends in a
    /// `goto` of the continuation chain (the switch: its allow is `return`,
    /// which must leave the endpoint chain), or by `jump`, falling back
    /// into the endpoint chain when no rule matches (the host firewall:
    /// its allow is `accept`). `jump` keeps region chains leaves of the
    /// jump graph, which the kernel walks on every commit that adds a rule
    /// or a map element pointing at a chain.
    continuation: bool,
    /// The direction whose drop chain a block goes to (set by
    /// [`endpoint_rules`] through [`Lowering::towards`]).
    direction: Direction,
}

impl Lowering {
    /// Block is `goto drop_<dir>` ([`drop_chain`]), a leaf chain: logging
    /// there costs the kernel's commit-time jump-graph walk one visit of a
    /// two-rule chain per element or rule pointing at it, and the decision
    /// (which rule) is recovered by the daemon from the packet, not carried
    /// in a per-rule chain.
    fn verdict(self, v: Verdict) -> NftVerdict {
        match v {
            Verdict::Allow => (self.allow)(),
            Verdict::Block => NftVerdict::Goto(drop_chain_name(self.direction)),
        }
    }

    fn towards(self, direction: Direction) -> Self {
        Self { direction, ..self }
    }
}

const FIREWALL: Lowering = Lowering {
    point: EnforcementPoint::HostFirewall,
    allow: || NftVerdict::Accept,
    continuation: false,
    direction: Direction::In,
};
const SWITCH: Lowering = Lowering {
    point: EnforcementPoint::SwitchPort,
    allow: || NftVerdict::Return,
    continuation: true,
    direction: Direction::In,
};

fn nd_matches() -> Vec<Match> {
    vec![
        Match::NfProto(NfProto::Ipv6),
        Match::L4Proto {
            protos: ProtoList::from_slice(&[crate::packet::ICMPV6]),
            negate: false,
        },
        Match::Icmpv6Type(ND_TYPES.to_vec()),
    ]
}

/// The name of a list's maps without the segment number:
/// `acl_<tag>_<direction>_<family>_<class>`.
fn map_base(tag: &str, acl: &str) -> String {
    format!("acl_{tag}_{}", &acl[acl.find('_').map_or(0, |i| i + 1)..])
}

/// Appends the ACL map rules and the default rules of one endpoint chain,
/// and adds the maps to `table`. `tag` names the endpoint (ifname or port).
fn endpoint_rules(
    table: &mut Table,
    rules: &mut Vec<Rule>,
    policy: &Policy<'_>,
    lowering: Lowering,
    direction: Direction,
    tag: &str,
) -> Result<(), PolicyError> {
    let lowering = lowering.towards(direction);
    let ordered = policy.ordered_rules(lowering.point, direction);
    let mut out = Pieces::default();
    // Region chains of all two-level segments, added in one merge.
    let mut region_chains: Vec<(Arc<str>, Chain)> = Vec::new();
    // Each list's rules, found in one read of the rules: most rules apply
    // to one family and class, and the other lists then never read them.
    const LISTS: [(bool, ProtoClass); 4] = [
        (true, ProtoClass::Ported),
        (true, ProtoClass::Portless),
        (false, ProtoClass::Ported),
        (false, ProtoClass::Portless),
    ];
    let mut applying: [Vec<&AclRule>; 4] = Default::default();
    for rule in &ordered {
        for (list, &(v4, class)) in applying.iter_mut().zip(&LISTS) {
            if applies(rule, v4, class) {
                list.push(rule);
            }
        }
    }
    for (rules_of, (v4, class)) in applying.iter().zip(LISTS) {
        let acl = acl_name(lowering.point, direction, v4, class);
        let base = map_base(tag, &acl);
        let label = format!("{tag} {acl}");
        let list = runs(rules_of, direction, v4, class);
        let nfproto = if v4 { NfProto::Ipv4 } else { NfProto::Ipv6 };
        let negate = class == ProtoClass::Portless;
        let mut regions = 0usize;
        for (i, run) in list.runs.iter().enumerate() {
            let (boxes, winners) = (&list.boxes[run.clone()], &list.winners[run.clone()]);
            let name = format!("{base}_{i}");
            let matches = vec![
                Match::NfProto(nfproto),
                Match::L4Proto {
                    protos: ProtoList::from_slice(&PORTED_PROTOCOLS),
                    negate,
                },
            ];
            // A run keyed on an address takes the two-level encoding,
            // which never needs the run's classification (whose region
            // count may be far beyond what any map could hold).
            let dims = run_dims(boxes);
            let c = match lead_dim(direction, &dims, 0) {
                Some(_) => None,
                None => {
                    let c = classify_run(boxes, winners, v4, class, &label, &mut regions)?;
                    if c.is_empty() {
                        continue;
                    }
                    Some(c)
                }
            };
            let lead = match &c {
                None => lead_dim(direction, &dims, 0),
                Some(c) => lead_dim(direction, &c.dims, c.region_count()),
            };
            if let Some(lead) = lead {
                let next = format!("{name}_next");
                let two = TwoLevel {
                    boxes,
                    winners,
                    lead,
                    v4,
                    class,
                    lowering,
                    prefix: &name,
                    next: &next,
                    acl: &label,
                    exclude: None,
                };
                let key = vec![lead.field(v4)];
                let mut set = Set::new(&name, key.clone(), true, SetKind::VerdictMap);
                (set.elements, set.owners) = two.build(table, &mut region_chains)?;
                set.counter = true;
                table.add_set(set);
                out.current
                    .push(Rule::new(matches, Action::Vmap { key, map: name }));
                if lowering.continuation {
                    out.split(table, rules, next);
                }
                continue;
            }
            let Some(c) = c else { continue };
            let key: Vec<Field> = c.dims.iter().map(|d| d.field(v4)).collect();
            let mut set = Set::new(&name, key.clone(), true, SetKind::VerdictMap);
            (set.elements, set.owners) = elements(&c, &key, lowering);
            set.counter = true;
            table.add_set(set);
            out.current
                .push(Rule::new(matches, Action::Vmap { key, map: name }));
        }
    }
    let rules_out = &mut out.current;
    for d in default_rules(policy, lowering.point, direction) {
        let matches = match d.matcher {
            DefaultMatch::All => vec![],
            DefaultMatch::Protocols(ps) => {
                let mut ps = ProtoList::from_slice(ps);
                ps.sort_unstable();
                vec![Match::L4Proto {
                    protos: ps,
                    negate: false,
                }]
            }
            DefaultMatch::Published => {
                let name = format!("published_{tag}");
                let key = vec![Field::L4Proto, Field::Dport];
                let mut set = Set::new(&name, key.clone(), false, SetKind::Set);
                for m in &policy.facts().port_mappings {
                    let Some(p) = m.protocol.number() else {
                        continue;
                    };
                    let port = be_bytes(u128::from(m.container_port), 2);
                    set.elements
                        .insert(vec![(vec![p], vec![p]), (port.clone(), port)].into(), None);
                }
                if set.elements.is_empty() {
                    continue;
                }
                table.add_set(set);
                vec![Match::Lookup {
                    key,
                    set: name,
                    negate: false,
                }]
            }
        };
        rules_out.push(
            Rule::verdict(matches, lowering.verdict(d.verdict))
                .with_comment(d.name)
                .counted(),
        );
    }
    out.finish(table, rules);
    region_chains::add_chains(table, region_chains);
    Ok(())
}

/// Elements of a verdict map and their counter owners.
type Elements = (BTreeMap<Key, Option<NftVerdict>>, BTreeMap<Key, Arc<str>>);

/// The elements of one segment's verdict map, each owned (for counters) by
/// its region's winning rule. Regions come out in key order, so the maps
/// are bulk-built from sorted vectors (no per-insert search).
fn elements(c: &Classification, key: &[Field], lowering: Lowering) -> Elements {
    let verdicts: Vec<NftVerdict> = c
        .winners
        .iter()
        .map(|(_, a)| {
            lowering.verdict(match a {
                bulkhead_model::Action::Allow => Verdict::Allow,
                bulkhead_model::Action::Block => Verdict::Block,
            })
        })
        .collect();
    let owners: Vec<Arc<str>> = c
        .winners
        .iter()
        .map(|(id, _)| counter_owner(id.as_str()))
        .collect();
    let lens: Vec<usize> = key.iter().map(|f| f.len()).collect();
    let mut out: Vec<(Key, Option<NftVerdict>)> = Vec::with_capacity(c.region_count());
    let mut owned: Vec<(Key, Arc<str>)> = Vec::with_capacity(c.region_count());
    c.for_each_region(|ranges, winner| {
        let k: Key = ranges
            .iter()
            .zip(&lens)
            .map(|(&(lo, hi), &len)| (KeyBytes::be(lo, len), KeyBytes::be(hi, len)))
            .collect();
        owned.push((k.clone(), owners[winner as usize].clone()));
        out.push((k, Some(verdicts[winner as usize].clone())));
    });
    debug_assert!(out.windows(2).all(|w| w[0].0 < w[1].0));
    (out.into_iter().collect(), owned.into_iter().collect())
}
