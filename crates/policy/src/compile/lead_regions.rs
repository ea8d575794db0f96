//! The lead regions of a two-level segment's window ([`Sweep::regions`]):
//! the lead axis cut at the covering rules' interval edges, each elementary
//! interval's rule list (precedence order, cut after the first rule that
//! decides alone, repeats of earlier remaining matches left out), adjacent
//! equal lists merged, empty ones left out.

use crate::boxes::{Dim, RuleBox};
use crate::error::PolicyError;
use crate::regions::MAX_REGIONS;

/// A window's lead regions: each a lead interval and its rule list
/// (positions in the rules considered), a range of `lists`.
#[derive(Default)]
pub(super) struct Regions {
    pub spans: Vec<((u128, u128), (u32, u32))>,
    pub lists: Vec<u32>,
}

/// What a sweep reads: the segment's boxes, the lead dimension, and the
/// list's name for errors.
pub(super) struct Sweep<'a> {
    pub boxes: &'a [RuleBox],
    pub lead: Dim,
    pub acl: &'a str,
}

impl Sweep<'_> {
    /// Disjoint lead regions within `window` and their rule lists
    /// (positions in `subset`, the rules overlapping the window in
    /// precedence order), cut after the first rule that decides alone,
    /// adjacent equal lists merged, empty ones left out. A point's list
    /// depends only on the rules covering it, so the regions of a window
    /// whose edges are region edges of the whole axis are exactly the whole
    /// axis's regions there (what [`crate::compile::incremental`] relies on).
    /// Errs when the lists together would hold more than [`MAX_REGIONS`]
    /// entries (pathological overlap: every rule covering every region).
    ///
    /// One sweep along the axis: the rules' interval edges sorted, the
    /// rules covering the current point kept in precedence order, each
    /// elementary interval's list made in one buffer and stored only when
    /// it differs from its left neighbour's.
    pub(super) fn regions(
        &self,
        window: (u128, u128),
        subset: &[u32],
        terminal: &[bool],
        rest_id: &[u32],
    ) -> Result<Regions, PolicyError> {
        let (wlo, whi) = window;
        let d = self.lead as usize;
        let whole = [window];
        // (edge, position, whether the rule starts covering there); a
        // rule's intervals are disjoint and never adjacent (merged boxes).
        let mut edges = Edges::new(whi, subset.len());
        for (p, &j) in subset.iter().enumerate() {
            let ivs: &[(u128, u128)] = self.boxes[j as usize][d].as_deref().unwrap_or(&whole);
            for &(lo, hi) in ivs {
                let (lo, hi) = (lo.max(wlo), hi.min(whi));
                if lo > hi {
                    continue;
                }
                edges.push(lo, p as u32, true);
                if hi < whi {
                    edges.push(hi + 1, p as u32, false);
                }
            }
        }
        edges.sort();
        // About one region per edge, most lists short.
        let mut out = Regions {
            spans: Vec::with_capacity(edges.len()),
            lists: Vec::with_capacity(edges.len() * 2),
        };
        let mut covering: Vec<u32> = Vec::new();
        let mut list: Vec<u32> = Vec::new();
        let mut entries = 0usize;
        let mut i = 0;
        while let Some((lo, _, _)) = edges.get(i) {
            while let Some((_, p, starts)) = edges.get(i).filter(|e| e.0 == lo) {
                match (covering.binary_search(&p), starts) {
                    (Err(at), true) => covering.insert(at, p),
                    (Ok(at), false) => {
                        covering.remove(at);
                    }
                    _ => {}
                }
                i += 1;
            }
            let hi = edges.get(i).map_or(whi, |e| e.0 - 1);
            list.clear();
            for &p in &covering {
                // A rule whose remaining matches equal an earlier rule's
                // in the region can never decide there.
                if list
                    .iter()
                    .any(|&q| rest_id[q as usize] == rest_id[p as usize])
                {
                    continue;
                }
                list.push(p);
                if terminal[p as usize] {
                    break;
                }
            }
            entries += list.len();
            if entries > MAX_REGIONS {
                return Err(PolicyError::TooManyRegions {
                    acl: self.acl.to_owned(),
                    limit: MAX_REGIONS,
                });
            }
            if list.is_empty() {
                continue;
            }
            if let Some(((_, last_hi), (s, e))) = out.spans.last_mut() {
                if last_hi.checked_add(1) == Some(lo)
                    && out.lists[*s as usize..*e as usize] == list[..]
                {
                    *last_hi = hi;
                    continue;
                }
            }
            let s = out.lists.len() as u32;
            out.lists.extend_from_slice(&list);
            out.spans.push(((lo, hi), (s, out.lists.len() as u32)));
        }
        Ok(out)
    }
}

/// A sweep's edges: (edge, position, whether the rule starts covering
/// there), sorted by edge ([`Edges::sort`]); the order of a point's edges
/// is free (each rule starts or stops covering there, never both). When the
/// edges fit 33 bits (IPv4 addresses, ports) and the positions 30, each is
/// one word, position and flag below the edge: a quarter of the memory of
/// the tuples, sorted as words, not as 32-byte tuples by key.
enum Edges {
    Packed(Vec<u64>),
    Wide(Vec<(u128, u32, bool)>),
}

impl Edges {
    /// For edges up to `top` of `positions` rules (about two each).
    fn new(top: u128, positions: usize) -> Self {
        let capacity = positions * 2;
        if top < 1 << 33 && positions <= 1 << 30 {
            Edges::Packed(Vec::with_capacity(capacity))
        } else {
            Edges::Wide(Vec::with_capacity(capacity))
        }
    }

    fn push(&mut self, edge: u128, p: u32, starts: bool) {
        match self {
            Edges::Packed(v) => v.push((edge as u64) << 31 | u64::from(p) << 1 | u64::from(starts)),
            Edges::Wide(v) => v.push((edge, p, starts)),
        }
    }

    fn sort(&mut self) {
        match self {
            Edges::Packed(v) => v.sort_unstable(),
            Edges::Wide(v) => v.sort_unstable_by_key(|e| e.0),
        }
    }

    fn len(&self) -> usize {
        match self {
            Edges::Packed(v) => v.len(),
            Edges::Wide(v) => v.len(),
        }
    }

    fn get(&self, i: usize) -> Option<(u128, u32, bool)> {
        match self {
            Edges::Packed(v) => v.get(i).map(|&k| {
                (
                    u128::from(k >> 31),
                    (k >> 1) as u32 & ((1 << 30) - 1),
                    k & 1 == 1,
                )
            }),
            Edges::Wide(v) => v.get(i).copied(),
        }
    }
}
