//! The rules of a two-level region chain: multi-range value matches
//! spelled out as one rule per value ([`expand`], up to [`MAX_EXPANSION`])
//! or, beyond that, a lookup in a named value set ([`value_set`]). The
//! chains one lead map's build makes are [`super::region_chains`]'.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::boxes::FastHasher;
use crate::ir::{
    Field, Key, KeyBytes, Match, RangeList, Rule, RuleBody, Set, SetKind, Table,
    Verdict as NftVerdict,
};

/// The most rules one region-chain rule may expand to (see [`expand`]).
pub const MAX_EXPANSION: usize = 32;

/// `r` with its multi-range value matches spelled out: one rule per
/// combination of ranges (at most [`MAX_EXPANSION`]), each a `cmp` or
/// `range`; beyond that, each multi-range match becomes a lookup in a
/// named set ([`value_set`]). Why: the kernel finds a named set by a linear
/// walk of the table's sets, once per rule that references it and once per
/// set created, so thousands of them make a commit quadratic (seconds at
/// 10k rules), while a few more rules in a small region chain cost a few
/// comparisons on the first packet of a flow only. The rules are appended
/// to `out`.
pub(super) fn expand(table: &mut Table, mut r: Rule, out: &mut Vec<Rule>) {
    let product = r.matches.iter().fold(1usize, |n, m| match m {
        Match::Ranges { ranges, .. } => n.saturating_mul(ranges.len()),
        _ => n,
    });
    if product == 1 {
        // Nothing to spell out: the rule as it is, its matches still shared.
        out.push(r);
        return;
    }
    if product <= MAX_EXPANSION {
        // One rule per combination, the first spelled-out match varying
        // slowest; each rule's matches made in one allocation.
        let spelled: Vec<(usize, &[(u128, u128)])> = (r.matches.iter().enumerate())
            .filter_map(|(i, m)| match m {
                Match::Ranges { ranges, .. } if ranges.len() > 1 => Some((i, &ranges[..])),
                _ => None,
            })
            .collect();
        let mut at = vec![0usize; spelled.len()];
        out.reserve(product);
        loop {
            let matches: Arc<[Match]> = (0..r.matches.len())
                .map(
                    |i| match (&r.matches[i], spelled.iter().position(|s| s.0 == i)) {
                        (Match::Ranges { field, .. }, Some(k)) => Match::Ranges {
                            field: *field,
                            ranges: RangeList::from_slice(&[spelled[k].1[at[k]]]),
                        },
                        (m, _) => m.clone(),
                    },
                )
                .collect();
            out.push(
                RuleBody {
                    matches,
                    counter: r.counter,
                    action: r.action.clone(),
                    comment: r.comment.clone(),
                }
                .into(),
            );
            // The next combination, the last spelled-out match fastest.
            let mut k = spelled.len();
            loop {
                if k == 0 {
                    return;
                }
                k -= 1;
                at[k] += 1;
                if at[k] < spelled[k].1.len() {
                    break;
                }
                at[k] = 0;
            }
        }
    }
    let matches: Vec<Match> = r
        .matches
        .iter()
        .map(|m| match m {
            Match::Ranges { field, ranges } if ranges.len() > 1 => Match::Lookup {
                key: vec![*field],
                set: value_set(table, *field, ranges),
                negate: false,
            },
            m => m.clone(),
        })
        .collect();
    r.body_mut().matches = matches.into();
    out.push(r);
}

/// The named interval set holding `ranges` of `field` (created on first
/// use, named by a hash of its content, shared by every rule of the table
/// that needs it). Named, not anonymous: the kernel resolves an anonymous
/// set of a batch by walking the whole transaction, and allocates its
/// `__set%d` name by scanning every set, so thousands of them in one
/// commit are quadratic (minutes for a 10k-rule ACL).
fn value_set(table: &mut Table, field: Field, ranges: &[(u128, u128)]) -> String {
    let len = field.len();
    let elements: std::collections::BTreeMap<Key, Option<NftVerdict>> = ranges
        .iter()
        .map(|&(lo, hi)| (Key::one(KeyBytes::be(lo, len), KeyBytes::be(hi, len)), None))
        .collect();
    let mut h = FastHasher::default();
    ranges.hash(&mut h);
    let hash = h.finish();
    let tag = format!("{field:?}").to_lowercase();
    let mut name = format!("values_{tag}_{hash:016x}");
    let mut n = 0;
    while let Some(s) = table.sets.get(&name) {
        if s.key == [field] && s.elements == elements {
            return name;
        }
        n += 1;
        name = format!("values_{tag}_{hash:016x}_{n}");
    }
    let mut set = Set::new(&name, vec![field], true, SetKind::Set);
    set.elements = elements;
    table.add_set(set);
    name
}

/// Whether `m` is a match [`expand`] spells out (several values).
pub(super) fn spelled_out(m: &Match) -> bool {
    matches!(m, Match::Ranges { ranges, .. } if ranges.len() > 1)
}
