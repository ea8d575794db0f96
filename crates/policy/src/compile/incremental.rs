//! One ACL rule added to or removed from an endpoint firewall, compiled as
//! the operations it needs and nothing else: no recompile of the table, no
//! diff of two tables.
//!
//! Contract: for a table `t == compile_endpoint_firewall(endpoints)` where
//! endpoint `ifname` has policy `old`, [`firewall_rule_change`] returns
//! either `None` (not a case it handles: the caller compiles in full and
//! diffs) or ops with `apply(t, ops) == compile_endpoint_firewall(endpoints
//! with new)`, exactly (property test `incremental` in
//! `tests/incremental.rs`; the engine checks it against a full compile in
//! debug builds).
//!
//! Handled: `new` is `old` with one host-firewall rule inserted or removed
//! (same facts, same default rules), and in every list (family, protocol
//! class) the rule is part of, it lands in a segment that is two-level
//! (keyed on an address) before and after, with the same lead dimension,
//! and the list's other segments keep their rules (the segment plan is
//! unchanged). Then only the lead map of that segment changes, and only
//! inside the lead intervals the rule covers, widened to the map elements
//! they overlap and to one adjacent element on each side: a point's rule
//! list depends only on the rules covering it, so outside those intervals
//! nothing changes, and past an adjacent element the region edges of the
//! old map stay edges of the new one (the element beyond was not merged
//! with it before and its list did not change). Those windows are re-cut
//! from the rules overlapping them ([`TwoLevel::build_in`]); elements that
//! come out equal (key, verdict, counter owner) are kept, so their counters
//! keep counting; region chains are named by their content, so a new list
//! finds an existing chain by name, and a chain no element enters any more
//! is deleted. Anything else (a value set to create or drop, a name clash)
//! returns `None`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use bulkhead_model::{AclMode, AclRule};

pub use super::kept::RuleLists;

use super::kept::{self, dims_without, one_rule_apart, same_plan, Change, WithRule};
use super::twolevel::{lead_dim, TwoLevel};
use super::{map_base, FIREWALL};
use crate::boxes::rule_box;
use crate::classifier::acl_name;
use crate::diff::Op;
use crate::endpoint::Policy;
use crate::error::PolicyError;
use crate::ir::{from_be, Key, KeyBytes, Match, Set, Table, Verdict};
use crate::matrix::EnforcementPoint;
use crate::regions::ProtoClass;
use crate::segment::run_dims;

const POINT: EnforcementPoint = EnforcementPoint::HostFirewall;

/// The ops that turn `table`, the compiled endpoint firewall holding
/// endpoint `ifname` with policy `old`, into the one holding it with `new`,
/// when `new` differs from `old` by one host-firewall rule; `None` when
/// the change is not one this module handles (see the module doc).
pub fn firewall_rule_change(
    table: &Table,
    ifname: &str,
    old: &Policy<'_>,
    new: &Policy<'_>,
) -> Result<Option<Vec<Op>>, PolicyError> {
    if old.facts() != new.facts() {
        return Ok(None);
    }
    firewall_rule_change_from(table, ifname, old.rules(), new)
}

/// [`firewall_rule_change`] for an `old` policy with `new`'s facts and
/// the rules `old_rules` (the engine's previous record: no policy built
/// from its rules).
pub fn firewall_rule_change_from(
    table: &Table,
    ifname: &str,
    old_rules: &[AclRule],
    new: &Policy<'_>,
) -> Result<Option<Vec<Op>>, PolicyError> {
    let mut lists = RuleLists::default();
    firewall_rule_change_kept(table, ifname, old_rules, new, &mut lists, None)
}

