//! The rule boxes and segment plans of one endpoint's host-firewall lists,
//! kept between one-rule changes ([`super::incremental`]) so that a change
//! does not rebuild the boxes of every rule of a 10k-rule list, sort the
//! list, or plan it twice.
//!
//! Contract: a [`RuleLists`] is only ever used with the one endpoint it
//! was filled for, and between two uses the endpoint's rules change only
//! through the incremental path that updates it (the engine drops it
//! whenever it programs the firewall in full, and when a change of the
//! endpoint's switch rules moves indices without it). It checks what it
//! can: the rule count it was built for; anything else it does not handle
//! is rebuilt from the rules. Each kept list is exactly what
//! [`crate::segment::runs`] builds for the same rules (boxes, winners,
//! plan), plus each box's precedence key, so an inserted rule's place is a
//! binary search. A list planned as one run also keeps its [`Slack`],
//! which proves most one-box changes leave it one run without planning
//! its 100k boxes again (`slack.rs`). Keys carry the rule's index in the
//! endpoint's whole rule list; an insertion or removal at index `p`
//! shifts the later ones, in every kept list, so keys stay exact. Also here: how two rule lists
//! differ by one rule, and whether the segment plan survives it.

use std::ops::Range;

use bulkhead_model::{AclRule, Action, Direction, RuleId};

use crate::boxes::{is_full, rule_box, Dim, RuleBox};
use crate::endpoint::precedence;
use crate::matrix::EnforcementPoint;
use crate::regions::ProtoClass;
use crate::segment::{plan, plan_skipping, Runs};

use super::slack::Slack;

/// A rule's precedence key ([`precedence`]): lower wins.
pub(crate) type PrecKey = (u16, u8, usize);

/// One list: [`Runs`], the precedence key of each box, and, while the
/// list is planned as one run, its [`Slack`].
#[derive(Debug, Clone)]
pub(crate) struct Kept {
    pub runs: Runs,
    pub keys: Vec<PrecKey>,
    pub slack: Option<Box<Slack>>,
}

/// The kept lists of one endpoint (see the module doc).
#[derive(Debug, Clone, Default)]
pub struct RuleLists {
    /// The number of rules (all points and directions) the lists hold.
    len: usize,
    lists: Vec<((Direction, bool, ProtoClass), Kept)>,
}

impl RuleLists {
    /// Drops every kept list.
    pub fn clear(&mut self) {
        self.len = 0;
        self.lists.clear();
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.lists.is_empty()
    }

    /// Forgets everything unless it was kept for a list of `len` rules.
    pub(crate) fn check(&mut self, len: usize) {
        if self.len != len {
            self.clear();
        }
    }

    /// The kept list of a key, taken out (put back with [`RuleLists::put`]).
    pub(crate) fn take(&mut self, key: (Direction, bool, ProtoClass)) -> Option<Kept> {
        let i = self.lists.iter().position(|(k, _)| *k == key)?;
        Some(self.lists.swap_remove(i).1)
    }

    pub(crate) fn put(&mut self, key: (Direction, bool, ProtoClass), kept: Kept) {
        self.lists.push((key, kept));
    }

    /// Every kept list's keys for a rule inserted at index `p` of a list
    /// that now holds `len` rules.
    pub(crate) fn inserted(&mut self, p: usize, len: usize) {
        self.shift(|i| if i >= p { i + 1 } else { i });
        self.len = len;
    }

    /// Every kept list's keys for the rule at index `p` removed, leaving
    /// `len` rules.
    pub(crate) fn removed(&mut self, p: usize, len: usize) {
        self.shift(|i| if i > p { i - 1 } else { i });
        self.len = len;
    }

    /// Panics unless every kept list is what [`build`] makes of `rules`
    /// (debug builds check this after every change).
    #[cfg(debug_assertions)]
    pub(crate) fn assert_built_from(&self, rules: &[AclRule], point: EnforcementPoint) {
        assert_eq!(self.len, rules.len(), "kept lists: rule count");
        for ((direction, v4, class), kept) in &self.lists {
            let (direction, v4, class) = (*direction, *v4, *class);
            let fresh = build(rules, point, direction, v4, class);
            let same = fresh.keys == kept.keys
                && fresh.runs.boxes == kept.runs.boxes
                && fresh.runs.winners == kept.runs.winners
                && fresh.runs.runs == kept.runs.runs;
            assert!(
                same,
                "kept list {direction:?} v4={v4} {class:?} differs from a build"
            );
        }
    }

