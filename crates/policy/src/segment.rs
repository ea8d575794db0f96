//! Segments: one ordered rule list (one direction, enforcement point, family
//! and protocol class) cut into a few consecutive runs, each classified on
//! its own ([`crate::classify`]) and compiled to its own verdict map keyed
//! only by the dimensions its rules constrain. The maps are looked up in
//! precedence order and the first hit wins (a miss falls through to the next
//! lookup), which is first-match semantics because the runs are consecutive.
//!
//! Why: in one map, a rule that is unconstrained on a dimension other rules
//! cut finely (a port-only rule below thousands of address rules) is copied
//! into every interval of that dimension, so regions grow as rules × port
//! boundaries. Cut before that rule and both maps stay O(rules).
//!
//! Planning is greedy in precedence order and never classifies: a run keeps
//! per-dimension boundary sets and estimates its region count as the sum,
//! over its rules, of the rule's own boxes times the number of intervals of
//! every dimension the rule spans before its first address/port constraint
//! (and of l4proto, if it spans several protocols). A rule joins the current
//! run while the estimate stays ≤ [`BLOWUP`] × (own boxes + [`SLACK`]),
//! otherwise it starts a new run. Invariants: at most [`MAX_SEGMENTS`] runs
//! (if a pathological list needs more, the smallest adjacent pair of runs is
//! merged until it fits — larger maps, never more lookups; beyond 64 runs
//! the bound is first relaxed ×16 and the list re-planned); rules
//! after one that covers its whole class are dropped (shadowed); the plan
//! depends only on the boxes, so adding a rule inside a run leaves the other
//! runs, and their maps, untouched.

use std::collections::HashSet;
use std::ops::Range;

use bulkhead_model::{AclRule, Action, Direction, RuleId};

use crate::boxes::{is_full, rule_box, Dim, FastBuild, Intervals, RuleBox};
use crate::error::PolicyError;
use crate::regions::{classify_boxes, Classification, ProtoClass, MAX_REGIONS};

/// The most lookups (maps) per list.
pub const MAX_SEGMENTS: usize = 8;
/// The estimated blow-up a run may have over its rules' own boxes.
pub const BLOWUP: u64 = 4;
/// Above this many runs the bound is relaxed before neighbours are merged.
const RELAX_ABOVE: usize = 64;
/// Headroom for small runs (a handful of rules always share one map).
pub const SLACK: u64 = 16;

/// One list, classified as consecutive segments in precedence order.
#[derive(Debug, Clone)]
pub struct Segments {
    pub v4: bool,
    pub class: ProtoClass,
    /// Non-empty classifications, in lookup order.
    pub segments: Vec<Classification>,
}

impl Segments {
    /// The winning rule for a point (values per [`crate::regions::Dim`]):
    /// the first segment with a region there decides.
    pub fn lookup(&self, values: &[u128; 5]) -> Option<&(RuleId, Action)> {
        self.segments
            .iter()
            .find_map(|c| c.lookup(values).map(|w| &c.winners[w as usize]))
    }

    /// Whether no point is covered.
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Regions over all segments (= map elements).
    pub fn region_count(&self) -> usize {
        self.segments
            .iter()
            .fold(0usize, |n, c| n.saturating_add(c.region_count()))
    }
}

/// The region estimate of the run being planned.
///
/// A dimension's boundary count enters the estimate only through the
/// buckets of rules that span it ([`needed`]): a list whose rules all
/// constrain the protocol and the lead address (most ACLs) never reads one.
/// So a dimension's boundaries are hashed only once some bucket needs its
/// count, then those of the whole run so far at once; the estimate is the
/// same as if every boundary had been hashed as it came.
#[derive(Default)]
pub(crate) struct Estimate {
    /// Distinct interval boundaries per dimension, of the dimensions whose
    /// count is needed (`live`).
    bounds: [Bounds; 5],
    live: [bool; 5],
    /// Room to make in a dimension's set when it goes live.
    room: [usize; 5],
    /// Own boxes per multiplier bucket: `[proto spanned][first constrained
    /// address/port dimension]`; bucket `[_][0]` has no multiplier.
    pub(crate) buckets: [[u64; 5]; 2],
    own: u64,
}

