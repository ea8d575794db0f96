//! Sets and verdict maps: declarations and the kernel encoding of elements.
//!
//! Contract: [`lower_set`] declares a set with the key layout the rules load
//! (single field: its own length; several: each padded to 4 bytes) and
//! `INTERVAL` when the IR says so (the encoder adds `MAP`/`CONCAT`).
//! [`lower_elements`] gives the exact list of kernel elements for a set's
//! content: exact keys; for one-field intervals a start element carrying
//! the data plus an `INTERVAL_END` element at `end+1`, left out only when
//! `end` is the largest key: an end marker may share its key with the next
//! interval's start, and must (the kernel refuses two starts in a row in a
//! named set, as an overlap); for several fields one
//! element with `KEY_END`. Keys of the wrong length, ranges in exact sets
//! and overlapping intervals are errors, never silently dropped.

#[cfg(test)]
use std::collections::{BTreeMap, HashSet};

use bulkhead_policy::ir::{self, Key, SetKind};

use super::field::key_type;
use super::{lower_verdict, LowerError};
use crate::nft::{successor, ConcatLayout, ElemData, Element, Set, SetFlags, SetKey};

/// The declaration of a set or verdict map (no elements).
pub fn lower_set(s: &ir::Set) -> Result<Set, LowerError> {
    let types: Vec<_> = s.key.iter().map(|f| key_type(*f)).collect();
    let key = match types.as_slice() {
        [one] => SetKey::single(*one),
        _ => SetKey::concat(&types)?,
    };
    let mut set = match s.kind {
        SetKind::Set => Set::new(&s.name, key),
        SetKind::VerdictMap => Set::vmap(&s.name, key),
    };
    if s.interval {
        set = set.with_flags(SetFlags::INTERVAL);
    }
    if s.counter {
        set = set.with_counter();
    }
    Ok(set)
}

fn check_key(s: &ir::Set, key: &Key) -> Result<(), LowerError> {
    if key.len() != s.key.len() {
        return Err(LowerError::KeyArity {
            set: s.name.clone(),
            got: key.len(),
            want: s.key.len(),
        });
    }
    for (i, ((from, to), f)) in key.iter().zip(&s.key).enumerate() {
        for b in [from, to] {
            if b.len() != f.len() {
                return Err(LowerError::KeyLength {
                    set: s.name.clone(),
                    field: i,
                    got: b.len(),
                    want: f.len(),
                });
            }
        }
        if !s.interval && from != to {
            return Err(LowerError::RangeInExactSet {
                set: s.name.clone(),
                from: from.to_vec(),
                to: to.to_vec(),
            });
        }
        if from > to {
            return Err(LowerError::BadElements {
                set: s.name.clone(),
                reason: format!("field {i}: range {from:02x?} > {to:02x?}"),
            });
        }
    }
    Ok(())
}

fn data(s: &ir::Set, v: &Option<ir::Verdict>) -> Result<Option<ElemData>, LowerError> {
    match (s.kind, v) {
        (SetKind::VerdictMap, Some(v)) => Ok(Some(ElemData::Verdict(lower_verdict(v)))),
        (SetKind::Set, None) => Ok(None),
        _ => Err(LowerError::BadElements {
            set: s.name.clone(),
            reason: "element data does not match the set kind".into(),
        }),
    }
}

/// The kernel elements of `s`'s content (see the module contract).
pub fn lower_elements(s: &ir::Set) -> Result<Vec<Element>, LowerError> {
    encode(s, s.elements.iter())
}