    fn shift(&mut self, f: impl Fn(usize) -> usize) {
        for (_, kept) in &mut self.lists {
            for k in &mut kept.keys {
                k.2 = f(k.2);
            }
        }
    }
}

/// [`crate::segment::runs`] of `rules`' list for one point, direction,
/// family and class, with the boxes' keys.
pub(crate) fn build(
    rules: &[AclRule],
    point: EnforcementPoint,
    direction: Direction,
    v4: bool,
    class: ProtoClass,
) -> Kept {
    let mut ordered: Vec<(PrecKey, &AclRule)> = rules
        .iter()
        .enumerate()
        .filter(|(_, r)| r.direction == direction && EnforcementPoint::of(r.rule_type) == point)
        .map(|(i, r)| (precedence(r, i), r))
        .collect();
    ordered.sort_unstable_by_key(|(k, _)| *k);
    let (mut boxes, mut winners, mut keys) = (Vec::new(), Vec::new(), Vec::new());
    for (key, rule) in ordered {
        if let Some(b) = rule_box(rule, direction, v4, class) {
            let full = is_full(&b);
            boxes.push(b);
            winners.push((rule.id.clone(), rule.action));
            keys.push(key);
            if full {
                break;
            }
        }
    }
    let (runs, slack) = planned(&boxes);
    Kept {
        runs: Runs {
            boxes,
            winners,
            runs,
        },
        keys,
        slack,
    }
}

/// [`plan`] of `boxes`, and their [`Slack`] when that is one run (the
/// slack's pass is then the plan: one run needs no relaxing or merging).
fn planned(boxes: &[RuleBox]) -> (Vec<Range<usize>>, Option<Box<Slack>>) {
    match Slack::of(boxes.iter()) {
        Some(slack) => (one_run(boxes.len()), Some(Box::new(slack))),
        None => (plan(boxes), None),
    }
}

/// The plan of `len` boxes in one run.
fn one_run(len: usize) -> Vec<Range<usize>> {
    (len > 0).then_some(0..len).into_iter().collect()
}

/// What [`insert`] made of a kept list.
enum Inserted {
    /// The list with the box at `q`; `before` is its plan without it.
    At {
        kept: Kept,
        q: usize,
        before: Vec<Range<usize>>,
    },
    /// Shadowed by the list's last, full, box: the list is unchanged.
    Shadowed(Kept),
    /// The box covers its whole class: the list's tail would change (not
    /// handled).
    Full,
}

/// A kept list with the box `b` of a rule inserted (key `key`, keys
/// already shifted).
fn insert(mut kept: Kept, key: PrecKey, b: RuleBox, winner: (RuleId, Action)) -> Inserted {
    if is_full(&b) {
        return Inserted::Full;
    }
    let q = kept.keys.partition_point(|k| *k < key);
    if q == kept.keys.len() && kept.runs.boxes.last().is_some_and(is_full) {
        return Inserted::Shadowed(kept);
    }
    // A one-run list whose slack admits the box stays one run; a list
    // planned as one run is planned again with its slack; a list already
    // cut is planned in full (its slack would stop at its first cut).
    let was_one_run = kept.runs.runs.len() <= 1;
    let admitted = kept.slack.as_mut().is_some_and(|s| s.insert(q, &b));
    kept.keys.insert(q, key);
    kept.runs.boxes.insert(q, b);
    kept.runs.winners.insert(q, winner);
    let after = if admitted {
        one_run(kept.runs.boxes.len())
    } else if was_one_run {
        let (runs, slack) = planned(&kept.runs.boxes);
        kept.slack = slack;
        runs
    } else {
        kept.slack = None;
        plan(&kept.runs.boxes)
    };
    let before = std::mem::replace(&mut kept.runs.runs, after);
    Inserted::At { kept, q, before }
}

/// A kept list without box `q`, given the plan of the list without it.
pub(crate) fn remove(mut kept: Kept, q: usize, plan_without: Vec<Range<usize>>) -> Kept {
    let b = &kept.runs.boxes[q];
    if !kept.slack.as_mut().is_some_and(|s| s.remove(q, b)) {
        kept.slack = None;
    }
    kept.keys.remove(q);
    kept.runs.boxes.remove(q);
    kept.runs.winners.remove(q);
    kept.runs.runs = plan_without;
    kept
}

/// The plan of a kept list without box `q`.
fn plan_without(kept: &Kept, q: usize) -> Vec<Range<usize>> {
    let boxes = &kept.runs.boxes;
    match &kept.slack {
        Some(s) if s.removable(q, &boxes[q]) => one_run(boxes.len() - 1),
        _ => plan_skipping(boxes, Some(q)),
    }
}

