//! The ACL classifier: a priority-ordered rule list (one direction, one
//! enforcement point, one address family, one protocol class) becomes
//! disjoint boxes in (l4proto × saddr × daddr × sport × dport), each carrying
//! the winning rule; points no rule covers are absent.
//!
//! Invariants: only dimensions some applicable rule constrains are used,
//! always in the fixed order proto, saddr, daddr, sport, dport (proto is
//! always used, so a key is never empty); `Ported` covers protocols 6, 17,
//! 132, 136 and may use ports, `Portless` covers every other protocol, never
//! uses ports, and ignores rules with ports. A region may span values outside
//! its class's protocol domain (packets of those protocols never reach the
//! map). Regions are emitted in lexicographic order and never overlap.
//!
//! Algorithm: recursive sweep. On the current dimension, the boundaries of
//! the covering rules give elementary intervals; for each, the rules active
//! there (kept in precedence order, cut after the first rule that is
//! unconstrained on all remaining dimensions) are classified on the next
//! dimension; adjacent intervals with identical results merge. Results are
//! hash-consed and memoised by rule set, so the result is a DAG that
//! [`Classification::lookup`] walks with one binary search per dimension.

use std::collections::{BTreeSet, HashMap};

use bulkhead_model::{AclRule, Action, Cidr, Direction, Protocol, RuleId};

use crate::error::PolicyError;
use crate::ir::Field;
use crate::packet::{is_ported, PORTED_PROTOCOLS};

/// The most regions (or DAG entries) one ACL may need.
pub const MAX_REGIONS: usize = 2_000_000;

/// A classification dimension, in key order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dim {
    Proto,
    Saddr,
    Daddr,
    Sport,
    Dport,
}

impl Dim {
    pub const ALL: [Dim; 5] = [Dim::Proto, Dim::Saddr, Dim::Daddr, Dim::Sport, Dim::Dport];

    /// The nftables field a dimension loads.
    pub fn field(self, v4: bool) -> Field {
        match (self, v4) {
            (Dim::Proto, _) => Field::L4Proto,
            (Dim::Saddr, true) => Field::Saddr4,
            (Dim::Saddr, false) => Field::Saddr6,
            (Dim::Daddr, true) => Field::Daddr4,
            (Dim::Daddr, false) => Field::Daddr6,
            (Dim::Sport, _) => Field::Sport,
            (Dim::Dport, _) => Field::Dport,
        }
    }
}

/// Protocols with ports vs the rest: they get separate maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProtoClass {
    Ported,
    Portless,
}

impl ProtoClass {
    pub fn of(protocol: u8) -> Self {
        if is_ported(protocol) {
            ProtoClass::Ported
        } else {
            ProtoClass::Portless
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProtoClass::Ported => "ported",
            ProtoClass::Portless => "portless",
        }
    }
}

type Intervals = Vec<(u128, u128)>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum NodeRef {
    Empty,
    Leaf(u32),
    Inner(u32),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Node {
    level: usize,
    entries: Vec<(u128, u128, NodeRef)>,
}

/// One disjoint box: a range per used dimension, and the winning rule's
/// index into [`Classification::winners`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    pub ranges: Vec<(u128, u128)>,
    pub winner: u32,
}

/// The classified form of one rule list.
#[derive(Debug, Clone)]
pub struct Classification {
    pub v4: bool,
    pub class: ProtoClass,
    /// Used dimensions, in key order.
    pub dims: Vec<Dim>,
    /// Rule id and action by precedence rank.
    pub winners: Vec<(RuleId, Action)>,
    domains: Vec<Intervals>,
    nodes: Vec<Node>,
    root: NodeRef,
}

fn cidr_range(c: &Cidr) -> (u128, u128) {
    let v = |ip: std::net::IpAddr| match ip {
        std::net::IpAddr::V4(a) => u128::from(u32::from(a)),
        std::net::IpAddr::V6(a) => u128::from(a),
    };
    (v(c.network()), v(c.last()))
}