/// The kernel elements of `elements` in a set declared like `s`. For a
/// one-field interval set an interval's elements (its start and its end
/// marker) depend on the interval alone.
pub(crate) fn encode<'a>(
    s: &ir::Set,
    elements: impl Iterator<Item = (&'a Key, &'a Option<ir::Verdict>)>,
) -> Result<Vec<Element>, LowerError> {
    let mut out = Vec::new();
    let layout = if s.key.len() > 1 {
        let lens: Vec<u32> = s.key.iter().map(|f| f.len() as u32).collect();
        Some(ConcatLayout::new(0, &lens)?)
    } else {
        None
    };
    let mut items = elements.peekable();
    while let Some((key, v)) = items.next() {
        check_key(s, key)?;
        let data = data(s, v)?;
        match (&layout, s.interval) {
            (None, false) => {
                let mut e = Element::new(key[0].0.to_vec());
                e.data = data;
                out.push(e);
            }
            (None, true) => {
                let (from, to) = &key[0];
                out.push(Element {
                    data,
                    ..Element::new(from.to_vec())
                });
                if let Some((next, _)) = items.peek() {
                    if &next[0].0 <= to {
                        return Err(LowerError::BadElements {
                            set: s.name.clone(),
                            reason: format!("intervals overlap at {:02x?}", next[0].0),
                        });
                    }
                }
                // Always closed, even when the next interval starts at
                // `end+1`: a named rbtree set refuses two starts in a row
                // (EEXIST on 6.18); an end and a start may share a key.
                if let Some(end) = successor(to) {
                    out.push(Element {
                        interval_end: true,
                        ..Element::new(end)
                    });
                }
            }
            (Some(l), interval) => {
                let from: Vec<&[u8]> = key.iter().map(|(f, _)| &**f).collect();
                let start = l.key(&from)?;
                if interval {
                    let to: Vec<&[u8]> = key.iter().map(|(_, t)| &**t).collect();
                    out.push(Element::range(start, l.key(&to)?, data));
                } else {
                    let mut e = Element::new(start);
                    e.data = data;
                    out.push(e);
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
/// Kernel element changes that turn `before` into `after` (both whole
/// contents of a set declared like `decl`): `(deletes, adds)`.
pub(crate) fn element_delta(
    decl: &ir::Set,
    before: &BTreeMap<Key, Option<ir::Verdict>>,
    after: &BTreeMap<Key, Option<ir::Verdict>>,
) -> Result<(Vec<Element>, Vec<Element>), LowerError> {
    let old = encode(decl, before.iter())?;
    let new = encode(decl, after.iter())?;
    let old_set: HashSet<&Element> = old.iter().collect();
    let new_set: HashSet<&Element> = new.iter().collect();
    let dels = old.iter().filter(|e| !new_set.contains(e)).cloned();
    let adds = new.iter().filter(|e| !old_set.contains(e)).cloned();
    Ok((dels.collect(), adds.collect()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulkhead_policy::ir::{Field, Verdict};

    fn port(p: u16) -> Vec<u8> {
        p.to_be_bytes().to_vec()
    }

    #[test]
    fn adjacent_intervals_keep_their_end_markers() {
        let mut s = ir::Set::new("m", vec![Field::Dport], true, SetKind::VerdictMap);
        s.elements
            .insert(ir::Key::one(port(10), port(19)), Some(Verdict::Drop));
        s.elements
            .insert(ir::Key::one(port(20), port(29)), Some(Verdict::Accept));
        s.elements
            .insert(ir::Key::one(port(40), port(65535)), Some(Verdict::Drop));
        let e = lower_elements(&s).unwrap();
        let keys: Vec<(Vec<u8>, bool)> =
            e.iter().map(|e| (e.key.clone(), e.interval_end)).collect();
        assert_eq!(
            keys,
            vec![
                (port(10), false),
                (port(20), true),
                (port(20), false),
                (port(30), true),
                (port(40), false)
            ]
        );
        // Removing [20,29] keeps [10,19]'s end marker.
        let mut after = s.elements.clone();
        after.remove(&ir::Key::one(port(20), port(29)));
        let (dels, adds) = element_delta(&s, &s.elements, &after).unwrap();
        assert_eq!(dels.len(), 2);
        assert!(adds.is_empty());
        assert!(dels.iter().all(|e| e.key != port(20) || !e.interval_end));
    }

    #[test]
    fn concat_ranges_use_key_end_and_exact_sets_refuse_ranges() {
        let mut s = ir::Set::new("c", vec![Field::Saddr4, Field::Dport], true, SetKind::Set);
        s.elements.insert(
            vec![(vec![10, 0, 0, 0], vec![10, 0, 0, 255]), (port(1), port(9))].into(),
            None,
        );
        let e = lower_elements(&s).unwrap();
        assert_eq!(e[0].key, vec![10, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!(
            e[0].key_end.as_deref(),
            Some(&[10, 0, 0, 255, 0, 9, 0, 0][..])
        );
        s.interval = false;
        assert!(matches!(
            lower_elements(&s),
            Err(LowerError::RangeInExactSet { .. })
        ));
    }
}
