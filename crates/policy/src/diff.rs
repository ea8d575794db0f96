//! The difference between two tables as one ordered transaction.
//!
//! Contract: `apply(old, &diff(old, new)) == new`, and the order is one the
//! kernel accepts in a single batch: rules are flushed and elements deleted
//! before the sets and chains they reference are deleted; chains and sets are
//! declared before the elements and rules that reference them; elements are
//! deleted before overlapping ones are added. A chain's rules are replaced
//! whole (flush + re-add: chains hold a constant number of rules), sets are
//! changed element by element, so adding or removing one ACL entry costs a
//! few element operations whatever the ruleset size. A set whose key or
//! flags change (an ACL starts using a new dimension) is recreated.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::ir::{
    Action, BaseChain, Chain, Family, Field, Key, Match, Rule, Set, SetKind, Table, Verdict,
};

/// One operation of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    AddTable {
        family: Family,
        name: String,
    },
    DeleteTable {
        family: Family,
        name: String,
    },
    AddChain {
        name: String,
        base: Option<Box<BaseChain>>,
    },
    DeleteChain {
        name: String,
    },
    AddSet {
        name: String,
        key: Vec<Field>,
        interval: bool,
        kind: SetKind,
        /// Every element counts packets and bytes.
        counter: bool,
    },
    DeleteSet {
        name: String,
    },
    FlushChain {
        name: String,
    },
    AddRules {
        chain: String,
        rules: Vec<Rule>,
    },
    AddElements {
        set: String,
        elements: Vec<(Key, Option<Verdict>)>,
        /// The counter owners of the added elements that have one
        /// (bookkeeping, see [`Set::owners`]; not sent to the kernel).
        owners: Vec<(Key, Arc<str>)>,
    },
    DeleteElements {
        set: String,
        keys: Vec<Key>,
    },
}

/// The operations that create `table` from nothing.
pub fn create(table: &Table) -> Vec<Op> {
    let empty = Table::new(table.family, &table.name);
    let mut ops = vec![Op::AddTable {
        family: table.family,
        name: table.name.clone(),
    }];
    ops.extend(diff(&empty, table));
    ops
}

fn chain_target(v: &Verdict) -> Option<&str> {
    match v {
        Verdict::Jump(c) | Verdict::Goto(c) => Some(c),
        _ => None,
    }
}

fn rule_refs<'a>(rule: &'a Rule, sets: &BTreeSet<&str>, chains: &BTreeSet<&str>) -> bool {
    let set_ref = |s: &'a str| sets.contains(s);
    rule.matches
        .iter()
        .any(|m| matches!(m, Match::Lookup { set, .. } if set_ref(set)))
        || match &rule.action {
            Action::Vmap { map, .. } => set_ref(map),
            Action::Verdict(v) => chain_target(v).is_some_and(|c| chains.contains(c)),
            _ => false,
        }
}

fn add_set_op(s: &Set) -> Op {
    Op::AddSet {
        name: s.name.clone(),
        key: s.key.clone(),
        interval: s.interval,
        kind: s.kind,
        counter: s.counter,
    }
}

/// The owners of `elements` in `s`.
fn owners_of(s: &Set, elements: &[(Key, Option<Verdict>)]) -> Vec<(Key, Arc<str>)> {
    elements
        .iter()
        .filter_map(|(k, _)| s.owners.get(k).map(|o| (k.clone(), o.clone())))
        .collect()
}

/// Calls `f(key, in a, in b)` for every key of `a` or `b`, in key order:
/// one ordered walk of both maps.
fn merge<'a, K: Ord, V>(
    a: &'a BTreeMap<K, V>,
    b: &'a BTreeMap<K, V>,
    mut f: impl FnMut(&'a K, Option<&'a V>, Option<&'a V>),
) {
    let (mut a, mut b) = (a.iter().peekable(), b.iter().peekable());
    loop {
        match (a.peek(), b.peek()) {
            (None, None) => return,
            (Some(&(k, v)), None) => {
                f(k, Some(v), None);
                a.next();
            }
            (None, Some(&(k, v))) => {
                f(k, None, Some(v));
                b.next();
            }
            (Some(&(ka, va)), Some(&(kb, vb))) => match ka.cmp(kb) {
                std::cmp::Ordering::Less => {
                    f(ka, Some(va), None);
                    a.next();
                }
                std::cmp::Ordering::Greater => {
                    f(kb, None, Some(vb));
                    b.next();
                }
                std::cmp::Ordering::Equal => {
                    f(ka, Some(va), Some(vb));
                    a.next();
                    b.next();
                }
            },
        }
    }
}