/// The distinct boundaries of one dimension: those that fit a word (IPv4
/// addresses, ports and protocols: all of most lists) in a set of words,
/// half the memory and hashing of a set of `u128`, the others beside.
#[derive(Default)]
struct Bounds {
    narrow: HashSet<u64, FastBuild>,
    wide: HashSet<u128, FastBuild>,
}

impl Bounds {
    fn len(&self) -> usize {
        self.narrow.len() + self.wide.len()
    }

    fn extend(&mut self, points: impl Iterator<Item = u128>) {
        for p in points {
            match u64::try_from(p) {
                Ok(n) => self.narrow.insert(n),
                Err(_) => self.wide.insert(p),
            };
        }
    }

    /// Room for `n` more that fit a word (IPv6 boundaries, rarer, are
    /// left to grow their set).
    fn reserve(&mut self, n: usize) {
        self.narrow.reserve(n);
    }

    fn clear(&mut self) {
        self.narrow.clear();
        self.wide.clear();
    }
}

pub(crate) fn points(ivs: &Intervals) -> impl Iterator<Item = u128> + '_ {
    ivs.iter()
        .flat_map(|&(lo, hi)| std::iter::once(lo).chain(hi.checked_add(1)))
}

/// `(proto spanned, first constrained address/port dim or 0, own boxes)`.
pub(crate) fn shape(b: &RuleBox) -> (usize, usize, u64) {
    let first = (1..5).find(|&d| b[d].is_some()).unwrap_or(0);
    let own = b
        .iter()
        .flatten()
        .fold(1u64, |n, ivs| n.saturating_mul(ivs.len() as u64));
    (usize::from(first > 0 && b[0].is_none()), first, own)
}

/// The region estimate of own-box `buckets` when each dimension has
/// `counts` distinct boundaries (see the module doc).
pub(crate) fn estimate(buckets: &[[u64; 5]; 2], counts: [u64; 5]) -> u64 {
    let b = |d: usize| counts[d].saturating_add(1);
    let mut total = 0u64;
    for (proto, row) in buckets.iter().enumerate() {
        let mut factor = if proto == 1 { b(0) } else { 1 };
        for (first, &own) in row.iter().enumerate() {
            if first >= 2 {
                factor = factor.saturating_mul(b(first - 1));
            }
            total = total.saturating_add(own.saturating_mul(factor));
        }
    }
    total
}

/// The dimensions whose boundary counts `buckets` read (see
/// [`estimate`]): the protocol's when a bucket spans it, and dimension
/// `d` ≥ 1 when a bucket's first constrained dimension comes after it.
fn needed(buckets: &[[u64; 5]; 2]) -> [bool; 5] {
    let mut need = [false; 5];
    need[0] = buckets[1].iter().any(|&o| o > 0);
    for first in 2..5 {
        if buckets[0][first] > 0 || buckets[1][first] > 0 {
            for n in &mut need[1..first] {
                *n = true;
            }
        }
    }
    need
}

impl Estimate {
    fn cost(&self, buckets: &[[u64; 5]; 2]) -> u64 {
        estimate(
            buckets,
            std::array::from_fn(|d| self.bounds[d].len() as u64),
        )
    }

    /// Hashes the boundaries of `b` in the live dimensions.
    fn extend(&mut self, b: &RuleBox) {
        for (d, ivs) in b.iter().enumerate() {
            if let (true, Some(ivs)) = (self.live[d], ivs) {
                self.bounds[d].extend(points(ivs));
            }
        }
    }

    /// Makes the dimensions `buckets` need live, hashing the boundaries of
    /// `run` (the run's boxes so far) in each.
    fn enliven(&mut self, buckets: &[[u64; 5]; 2], run: &[&RuleBox]) {
        let need = needed(buckets);
        for d in 0..5 {
            if need[d] && !self.live[d] {
                self.live[d] = true;
                self.bounds[d].reserve(self.room[d]);
                for b in run {
                    if let Some(ivs) = &b[d] {
                        self.bounds[d].extend(points(ivs));
                    }
                }
            }
        }
    }

