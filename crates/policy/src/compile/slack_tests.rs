//! [`Slack`] against the planner: on random lists and random one-box
//! insertions and removals, whenever the slack says the list is still one
//! run the planner agrees, and the kept margins, counts and buckets stay
//! bounds of the exact ones. And the planner itself, which hashes a
//! dimension's boundaries only once its count is needed, against a plain
//! one that counts every dimension of every run from scratch.

use std::collections::HashSet;
use std::ops::Range;

use super::Slack;
use crate::boxes::RuleBox;
use crate::segment::{estimate, plan, plan_with, points, shape, BLOWUP, SLACK};

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// A box: the protocol sometimes spanned, each other dimension
/// unconstrained or one to three intervals on a small axis.
fn a_box(rng: &mut Rng) -> RuleBox {
    std::array::from_fn(|d| {
        let constrained = if d == 0 {
            rng.below(4) > 0
        } else {
            rng.below(3) == 0
        };
        constrained.then(|| {
            let n = 1 + rng.below(2);
            let mut ivs = Vec::new();
            let mut at = rng.below(8) as u128;
            for _ in 0..n {
                let width = rng.below(4) as u128;
                ivs.push((at, at + width));
                at += width + 2 + rng.below(6) as u128;
            }
            ivs
        })
    })
}

fn one_run(boxes: &[RuleBox]) -> bool {
    let runs = plan(boxes);
    runs.len() == 1 && runs[0] == (0..boxes.len())
}

/// The kept slack is a bound of the exact one for the same boxes.
fn bounds_exact(kept: &Slack, boxes: &[RuleBox]) {
    let exact = Slack::of(boxes.iter()).expect("one run");
    assert_eq!(kept.buckets, exact.buckets);
    assert!(kept.counts.iter().zip(exact.counts).all(|(k, e)| *k >= e));
    assert!(kept.margins.iter().zip(&exact.margins).all(|(k, e)| k <= e));
}

#[test]
fn a_change_the_slack_admits_leaves_one_run() {
    let (mut admitted, mut refused) = (0, 0);
    for seed in 1..300u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut boxes: Vec<RuleBox> = (0..rng.below(24)).map(|_| a_box(&mut rng)).collect();
        let Some(mut slack) = Slack::of(boxes.iter()) else {
            assert!(!one_run(&boxes) || boxes.is_empty());
            continue;
        };
        assert!(boxes.is_empty() || one_run(&boxes));
        for _ in 0..40 {
            let insert = boxes.is_empty() || rng.below(3) > 0;
            let ok = if insert {
                let (q, x) = (rng.below(boxes.len() as u64 + 1) as usize, a_box(&mut rng));
                let ok = slack.insert(q, &x);
                boxes.insert(q, x);
                ok
            } else {
                let q = rng.below(boxes.len() as u64) as usize;
                let ok = slack.remove(q, &boxes[q]);
                boxes.remove(q);
                ok
            };
            if ok {
                admitted += 1;
                assert!(
                    boxes.is_empty() || one_run(&boxes),
                    "seed {seed}: admitted a cut"
                );
                assert_eq!(slack.len(), boxes.len());
                bounds_exact(&slack, &boxes);
            } else {
                refused += 1;
                // Planned in full: a one-run list gets exact margins, a
                // cut one starts over, short.
                slack = match Slack::of(boxes.iter()) {
                    Some(s) => s,
                    None => {
                        boxes.truncate(rng.below(2) as usize);
                        Slack::of(boxes.iter()).expect("one box is one run")
                    }
                }
            }
        }
    }
    // Both outcomes happen: the test can fail either way.
    assert!(
        admitted > 1000 && refused > 10,
        "{admitted} admitted, {refused} refused"
    );
}

/// The plan by the module doc's rule, every count made from scratch: box
/// `i` joins while the estimate of the run with it stays within the bound.
fn plain_plan(boxes: &[&RuleBox], blowup: u64) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..boxes.len() {
        let run = &boxes[start..=i];
        let counts = std::array::from_fn(|d| {
            let all: HashSet<u128> = (run.iter())
                .filter_map(|b| b[d].as_ref())
                .flat_map(points)
                .collect();
            all.len() as u64
        });
        let (mut buckets, mut own) = ([[0u64; 5]; 2], 0u64);
        for b in run {
            let (p, f, o) = shape(b);
            buckets[p][f] += o;
            own += o;
        }
        if estimate(&buckets, counts) > blowup * (own + SLACK) {
            out.push(start..i);
            start = i;
        }
    }
    if start < boxes.len() {
        out.push(start..boxes.len());
    }
    out
}

#[test]
fn the_planner_cuts_where_counting_everything_does() {
    let mut cuts = 0;
    for seed in 1..400u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let boxes: Vec<RuleBox> = (0..rng.below(40)).map(|_| a_box(&mut rng)).collect();
        let skip = (!boxes.is_empty() && rng.below(2) == 0)
            .then(|| rng.below(boxes.len() as u64) as usize);
        let kept: Vec<&RuleBox> = (boxes.iter().enumerate())
            .filter(|&(j, _)| Some(j) != skip)
            .map(|(_, b)| b)
            .collect();
        for blowup in [1, BLOWUP] {
            let expected = plain_plan(&kept, blowup);
            cuts += expected.len().saturating_sub(1);
            assert_eq!(
                plan_with(&boxes, skip, blowup),
                expected,
                "seed {seed}, skip {skip:?}"
            );
        }
    }
    // Cuts happen: the comparison is not between two single runs.
    assert!(cuts > 200, "{cuts} cuts");
}