/// The ordered operations that turn `old` into `new`.
pub fn diff(old: &Table, new: &Table) -> Vec<Op> {
    if old.family != new.family || old.name != new.name {
        let mut ops = vec![Op::DeleteTable {
            family: old.family,
            name: old.name.clone(),
        }];
        ops.extend(create(new));
        return ops;
    }
    let set_gone: BTreeSet<&str> = old
        .sets
        .values()
        .filter(|s| new.sets.get(&s.name).is_none_or(|n| !n.same_declaration(s)))
        .map(|s| s.name.as_str())
        .collect();
    let chain_gone: BTreeSet<&str> = old
        .chains
        .values()
        .filter(|c| new.chains.get(&c.name).is_none_or(|n| n.base != c.base))
        .map(|c| &*c.name)
        .collect();
    let stale = |v: &Option<Verdict>| {
        v.as_ref()
            .and_then(chain_target)
            .is_some_and(|c| chain_gone.contains(c))
    };
    let mut ops = Vec::new();
    // 1. Flush chains that go away or whose rules change (or point at something recreated).
    let mut rewrite: Vec<&Chain> = Vec::new();
    for c in old.chains.values() {
        let gone = chain_gone.contains(&*c.name);
        let changed = new.chains.get(&c.name).is_some_and(|n| n.rules != c.rules);
        let refs = c.rules.iter().any(|r| rule_refs(r, &set_gone, &chain_gone));
        if !c.rules.is_empty() && (gone || changed || refs) {
            ops.push(Op::FlushChain {
                name: c.name.to_string(),
            });
        }
        if !gone && (changed || refs) {
            rewrite.push(&new.chains[&c.name]);
        }
    }
    // 2. Delete elements of kept sets.
    let mut adds: Vec<Op> = Vec::new();
    for s in old
        .sets
        .values()
        .filter(|s| !set_gone.contains(s.name.as_str()))
    {
        let n = &new.sets[&s.name];
        // An element whose rule changes is replaced too, so that its
        // counter restarts instead of carrying one rule's packets to another.
        let mut moved: BTreeSet<&Key> = BTreeSet::new();
        merge(&s.owners, &n.owners, |k, a, b| {
            if a != b {
                moved.insert(k);
            }
        });
        // One ordered walk of both element maps (not a tree search per
        // element: at 10k rules the searches were most of the diff's time).
        let mut keys: Vec<Key> = Vec::new();
        let mut elements: Vec<(Key, Option<Verdict>)> = Vec::new();
        merge(&s.elements, &n.elements, |k, a, b| {
            let replaced = a != b || moved.contains(k);
            if let Some(v) = a {
                if replaced || stale(v) {
                    keys.push(k.clone());
                }
            }
            if let Some(v) = b {
                if replaced || stale(v) {
                    elements.push((k.clone(), v.clone()));
                }
            }
        });
        if !keys.is_empty() {
            ops.push(Op::DeleteElements {
                set: s.name.clone(),
                keys,
            });
        }
        if !elements.is_empty() {
            adds.push(Op::AddElements {
                set: s.name.clone(),
                owners: owners_of(n, &elements),
                elements,
            });
        }
    }
    // 3-4. Delete sets, then chains.
    ops.extend(set_gone.iter().map(|s| Op::DeleteSet {
        name: (*s).to_owned(),
    }));
    ops.extend(chain_gone.iter().map(|c| Op::DeleteChain {
        name: (*c).to_owned(),
    }));
    // 5-6. Declare new chains and sets.
    let new_chains: Vec<&Chain> = new
        .chains
        .values()
        .filter(|c| !old.chains.contains_key(&c.name) || chain_gone.contains(&*c.name))
        .collect();
    ops.extend(new_chains.iter().map(|c| Op::AddChain {
        name: c.name.to_string(),
        base: c.base.clone(),
    }));
    let new_sets: Vec<&Set> = new
        .sets
        .values()
        .filter(|s| !old.sets.contains_key(&s.name) || set_gone.contains(s.name.as_str()))
        .collect();
    ops.extend(new_sets.iter().map(|s| add_set_op(s)));
    // 7. Elements.
    for s in &new_sets {
        if !s.elements.is_empty() {
            let elements: Vec<(Key, Option<Verdict>)> = s
                .elements
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            ops.push(Op::AddElements {
                set: s.name.clone(),
                owners: owners_of(s, &elements),
                elements,
            });
        }
    }
    ops.extend(adds);
    // 8. Rules.
    for c in rewrite.into_iter().chain(new_chains) {
        if !c.rules.is_empty() {
            ops.push(Op::AddRules {
                chain: c.name.to_string(),
                rules: c.rules.clone(),
            });
        }
    }
    ops
}