/// [`firewall_rule_change_from`] with the endpoint's rule lists kept
/// between calls in `lists` ([`RuleLists`]: updated by a change handled
/// here, emptied by one that is not, or by an error). `at`, when the
/// caller knows it, is the index at which `new`'s rules have one rule
/// inserted into or removed from `old_rules` (the engine's add and
/// remove): the lists are then not compared rule by rule (debug builds
/// still check it).
pub fn firewall_rule_change_kept(
    table: &Table,
    ifname: &str,
    old_rules: &[AclRule],
    new: &Policy<'_>,
    lists: &mut RuleLists,
    at: Option<usize>,
) -> Result<Option<Vec<Op>>, PolicyError> {
    lists.check(old_rules.len());
    let out = change_kept(table, ifname, (old_rules, at), new, lists);
    if !matches!(out, Ok(Some(_))) {
        lists.clear();
    }
    #[cfg(debug_assertions)]
    if matches!(out, Ok(Some(_))) {
        lists.assert_built_from(new.rules(), POINT);
    }
    out
}

fn change_kept(
    table: &Table,
    ifname: &str,
    (old_rules, at): (&[AclRule], Option<usize>),
    new: &Policy<'_>,
    lists: &mut RuleLists,
) -> Result<Option<Vec<Op>>, PolicyError> {
    if !new.has_point(POINT) {
        return Ok(None);
    }
    let Some((big, rule, added, p)) = one_rule_apart(old_rules, new.rules(), at) else {
        return Ok(None);
    };
    if EnforcementPoint::of(rule.rule_type) != POINT {
        return Ok(None);
    }
    let direction = rule.direction;
    // With equal facts the default rules differ only when replace mode's
    // "block unmatched" comes or goes with the point's first or last rule
    // (`profile::default_rules`).
    let had = old_rules
        .iter()
        .any(|r| EnforcementPoint::of(r.rule_type) == POINT);
    if new.facts().acl_mode == AclMode::Replace && had != new.has_custom(POINT) {
        return Ok(None);
    }
    // The list with the rule; the list without it is the same boxes with
    // that one left out (plan and regions skip it: nothing is copied).
    // Both come from the kept lists when there are any.
    if added {
        lists.inserted(p, big.len());
    }
    let mut ops = Vec::new();
    for v4 in [true, false] {
        for class in [ProtoClass::Ported, ProtoClass::Portless] {
            let Some(rule_b) = rule_box(rule, direction, v4, class) else {
                continue;
            };
            let key = (direction, v4, class);
            let change = Change {
                big,
                rule,
                added,
                p,
            };
            let (kept_big, q, small) = match kept::with_rule(lists, key, &change, rule_b) {
                WithRule::Changed(kept_big, q, small) => (kept_big, q, small),
                // Shadowed by an earlier rule that covers the whole class:
                // the list is the same with or without it.
                WithRule::Same => continue,
                WithRule::Unhandled => return Ok(None),
            };
            let rb = &kept_big.runs;
            let Some(k) = same_plan(rb, q, &small) else {
                return Ok(None);
            };
            let acl = acl_name(POINT, direction, v4, class);
            let name = format!("{}_{k}", map_base(ifname, &acl));
            let Some(set) = table.sets.get(&name) else {
                return Ok(None);
            };
            let run = rb.runs[k].clone();
            let boxes = &rb.boxes[run.clone()];
            let at = q - run.start;
            let lead = match (
                lead_dim(direction, &run_dims(boxes), 0),
                lead_dim(direction, &dims_without(boxes, at), 0),
            ) {
                (Some(a), Some(b)) if a == b => a,
                _ => return Ok(None),
            };
            let next = format!("{name}_next");
            let label = format!("{ifname} {acl}");
            // Adding: the regions of the run with the rule; removing: of
            // the run without it.
            let two = TwoLevel {
                boxes,
                winners: &rb.winners[run],
                lead,
                v4,
                class,
                lowering: FIREWALL.towards(direction),
                prefix: &name,
                next: &next,
                acl: &label,
                exclude: (!added).then_some(at),
            };
            let span: Vec<(u128, u128)> = rb.boxes[q][lead as usize]
                .clone()
                .unwrap_or_else(|| vec![two.axis()]);
            match segment_ops(table, set, &two, &span)? {
                Some(o) => ops.extend(o),
                None => return Ok(None),
            }
            // Kept as the list is after the change.
            let after = if added {
                kept_big
            } else {
                kept::remove(kept_big, q, small)
            };
            lists.put(key, after);
        }
    }
    if !added {
        lists.removed(p, big.len() - 1);
    }
    Ok(Some(ops))
}