fn merged(mut v: Intervals) -> Intervals {
    v.sort_unstable();
    let mut out: Intervals = Vec::with_capacity(v.len());
    for (lo, hi) in v {
        match out.last_mut() {
            Some(last) if last.1 == u128::MAX || lo <= last.1 + 1 => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

/// The box a rule covers, per dimension (`None` = unconstrained), or `None`
/// if the rule cannot match this family/class at all.
fn rule_box(
    rule: &AclRule,
    direction: Direction,
    v4: bool,
    class: ProtoClass,
) -> Option<[Option<Intervals>; 5]> {
    let applies = match class {
        ProtoClass::Ported => rule.protocol == Protocol::Any || rule.protocol.has_ports(),
        ProtoClass::Portless => !rule.has_ports() && !rule.protocol.has_ports(),
    };
    if !applies {
        return None;
    }
    let addrs = |l: &bulkhead_model::AddressList| -> Option<Option<Intervals>> {
        if l.is_any() {
            return Some(None);
        }
        let v: Intervals = l
            .items()
            .iter()
            .filter(|c| c.is_ipv4() == v4)
            .map(cidr_range)
            .collect();
        if v.is_empty() {
            None
        } else {
            Some(Some(merged(v)))
        }
    };
    let ports = |l: &bulkhead_model::PortList| -> Option<Intervals> {
        (!l.is_any()).then(|| {
            l.ranges()
                .iter()
                .map(|r| (u128::from(r.start), u128::from(r.end)))
                .collect()
        })
    };
    let (remote, local) = (
        addrs(&rule.remote_addresses)?,
        addrs(&rule.local_addresses)?,
    );
    let (rport, lport) = (ports(&rule.remote_ports), ports(&rule.local_ports));
    let proto = rule
        .protocol
        .number()
        .map(|n| vec![(u128::from(n), u128::from(n))]);
    Some(match direction {
        Direction::In => [proto, remote, local, rport, lport],
        Direction::Out => [proto, local, remote, lport, rport],
    })
}

fn domain(dim: Dim, v4: bool, class: ProtoClass) -> Intervals {
    match dim {
        Dim::Proto => {
            let ported: Intervals = PORTED_PROTOCOLS
                .iter()
                .map(|&p| (u128::from(p), u128::from(p)))
                .collect();
            match class {
                ProtoClass::Ported => ported,
                ProtoClass::Portless => {
                    let mut out = Vec::new();
                    let mut next = 0u128;
                    for (p, _) in ported {
                        out.push((next, p - 1));
                        next = p + 1;
                    }
                    out.push((next, 255));
                    out
                }
            }
        }
        Dim::Saddr | Dim::Daddr if v4 => vec![(0, u128::from(u32::MAX))],
        Dim::Saddr | Dim::Daddr => vec![(0, u128::MAX)],
        Dim::Sport | Dim::Dport => vec![(0, 65535)],
    }
}

struct Builder<'a> {
    boxes: Vec<[Option<Intervals>; 5]>,
    /// Per rule: the first level from which the rule constrains nothing.
    free_from: Vec<usize>,
    dims: &'a [Dim],
    domains: &'a [Intervals],
    nodes: Vec<Node>,
    intern: HashMap<Node, u32>,
    memo: HashMap<(usize, Vec<u32>), NodeRef>,
    entries: usize,
    acl: &'a str,
}

impl Builder<'_> {
    fn build(&mut self, level: usize, set: &[u32]) -> Result<NodeRef, PolicyError> {
        let Some(&first) = set.first() else {
            return Ok(NodeRef::Empty);
        };
        if self.free_from[first as usize] <= level {
            return Ok(NodeRef::Leaf(first));
        }
        let memo_key = (level, set.to_vec());
        if let Some(r) = self.memo.get(&memo_key) {
            return Ok(*r);
        }
        let dim = self.dims[level] as usize;
        let dom = &self.domains[level];
        let mut points: Vec<u128> = Vec::new();
        let mut events: Vec<(u128, u32)> = Vec::new();
        let mut active: BTreeSet<u32> = BTreeSet::new();
        for d in dom {
            points.push(d.0);
            points.extend(d.1.checked_add(1));
        }
        for &r in set {
            match &self.boxes[r as usize][dim] {
                None => {
                    active.insert(r);
                }
                Some(ivs) => {
                    for &(lo, hi) in ivs {
                        points.push(lo);
                        events.push((lo, r));
                        if let Some(end) = hi.checked_add(1) {
                            points.push(end);
                            events.push((end, r));
                        }
                    }
                }
            }
        }
        points.sort_unstable();
        points.dedup();
        events.sort_unstable();
        let mut entries: Vec<(u128, u128, NodeRef)> = Vec::new();
        let (mut ev, mut can_merge) = (0, false);
        for (i, &lo) in points.iter().enumerate() {
            while ev < events.len() && events[ev].0 <= lo {
                let r = events[ev].1;
                if !active.remove(&r) {
                    active.insert(r);
                }
                ev += 1;
            }
            if !dom.iter().any(|d| d.0 <= lo && lo <= d.1) {
                continue;
            }
            let hi = points.get(i + 1).map_or(u128::MAX, |p| p - 1);
            let mut sub: Vec<u32> = Vec::new();
            for &r in &active {
                sub.push(r);
                if self.free_from[r as usize] <= level + 1 {
                    break;
                }
            }
            let child = self.build(level + 1, &sub)?;
            match (child, entries.last_mut()) {
                (NodeRef::Empty, _) => can_merge = false,
                (c, Some(last)) if can_merge && last.2 == c => last.1 = hi,
                (c, _) => {
                    entries.push((lo, hi, c));
                    can_merge = true;
                }
            }
        }
        let full = (dom[0].0, dom[dom.len() - 1].1);
        let result = match entries.as_slice() {
            [] => NodeRef::Empty,
            [(lo, hi, c)] if (*lo, (*hi).min(full.1)) == full => *c,
            _ => self.intern(Node { level, entries })?,
        };
        self.memo.insert(memo_key, result);
        Ok(result)
    }

    fn intern(&mut self, node: Node) -> Result<NodeRef, PolicyError> {
        if let Some(&i) = self.intern.get(&node) {
            return Ok(NodeRef::Inner(i));
        }
        self.entries += node.entries.len();
        if self.entries > MAX_REGIONS {
            return Err(PolicyError::TooManyRegions {
                acl: self.acl.to_owned(),
                limit: MAX_REGIONS,
            });
        }
        let i = self.nodes.len() as u32;
        self.nodes.push(node.clone());
        self.intern.insert(node, i);
        Ok(NodeRef::Inner(i))
    }
}

/// Classifies `rules` (already in precedence order, all of one direction and
/// enforcement point) for one family and protocol class. `acl` names the
/// list in errors.
pub fn classify(
    rules: &[&AclRule],
    direction: Direction,
    v4: bool,
    class: ProtoClass,
    acl: &str,
) -> Result<Classification, PolicyError> {
    let mut boxes = Vec::new();
    let mut winners = Vec::new();
    for rule in rules {
        if let Some(b) = rule_box(rule, direction, v4, class) {
            boxes.push(b);
            winners.push((rule.id.clone(), rule.action));
        }
    }
    let dims: Vec<Dim> = Dim::ALL
        .into_iter()
        .enumerate()
        .filter(|(i, d)| *d == Dim::Proto || boxes.iter().any(|b| b[*i].is_some()))
        .map(|(_, d)| d)
        .collect();
    let domains: Vec<Intervals> = dims.iter().map(|d| domain(*d, v4, class)).collect();
    let free_from = boxes
        .iter()
        .map(|b| {
            dims.iter()
                .rposition(|d| b[*d as usize].is_some())
                .map_or(0, |p| p + 1)
        })
        .collect();
    let mut builder = Builder {
        boxes,
        free_from,
        dims: &dims,
        domains: &domains,
        nodes: Vec::new(),
        intern: HashMap::new(),
        memo: HashMap::new(),
        entries: 0,
        acl,
    };
    let all: Vec<u32> = (0..winners.len() as u32).collect();
    let root = builder.build(0, &all)?;
    let nodes = builder.nodes;
    let c = Classification {
        v4,
        class,
        dims,
        winners,
        domains,
        nodes,
        root,
    };
    if c.region_count() > MAX_REGIONS {
        return Err(PolicyError::TooManyRegions {
            acl: acl.to_owned(),
            limit: MAX_REGIONS,
        });
    }
    Ok(c)
}

impl Classification {
    /// The winning rule's index for a point given as values per [`Dim`]
    /// (indexed by `Dim as usize`).
    pub fn lookup(&self, values: &[u128; 5]) -> Option<u32> {
        let mut at = self.root;
        loop {
            match at {
                NodeRef::Empty => return None,
                NodeRef::Leaf(w) => return Some(w),
                NodeRef::Inner(i) => {
                    let node = &self.nodes[i as usize];
                    let v = values[self.dims[node.level] as usize];
                    let k = node.entries.partition_point(|e| e.0 <= v);
                    match k.checked_sub(1).map(|k| node.entries[k]) {
                        Some((_, hi, c)) if v <= hi => at = c,
                        _ => return None,
                    }
                }
            }
        }
    }

    /// Whether no point is covered.
    pub fn is_empty(&self) -> bool {
        self.root == NodeRef::Empty
    }

    /// The number of regions (saturating at `usize::MAX`).
    pub fn region_count(&self) -> usize {
        let mut memo: Vec<Option<usize>> = vec![None; self.nodes.len()];
        self.count(self.root, &mut memo)
    }

    fn count(&self, at: NodeRef, memo: &mut Vec<Option<usize>>) -> usize {
        match at {
            NodeRef::Empty => 0,
            NodeRef::Leaf(_) => 1,
            NodeRef::Inner(i) => {
                if let Some(n) = memo[i as usize] {
                    return n;
                }
                let n = self.nodes[i as usize]
                    .entries
                    .iter()
                    .fold(0usize, |acc, e| acc.saturating_add(self.count(e.2, memo)));
                memo[i as usize] = Some(n);
                n
            }
        }
    }

    /// The disjoint regions, in lexicographic order of their ranges.
    pub fn regions(&self) -> Vec<Region> {
        let mut ranges: Vec<(u128, u128)> = self
            .domains
            .iter()
            .map(|d| (d[0].0, d[d.len() - 1].1))
            .collect();
        let mut out = Vec::new();
        self.walk(self.root, &mut ranges, &mut out);
        out
    }

    fn walk(&self, at: NodeRef, ranges: &mut Vec<(u128, u128)>, out: &mut Vec<Region>) {
        match at {
            NodeRef::Empty => {}
            NodeRef::Leaf(w) => out.push(Region {
                ranges: ranges.clone(),
                winner: w,
            }),
            NodeRef::Inner(i) => {
                let node = &self.nodes[i as usize];
                let saved = ranges[node.level];
                for &(lo, hi, c) in &node.entries {
                    ranges[node.level] = (lo, hi);
                    self.walk(c, ranges, out);
                }
                ranges[node.level] = saved;
            }
        }
    }
}