/// Applies operations to a table (what the kernel would hold afterwards).
/// `DeleteTable` empties it; `AddTable` renames/refamilies it. Panics on
/// operations the kernel would refuse (tests use it to check diffs).
pub fn apply(table: &Table, ops: &[Op]) -> Table {
    let mut t = table.clone();
    if let Err(e) = apply_in_place(&mut t, ops) {
        panic!("{e}");
    }
    t
}

/// [`apply`] without copying the table; an operation the kernel would
/// refuse (a missing chain or set, an element added twice or deleted while
/// absent) is an error, and the operations before it stay applied.
pub fn apply_in_place(t: &mut Table, ops: &[Op]) -> Result<(), String> {
    for op in ops {
        match op {
            Op::AddTable { family, name } => {
                t.family = *family;
                t.name.clone_from(name);
            }
            Op::DeleteTable { .. } => {
                t.chains = BTreeMap::new();
                t.sets = BTreeMap::new();
            }
            Op::AddChain { name, base } => {
                t.add_chain(Chain {
                    name: name.as_str().into(),
                    base: base.clone(),
                    rules: Vec::new(),
                });
            }
            Op::DeleteChain { name } => {
                t.chains.remove(name.as_str());
            }
            Op::AddSet {
                name,
                key,
                interval,
                kind,
                counter,
            } => {
                let mut s = Set::new(name, key.clone(), *interval, *kind);
                s.counter = *counter;
                t.add_set(s)
            }
            Op::DeleteSet { name } => {
                t.sets.remove(name);
            }
            Op::FlushChain { name } => t
                .chains
                .get_mut(name.as_str())
                .ok_or_else(|| format!("flush of a missing chain {name}"))?
                .rules
                .clear(),
            Op::AddRules { chain, rules } => t
                .chains
                .get_mut(chain.as_str())
                .ok_or_else(|| format!("rules for a missing chain {chain}"))?
                .rules
                .extend(rules.iter().cloned()),
            Op::AddElements {
                set,
                elements,
                owners,
            } => {
                let s = t
                    .sets
                    .get_mut(set)
                    .ok_or_else(|| format!("elements for a missing set {set}"))?;
                for (k, v) in elements {
                    if s.elements.insert(k.clone(), v.clone()).is_some() {
                        return Err(format!("element added twice to {set}"));
                    }
                }
                s.owners
                    .extend(owners.iter().map(|(k, o)| (k.clone(), o.clone())));
            }
            Op::DeleteElements { set, keys } => {
                let s = t
                    .sets
                    .get_mut(set)
                    .ok_or_else(|| format!("elements of a missing set {set}"))?;
                for k in keys {
                    if s.elements.remove(k).is_none() {
                        return Err(format!("missing element deleted from {set}"));
                    }
                    s.owners.remove(k);
                }
            }
        }
    }
    Ok(())
}