/// The lead interval of a one-field element key.
fn bounds(k: &Key) -> (u128, u128) {
    (from_be(&k[0].0), from_be(&k[0].1))
}

/// The windows to re-cut for a rule covering `span`: each interval widened
/// to the elements it overlaps and one adjacent element each side, merged.
fn windows(set: &Set, span: &[(u128, u128)], len: usize) -> Vec<(u128, u128)> {
    let key = |lo: u128, hi: u128| Key::one(KeyBytes::be(lo, len), KeyBytes::be(hi, len));
    // The last element starting before `v`, and the first starting at or after it.
    let before = |v: u128| {
        set.elements
            .range(..key(v, v))
            .next_back()
            .map(|(k, _)| bounds(k))
    };
    let from = |v: u128| {
        set.elements
            .range(key(v, v)..)
            .next()
            .map(|(k, _)| bounds(k))
    };
    let mut out: Vec<(u128, u128)> = Vec::new();
    for &(lo, hi) in span {
        let (mut wlo, mut whi) = (lo, hi);
        if let Some((a, b)) = before(lo) {
            if b >= lo {
                wlo = a;
            }
        }
        let last = match hi.checked_add(1) {
            Some(n) => before(n),
            None => set.elements.keys().next_back().map(bounds),
        };
        if let Some((_, b)) = last {
            whi = whi.max(b);
        }
        if let Some((a, b)) = before(wlo) {
            if b.checked_add(1) == Some(wlo) {
                wlo = a;
            }
        }
        if let Some(n) = whi.checked_add(1) {
            if let Some((a, b)) = from(n) {
                if a == n {
                    whi = b;
                }
            }
        }
        out.push((wlo, whi));
    }
    out.sort_unstable();
    let mut merged: Vec<(u128, u128)> = Vec::with_capacity(out.len());
    for (lo, hi) in out {
        match merged.last_mut() {
            Some(m) if lo <= m.1.saturating_add(1) => m.1 = m.1.max(hi),
            _ => merged.push((lo, hi)),
        }
    }
    merged
}

/// The region chain an element enters (`<map>_<hash>`; not the drop
/// chains, which blocks `goto` and every table keeps).
fn target<'a>(v: &'a Option<Verdict>, map: &str) -> Option<&'a str> {
    match v {
        Some(Verdict::Jump(c) | Verdict::Goto(c))
            if c.strip_prefix(map).is_some_and(|r| r.starts_with('_')) =>
        {
            Some(c)
        }
        _ => None,
    }
}

