//! The ACL classifier: a priority-ordered run of rules (one direction, one
//! enforcement point, one address family, one protocol class; a whole list
//! or one of its segments, see [`crate::segment`]) becomes disjoint boxes in
//! (l4proto × saddr × daddr × sport × dport), each carrying the winning rule;
//! points no rule covers are absent.
//!
//! Invariants: only dimensions some rule of the run constrains are used,
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

use std::collections::HashMap;

use bulkhead_model::{AclRule, Action, Direction, RuleId};

use crate::boxes::{domain, rule_box, FastBuild, Intervals, RuleBox};
pub use crate::boxes::{Dim, ProtoClass};
use crate::error::PolicyError;

/// The most regions (or DAG entries) one ACL may need.
pub const MAX_REGIONS: usize = 2_000_000;

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

/// The classified form of one run of rules.
#[derive(Debug, Clone)]
pub struct Classification {
    pub v4: bool,
    pub class: ProtoClass,
    /// Used dimensions, in key order.
    pub dims: Vec<Dim>,
    /// Rule id and action by precedence rank within the run.
    pub winners: Vec<(RuleId, Action)>,
    domains: Vec<Intervals>,
    nodes: Vec<Node>,
    root: NodeRef,
}

struct Builder<'a> {
    boxes: &'a [RuleBox],
    /// Per rule: the first level from which the rule constrains nothing.
    free_from: Vec<usize>,
    dims: &'a [Dim],
    domains: &'a [Intervals],
    nodes: Vec<Node>,
    intern: HashMap<Node, u32, FastBuild>,
    /// Results by `[level, rule set...]`; single rules by `(level, rule)`.
    memo: HashMap<Vec<u32>, NodeRef, FastBuild>,
    single: HashMap<(usize, u32), NodeRef, FastBuild>,
    memo_key: Vec<u32>,
    entries: usize,
    acl: &'a str,
}

/// `active` := `active` symmetric-difference `toggles` (both sorted).
fn toggle(active: &mut Vec<u32>, toggles: &[u32], scratch: &mut Vec<u32>) {
    scratch.clear();
    let (mut i, mut j) = (0, 0);
    while i < active.len() || j < toggles.len() {
        match (active.get(i), toggles.get(j)) {
            (Some(a), Some(t)) if a == t => (i, j) = (i + 1, j + 1),
            (Some(a), Some(t)) if a > t => {
                scratch.push(*t);
                j += 1;
            }
            (Some(a), _) => {
                scratch.push(*a);
                i += 1;
            }
            (None, Some(t)) => {
                scratch.push(*t);
                j += 1;
            }
            (None, None) => unreachable!(),
        }
    }
    std::mem::swap(active, scratch);
}

impl Builder<'_> {
    fn build(&mut self, level: usize, set: &[u32]) -> Result<NodeRef, PolicyError> {
        let Some(&first) = set.first() else {
            return Ok(NodeRef::Empty);
        };
        if self.free_from[first as usize] <= level {
            return Ok(NodeRef::Leaf(first));
        }
        if set.len() == 1 {
            if let Some(r) = self.single.get(&(level, first)) {
                return Ok(*r);
            }
        } else {
            self.memo_key.clear();
            self.memo_key.push(level as u32);
            self.memo_key.extend_from_slice(set);
            if let Some(r) = self.memo.get(self.memo_key.as_slice()) {
                return Ok(*r);
            }
        }
        let dim = self.dims[level] as usize;
        let dom = &self.domains[level];
        let mut active: Vec<u32> = Vec::new();
        let mut events: Vec<(u128, u32)> = Vec::new();
        for d in dom {
            events.push((d.0, u32::MAX));
            if let Some(end) = d.1.checked_add(1) {
                events.push((end, u32::MAX));
            }
        }
        for &r in set {
            match &self.boxes[r as usize][dim] {
                None => active.push(r),
                Some(ivs) => {
                    for &(lo, hi) in ivs {
                        events.push((lo, r));
                        if let Some(end) = hi.checked_add(1) {
                            events.push((end, r));
                        }
                    }
                }
            }
        }
        events.sort_unstable();
        let mut entries: Vec<(u128, u128, NodeRef)> = Vec::new();
        let (mut toggles, mut scratch, mut sub) = (Vec::new(), Vec::new(), Vec::new());
        let (mut ev, mut can_merge) = (0, false);
        while ev < events.len() {
            let lo = events[ev].0;
            toggles.clear();
            while ev < events.len() && events[ev].0 == lo {
                if events[ev].1 != u32::MAX {
                    toggles.push(events[ev].1);
                }
                ev += 1;
            }
            if !toggles.is_empty() {
                toggle(&mut active, &toggles, &mut scratch);
            }
            if !dom.iter().any(|d| d.0 <= lo && lo <= d.1) {
                continue;
            }
            let hi = events.get(ev).map_or(u128::MAX, |e| e.0 - 1);
            sub.clear();
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
        if set.len() == 1 {
            self.single.insert((level, first), result);
        } else {
            let mut key = Vec::with_capacity(set.len() + 1);
            key.push(level as u32);
            key.extend_from_slice(set);
            self.memo.insert(key, result);
        }
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

/// Classifies a run of rule boxes (in precedence order; `winners[i]` is the
/// rule of `boxes[i]`). `acl` names the list in errors.
pub(crate) fn classify_boxes(
    boxes: &[RuleBox],
    winners: Vec<(RuleId, Action)>,
    v4: bool,
    class: ProtoClass,
    acl: &str,
) -> Result<Classification, PolicyError> {
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
        intern: HashMap::default(),
        memo: HashMap::default(),
        single: HashMap::default(),
        memo_key: Vec::new(),
        entries: 0,
        acl,
    };
    let all: Vec<u32> = (0..boxes.len() as u32).collect();
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

/// Classifies `rules` (already in precedence order, all of one direction and
/// enforcement point) for one family and protocol class, as one run (no
/// segments: see [`crate::segment::segment`] for what the compiler uses).
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
    classify_boxes(&boxes, winners, v4, class, acl)
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
        let mut out = Vec::new();
        self.for_each_region(|ranges, winner| {
            out.push(Region {
                ranges: ranges.to_vec(),
                winner,
            })
        });
        out
    }

    /// Calls `f(ranges, winner)` for each region, in lexicographic order,
    /// without allocating per region.
    pub fn for_each_region(&self, mut f: impl FnMut(&[(u128, u128)], u32)) {
        let mut ranges: Vec<(u128, u128)> = self
            .domains
            .iter()
            .map(|d| (d[0].0, d[d.len() - 1].1))
            .collect();
        self.walk(self.root, &mut ranges, &mut f);
    }

    fn walk(
        &self,
        at: NodeRef,
        ranges: &mut [(u128, u128)],
        f: &mut impl FnMut(&[(u128, u128)], u32),
    ) {
        match at {
            NodeRef::Empty => {}
            NodeRef::Leaf(w) => f(ranges, w),
            NodeRef::Inner(i) => {
                let node = &self.nodes[i as usize];
                let saved = ranges[node.level];
                for &(lo, hi, c) in &node.entries {
                    ranges[node.level] = (lo, hi);
                    self.walk(c, ranges, f);
                }
                ranges[node.level] = saved;
            }
        }
    }
}
