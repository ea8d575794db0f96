//! How far a list planned as one run is from being cut, kept beside the
//! list ([`super::kept`]) so that a one-rule change proves the plan is
//! still one run instead of re-planning every box.
//!
//! The planner ([`crate::segment`]) lets box `i` join the run while the
//! estimate of boxes `0..=i` stays within the bound (`BLOWUP` × (their own
//! boxes + `SLACK`)). For each box the kept margin is a lower bound on
//! (bound − estimate) at that box; exact after [`Slack::of`]. The run's
//! own-box buckets are kept exactly, its boundary counts as upper bounds.
//!
//! Why a change can be decided from those alone: the estimate is a sum,
//! over buckets, of own boxes × a product of (boundary count + 1) terms;
//! it grows with the buckets and the counts, and so does what one more
//! box adds to it. So a box `x` (own `o`, `k[d]` boundaries) added to any
//! prefix raises the estimate by at most `D` = estimate(buckets + x,
//! counts + k) − estimate(buckets, counts) of the whole run, and raises
//! the bound by `BLOWUP` × `o`: every box at or after the insertion (and
//! `x` itself, checked against the box before it) still fits when its
//! margin + `BLOWUP` × `o` ≥ `D`. Removing `x` lowers the estimate of every
//! later prefix by at least `o` (each factor is ≥ 1) and the bound by
//! `BLOWUP` × `o`: later boxes still fit when their margin is at least
//! (`BLOWUP` − 1) × `o`. Margins move by those same amounts, staying lower bounds;
//! when they no longer prove it, the list is planned in full again (and
//! [`Slack::of`] makes them exact).
//!
//! Only estimates far below `u64` saturation are handled (the bounds
//! above are exact arithmetic): past [`LIMIT`] there is no slack.

use crate::boxes::RuleBox;
use crate::segment::{estimate, points, shape, Estimate, BLOWUP};

/// Estimates and bounds stay below this for the margins to be exact.
const LIMIT: u64 = 1 << 60;

/// The slack of a list planned as one run (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Slack {
    /// Per box: a lower bound on (bound − estimate) at that box.
    margins: Vec<i128>,
    /// Upper bounds on the run's distinct boundaries per dimension.
    counts: [u64; 5],
    /// The run's own boxes per bucket (exact).
    buckets: [[u64; 5]; 2],
}

impl Slack {
    /// The slack of `boxes` when the planner keeps them in one run (then
    /// that run is the whole plan); `None` when it cuts them, or when the
    /// estimate is too large to track.
    pub(crate) fn of<'a>(boxes: impl ExactSizeIterator<Item = &'a RuleBox>) -> Option<Self> {
        let mut est = Estimate::default();
        let boxes: Vec<&RuleBox> = boxes.collect();
        let mut margins = Vec::with_capacity(boxes.len());
        for (i, b) in boxes.iter().enumerate() {
            if i == 0 {
                est.add(b);
            } else if !est.admit(&boxes[..i], b, BLOWUP) {
                return None;
            }
            margins.push(est.margin(BLOWUP));
        }
        let counts = est.counts(&boxes);
        let top = estimate(&est.buckets, counts);
        let own: u64 = est
            .buckets
            .iter()
            .flatten()
            .fold(0, |n, o| n.saturating_add(*o));
        (top < LIMIT && own < LIMIT).then_some(Self {
            margins,
            counts,
            buckets: est.buckets,
        })
    }

    /// The number of boxes.
    pub(crate) fn len(&self) -> usize {
        self.margins.len()
    }

    /// Box `x` inserted at `q`: whether the list is provably still one
    /// run, and if so the slack updated for it. Unchanged when not.
    pub(crate) fn insert(&mut self, q: usize, x: &RuleBox) -> bool {
        let (proto, first, own) = shape(x);
        let mut buckets = self.buckets;
        buckets[proto][first] = buckets[proto][first].saturating_add(own);
        let counts: [u64; 5] = std::array::from_fn(|d| {
            let k = x[d].as_ref().map_or(0, |ivs| points(ivs).count() as u64);
            self.counts[d].saturating_add(k)
        });
        let (before, after) = (
            estimate(&self.buckets, self.counts),
            estimate(&buckets, counts),
        );
        if after >= LIMIT || own >= LIMIT {
            return false;
        }
        // What the box can add to an estimate, less what it adds to the bound.
        let cost = i128::from(after - before) - i128::from(BLOWUP) * i128::from(own);
        let from = q.saturating_sub(1);
        if self.margins[from.min(self.len())..]
            .iter()
            .any(|m| *m < cost)
        {
            return false;
        }
        let own_margin = match q.checked_sub(1) {
            Some(p) => self.margins[p] - cost,
            None => {
                let mut alone = Estimate::default();
                alone.add(x);
                alone.margin(BLOWUP)
            }
        };
        for m in &mut self.margins[q..] {
            *m -= cost;
        }
        self.margins.insert(q, own_margin);
        self.buckets = buckets;
        self.counts = counts;
        true
    }

    /// Whether the list without box `x`, at `q`, is provably still one run.
    pub(crate) fn removable(&self, q: usize, x: &RuleBox) -> bool {
        let cost = (i128::from(BLOWUP) - 1) * i128::from(shape(x).2);
        self.margins[q + 1..].iter().all(|m| *m >= cost)
    }

    /// Box `x`, at `q`, removed: whether the list is provably still one
    /// run ([`Slack::removable`]), and if so the slack updated for it.
    /// Unchanged when not.
    pub(crate) fn remove(&mut self, q: usize, x: &RuleBox) -> bool {
        if !self.removable(q, x) {
            return false;
        }
        let (proto, first, own) = shape(x);
        let cost = (i128::from(BLOWUP) - 1) * i128::from(own);
        self.margins.remove(q);
        for m in &mut self.margins[q..] {
            *m -= cost;
        }
        self.buckets[proto][first] = self.buckets[proto][first].saturating_sub(own);
        true
    }
}

#[cfg(test)]
#[path = "slack_tests.rs"]
mod tests;
