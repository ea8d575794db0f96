//! [`Slack`] against the planner: on random lists and random one-box
//! insertions and removals, whenever the slack says the list is still one
//! run the planner agrees, and the kept margins, counts and buckets stay
//! bounds of the exact ones.

use super::Slack;
use crate::boxes::RuleBox;
use crate::segment::plan;

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