    /// Each dimension's number of distinct boundaries in `run` (the run's
    /// boxes), every dimension made live.
    pub(crate) fn counts(&mut self, run: &[&RuleBox]) -> [u64; 5] {
        self.enliven(&[[1; 5]; 2], run);
        std::array::from_fn(|d| self.bounds[d].len() as u64)
    }

    /// The bound minus the estimate, for the run as it is (what
    /// [`admit`] compared when its last box joined).
    ///
    /// [`admit`]: Estimate::admit
    pub(crate) fn margin(&self, blowup: u64) -> i128 {
        let budget = blowup.saturating_mul(self.own.saturating_add(SLACK));
        i128::from(budget) - i128::from(self.cost(&self.buckets))
    }

    /// Adds `b` when it may join the run `run` (its boxes so far) under
    /// `blowup` (the estimate with its boundaries and boxes stays ≤
    /// `blowup` × (own boxes + [`SLACK`])), and says whether it did. When
    /// it may not, the caller starts a new run ([`clear`]). Each boundary
    /// is hashed at most once.
    ///
    /// [`clear`]: Estimate::clear
    pub(crate) fn admit(&mut self, run: &[&RuleBox], b: &RuleBox, blowup: u64) -> bool {
        let (proto, first, own) = shape(b);
        let mut buckets = self.buckets;
        buckets[proto][first] = buckets[proto][first].saturating_add(own);
        self.enliven(&buckets, run);
        self.extend(b);
        let own = self.own.saturating_add(own);
        let budget = blowup.saturating_mul(own.saturating_add(SLACK));
        if self.cost(&buckets) > budget {
            return false;
        }
        self.buckets = buckets;
        self.own = own;
        true
    }

    /// Room for the boundaries of `boxes` (at most two per interval), made
    /// in a dimension's set when it goes live, so that the sets do not
    /// grow while a run is planned.
    pub(crate) fn reserve(&mut self, boxes: &[RuleBox]) {
        for (d, room) in self.room.iter_mut().enumerate() {
            *room = boxes
                .iter()
                .filter_map(|b| b[d].as_ref())
                .map(|ivs| 2 * ivs.len())
                .sum();
        }
    }

    /// The estimate of an empty run, keeping the sets' capacity.
    pub(crate) fn clear(&mut self) {
        for (set, live) in self.bounds.iter_mut().zip(&mut self.live) {
            if *live {
                set.clear();
            }
            *live = false;
        }
        self.buckets = [[0; 5]; 2];
        self.own = 0;
    }

    /// Adds `b` to an empty run.
    pub(crate) fn add(&mut self, b: &RuleBox) {
        let (proto, first, own) = shape(b);
        self.buckets[proto][first] = self.buckets[proto][first].saturating_add(own);
        self.own = self.own.saturating_add(own);
        let buckets = self.buckets;
        self.enliven(&buckets, &[]);
        self.extend(b);
    }
}

pub(crate) fn plan_with(boxes: &[RuleBox], skip: Option<usize>, blowup: u64) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut est = Estimate::default();
    est.reserve(boxes);
    let kept: Vec<&RuleBox> = (boxes.iter().enumerate())
        .filter(|&(j, _)| Some(j) != skip)
        .map(|(_, b)| b)
        .collect();
    for (i, b) in kept.iter().enumerate() {
        if i == start {
            est.add(b);
        } else if !est.admit(&kept[start..i], b, blowup) {
            out.push(start..i);
            start = i;
            est.clear();
            est.add(b);
        }
    }
    if start < kept.len() {
        out.push(start..kept.len());
    }
    out
}

/// Cuts `boxes` (precedence order) into at most [`MAX_SEGMENTS`] runs.
pub(crate) fn plan(boxes: &[RuleBox]) -> Vec<Range<usize>> {
    plan_skipping(boxes, None)
}