/// The ops that bring lead map `set` to `two`'s regions inside the windows
/// around `span`; `None` when that needs more than elements and region
/// chains (a value set).
fn segment_ops(
    table: &Table,
    set: &Set,
    two: &TwoLevel<'_>,
    span: &[(u128, u128)],
) -> Result<Option<Vec<Op>>, PolicyError> {
    let len = two.lead.field(two.v4).len();
    let key = |lo: u128, hi: u128| Key::one(KeyBytes::be(lo, len), KeyBytes::be(hi, len));
    let mut scratch = Table::new(table.family, &table.name);
    let mut dels: Vec<Key> = Vec::new();
    let mut adds: Vec<(Key, Option<Verdict>)> = Vec::new();
    let mut add_owners: Vec<(Key, Arc<str>)> = Vec::new();
    for (wlo, whi) in windows(set, span, len) {
        let (elements, owners) = two.build_in(&mut scratch, (wlo, whi))?;
        let owners: BTreeMap<Key, Arc<str>> = owners.into_iter().collect();
        let mut fresh: BTreeMap<Key, Option<Verdict>> = elements.into_iter().collect();
        for (k, v) in set.elements.range(key(wlo, wlo)..=key(whi, u128::MAX)) {
            let same = fresh.get(k) == Some(v) && owners.get(k) == set.owners.get(k);
            if same {
                fresh.remove(k);
            } else {
                dels.push(k.clone());
            }
        }
        for (k, v) in fresh {
            if let Some(o) = owners.get(&k) {
                add_owners.push((k.clone(), o.clone()));
            }
            adds.push((k, v));
        }
    }
    if !scratch.sets.is_empty() {
        return Ok(None);
    }
    // Region chains the new elements enter: existing (equal content) or new.
    let mut new_chains: BTreeSet<String> = BTreeSet::new();
    for (_, v) in &adds {
        let Some(c) = target(v, &set.name) else {
            continue;
        };
        match (table.chains.get(c), scratch.chains.get(c)) {
            (Some(have), Some(want)) if have.rules != want.rules => return Ok(None),
            (None, Some(_)) => {
                new_chains.insert(c.to_owned());
            }
            _ => {}
        }
    }
    // Region chains no element enters any more.
    let mut refs: HashMap<&str, i64> = HashMap::new();
    for k in &dels {
        if let Some(c) = set.elements.get(k).and_then(|v| target(v, &set.name)) {
            refs.insert(c, 0);
        }
    }
    for (_, v) in &adds {
        if let Some(c) = target(v, &set.name) {
            refs.remove(c);
        }
    }
    if !refs.is_empty() {
        // A chain stays if more elements enter it than are deleted: count
        // the deleted ones first (negative), then walk the map until every
        // candidate is seen entered once more than that (a 10k-rule lead
        // map holds tens of thousands of elements: no name parsing per
        // element, and usually an early stop).
        for k in &dels {
            if let Some(n) = set
                .elements
                .get(k)
                .and_then(|v| target(v, &set.name))
                .and_then(|c| refs.get_mut(c))
            {
                *n -= 1;
            }
        }
        // The few candidates in a list, compared from the end: region
        // chains of one map share their prefix and differ in the content
        // hash at the end, so a mismatch costs a byte or two, not a hash.
        let mut counts: Vec<(&str, i64)> = refs.iter().map(|(c, n)| (*c, *n)).collect();
        let mut open = counts.len();
        for v in set.elements.values() {
            let Some(Verdict::Jump(c) | Verdict::Goto(c)) = v else {
                continue;
            };
            let same = |k: &str| k.len() == c.len() && k.bytes().rev().eq(c.bytes().rev());
            if let Some((_, n)) = counts.iter_mut().find(|(k, _)| same(k)) {
                *n += 1;
                if *n == 1 {
                    open -= 1;
                    if open == 0 {
                        break;
                    }
                }
            }
        }
        refs = counts.into_iter().collect();
    }
    let gone: BTreeSet<&str> = refs
        .into_iter()
        .filter(|&(_, n)| n == 0)
        .map(|(c, _)| c)
        .collect();
    let uses_sets = |c: &str| {
        table.chains.get(c).is_some_and(|ch| {
            ch.rules
                .iter()
                .any(|r| r.matches.iter().any(|m| matches!(m, Match::Lookup { .. })))
        })
    };
    if gone.iter().any(|c| uses_sets(c)) {
        return Ok(None);
    }
    // The order `diff` uses: flush what goes, delete elements, delete
    // chains, declare chains, add elements, then the new chains' rules.
    let mut ops: Vec<Op> = Vec::new();
    for c in &gone {
        if table.chains.get(*c).is_some_and(|ch| !ch.rules.is_empty()) {
            ops.push(Op::FlushChain {
                name: (*c).to_owned(),
            });
        }
    }
    if !dels.is_empty() {
        ops.push(Op::DeleteElements {
            set: set.name.clone(),
            keys: dels,
        });
    }
    ops.extend(gone.iter().map(|c| Op::DeleteChain {
        name: (*c).to_owned(),
    }));
    ops.extend(new_chains.iter().map(|c| Op::AddChain {
        name: c.clone(),
        base: None,
    }));
    if !adds.is_empty() {
        ops.push(Op::AddElements {
            set: set.name.clone(),
            elements: adds,
            owners: add_owners,
        });
    }
    for c in &new_chains {
        let rules = &scratch.chains[c.as_str()].rules;
        if !rules.is_empty() {
            ops.push(Op::AddRules {
                chain: c.clone(),
                rules: rules.clone(),
            });
        }
    }
    Ok(Some(ops))
}