/// One rule inserted into or removed from an endpoint's rules.
pub(crate) struct Change<'a> {
    /// The rules with it.
    pub big: &'a [AclRule],
    pub rule: &'a AclRule,
    /// Inserted (else removed).
    pub added: bool,
    /// Its index in `big`.
    pub p: usize,
}

/// What [`with_rule`] found for one list.
pub(crate) enum WithRule {
    /// The list with the rule (taken out of the kept lists), the rule's box
    /// index in it, and the plan of the list without it.
    Changed(Kept, usize, Vec<Range<usize>>),
    /// The rule is shadowed: the list is the same with or without it.
    Same,
    /// Not handled incrementally.
    Unhandled,
}

/// The list of `key` with the changed rule (whose box there is `b`), from
/// the kept lists when they hold it (before an insert: the list without the
/// rule, which gets it; before a removal: the list with it), else built.
pub(crate) fn with_rule(
    lists: &mut RuleLists,
    key: (Direction, bool, ProtoClass),
    change: &Change<'_>,
    b: RuleBox,
) -> WithRule {
    let rule = change.rule;
    let position = |k: &Kept| k.runs.winners.iter().position(|(id, _)| *id == rule.id);
    let kept_big = match lists.take(key) {
        Some(small) if change.added => {
            let winner = (rule.id.clone(), rule.action);
            return match insert(small, precedence(rule, change.p), b, winner) {
                Inserted::At { kept, q, before } => WithRule::Changed(kept, q, before),
                Inserted::Shadowed(same) => {
                    lists.put(key, same);
                    WithRule::Same
                }
                Inserted::Full => WithRule::Unhandled,
            };
        }
        Some(kept_big) => kept_big,
        None => build(
            change.big,
            EnforcementPoint::HostFirewall,
            key.0,
            key.1,
            key.2,
        ),
    };
    match position(&kept_big) {
        Some(q) => {
            let small = plan_without(&kept_big, q);
            WithRule::Changed(kept_big, q, small)
        }
        None => {
            lists.put(key, kept_big);
            WithRule::Same
        }
    }
}

/// `(the longer list, the rule only it has, whether that is `new`, its
/// index in the longer list)` when the rules `old` and `new` are equal but
/// for one inserted rule; at index `at` if the caller says so (checked in
/// debug builds only: comparing 10k rules is milliseconds).
pub(crate) fn one_rule_apart<'a>(
    old: &'a [AclRule],
    new: &'a [AclRule],
    at: Option<usize>,
) -> Option<(&'a [AclRule], &'a AclRule, bool, usize)> {
    let (s, g, added) = match new.len().checked_sub(old.len()) {
        Some(1) => (old, new, true),
        _ if old.len().checked_sub(new.len()) == Some(1) => (new, old, false),
        _ => return None,
    };
    let apart = |p: usize| s[..p] == g[..p] && s[p..] == g[p + 1..];
    let p = match at {
        Some(p) if p < g.len() => {
            debug_assert!(apart(p), "rules not one apart at {p}");
            p
        }
        Some(_) => return None,
        None => {
            let p = s.iter().zip(g).position(|(x, y)| x != y).unwrap_or(s.len());
            if s[p..] != g[p + 1..] {
                return None;
            }
            p
        }
    };
    Some((g, &g[p], added, p))
}

/// The segment (run index) that holds box `q` of `big`, when the list
/// without that box (planned as `small`) is cut into the same runs
/// (shifted past it) and that run keeps a rule.
pub(crate) fn same_plan(big: &Runs, q: usize, small: &[Range<usize>]) -> Option<usize> {
    if is_full(&big.boxes[q]) {
        return None;
    }
    let k = big.runs.iter().position(|r| r.contains(&q))?;
    let shifted: Vec<_> = big
        .runs
        .iter()
        .map(|r| {
            let f = |i: usize| if i > q { i - 1 } else { i };
            f(r.start)..f(r.end)
        })
        .collect();
    (shifted == small && !small[k].is_empty()).then_some(k)
}

/// [`run_dims`] of `boxes` without box `at`.
pub(crate) fn dims_without(boxes: &[RuleBox], at: usize) -> Vec<Dim> {
    Dim::ALL
        .into_iter()
        .filter(|d| {
            *d == Dim::Proto
                || boxes
                    .iter()
                    .enumerate()
                    .any(|(j, b)| j != at && b[*d as usize].is_some())
        })
        .collect()
}