/// [`plan`] of `boxes` without box `skip` (indices of the list without
/// it): the plan of a list one rule shorter, without copying its boxes.
pub(crate) fn plan_skipping(boxes: &[RuleBox], skip: Option<usize>) -> Vec<Range<usize>> {
    let mut blowup = BLOWUP;
    let mut runs = plan_with(boxes, skip, blowup);
    while runs.len() > RELAX_ABOVE {
        blowup = blowup.saturating_mul(16);
        runs = plan_with(boxes, skip, blowup);
    }
    while runs.len() > MAX_SEGMENTS {
        let i = (0..runs.len() - 1)
            .min_by_key(|&i| runs[i + 1].end - runs[i].start)
            .unwrap_or(0);
        runs[i].end = runs[i + 1].end;
        runs.remove(i + 1);
    }
    runs
}

/// One list's rule boxes (precedence order, shadowed rules dropped) and
/// their winners, cut into runs by [`plan`], before any classification.
#[derive(Debug, Clone)]
pub struct Runs {
    pub boxes: Vec<RuleBox>,
    pub winners: Vec<(RuleId, Action)>,
    pub runs: Vec<Range<usize>>,
}

/// The boxes of `rules` (one direction and enforcement point, precedence
/// order) for one family and protocol class, cut into runs.
pub fn runs(rules: &[&AclRule], direction: Direction, v4: bool, class: ProtoClass) -> Runs {
    let mut boxes = Vec::with_capacity(rules.len());
    let mut winners = Vec::with_capacity(rules.len());
    for rule in rules {
        if let Some(b) = rule_box(rule, direction, v4, class) {
            let full = is_full(&b);
            boxes.push(b);
            winners.push((rule.id.clone(), rule.action));
            if full {
                break;
            }
        }
    }
    let runs = plan(&boxes);
    Runs {
        boxes,
        winners,
        runs,
    }
}

/// The dimensions a run of boxes keys on, in key order: the protocol
/// always, and every dimension some box constrains (as classification
/// does).
pub fn run_dims(boxes: &[RuleBox]) -> Vec<Dim> {
    Dim::ALL
        .into_iter()
        .filter(|d| *d == Dim::Proto || boxes.iter().any(|b| b[*d as usize].is_some()))
        .collect()
}

/// Classifies `rules` (precedence order, one direction and enforcement
/// point) for one family and protocol class, as segments. `acl` names the
/// list in errors; the regions of all segments together are limited to
/// [`MAX_REGIONS`].
pub fn segment(
    rules: &[&AclRule],
    direction: Direction,
    v4: bool,
    class: ProtoClass,
    acl: &str,
) -> Result<Segments, PolicyError> {
    let Runs {
        boxes,
        winners,
        runs,
    } = runs(rules, direction, v4, class);
    let mut segments = Vec::new();
    let mut total = 0usize;
    for run in runs {
        let c = classify_run(
            &boxes[run.clone()],
            &winners[run],
            v4,
            class,
            acl,
            &mut total,
        )?;
        if !c.is_empty() {
            segments.push(c);
        }
    }
    Ok(Segments {
        v4,
        class,
        segments,
    })
}

/// Classifies one run, adding its regions to `total` (the list's regions so
/// far): errs once the list would hold more than [`MAX_REGIONS`].
pub(crate) fn classify_run(
    boxes: &[RuleBox],
    winners: &[(RuleId, Action)],
    v4: bool,
    class: ProtoClass,
    acl: &str,
    total: &mut usize,
) -> Result<Classification, PolicyError> {
    let c = classify_boxes(boxes, winners.to_vec(), v4, class, acl)?;
    *total = total.saturating_add(c.region_count());
    if *total > MAX_REGIONS {
        return Err(PolicyError::TooManyRegions {
            acl: acl.to_owned(),
            limit: MAX_REGIONS,
        });
    }
    Ok(c)
}
