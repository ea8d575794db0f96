//! A diff's operations as one batch.
//!
//! Contract: [`lower_ops`] emits the ops in their order (the diff orders
//! them for the kernel) into one batch. Ops after the first carry no table,
//! and element ops carry no key layout, so the caller passes the table the
//! ops apply to as the kernel holds it now (`None` when the ops start with
//! `AddTable`); declarations and contents are tracked through the ops like
//! `diff::apply` does. Elements of one-field interval sets are changed on
//! their kernel encoding (start and end-marker elements): a deletion
//! removes what the new content no longer has, at the op's place (so
//! references go before chains are deleted); anything the new content
//! needs that a deletion alone left out is added at the set's next
//! `AddElements`, or at the end of the batch.

use std::collections::{BTreeMap, HashSet};

use bulkhead_policy::diff::Op;
use bulkhead_policy::ir;

use super::set::{encode, lower_set};
use super::{add_lowered_rule, lower_chain, lower_family, lower_rule, AnonIds, LowerError};
use crate::nft::{Batch, Element, Table};

/// A set as the ops see it: declaration, content, and for rbtree sets the
/// elements the batch leaves in the kernel so far.
struct Tracked {
    set: ir::Set,
    kernel: Option<Vec<Element>>,
    /// Additions are pending (a deletion ran since the last sync).
    dirty: bool,
}

impl Tracked {
    fn rbtree(set: &ir::Set) -> bool {
        set.interval && set.key.len() == 1
    }

    fn new(set: ir::Set, in_kernel: bool) -> Result<Self, LowerError> {
        let kernel = if in_kernel && Self::rbtree(&set) {
            Some(encode(&set, set.elements.iter())?)
        } else if Self::rbtree(&set) {
            Some(Vec::new())
        } else {
            None
        };
        Ok(Self {
            set,
            kernel,
            dirty: false,
        })
    }

    /// Brings the kernel encoding to the content: deletions always, and
    /// additions when `add` (returns `(deletes, adds)`).
    fn sync(&mut self, add: bool) -> Result<(Vec<Element>, Vec<Element>), LowerError> {
        let Some(kernel) = self.kernel.as_mut() else {
            return Ok((Vec::new(), Vec::new()));
        };
        self.dirty = !add;
        let target = encode(&self.set, self.set.elements.iter())?;
        let want: HashSet<&Element> = target.iter().collect();
        let dels: Vec<Element> = kernel
            .iter()
            .filter(|e| !want.contains(e))
            .cloned()
            .collect();
        kernel.retain(|e| want.contains(e));
        let mut adds = Vec::new();
        if add {
            let have: HashSet<&Element> = kernel.iter().collect();
            adds = target
                .iter()
                .filter(|e| !have.contains(e))
                .cloned()
                .collect();
            *kernel = target;
        }
        Ok((dels, adds))
    }
}

struct State {
    table: Option<Table>,
    sets: BTreeMap<String, Tracked>,
    ids: AnonIds,
}

impl State {
    fn table(&self) -> Result<&Table, LowerError> {
        self.table.as_ref().ok_or(LowerError::NoTable)
    }

    fn set(&mut self, name: &str) -> Result<&mut Tracked, LowerError> {
        self.sets
            .get_mut(name)
            .ok_or_else(|| LowerError::UnknownSet(name.to_owned()))
    }
}

fn emit(b: &mut Batch, t: &Table, set: &str, dels: &[Element], adds: &[Element]) {
    if !dels.is_empty() {
        b.delete_elements(t, set, dels);
    }
    if !adds.is_empty() {
        b.add_elements(t, set, adds);
    }
}

/// One batch applying `ops` to `current` (the table as the kernel holds it,
/// `None` if the ops create it).
pub fn lower_ops(current: Option<&ir::Table>, ops: &[Op]) -> Result<Batch, LowerError> {
    let mut b = Batch::new();
    lower_ops_into(&mut b, current, ops, &mut AnonIds::default())?;
    Ok(b)
}

/// [`lower_ops`] appending to an existing batch.
pub fn lower_ops_into(
    b: &mut Batch,
    current: Option<&ir::Table>,
    ops: &[Op],
    ids: &mut AnonIds,
) -> Result<(), LowerError> {
    let mut st = State {
        table: current.map(|t| Table::new(lower_family(t.family), &t.name)),
        sets: BTreeMap::new(),
        ids: std::mem::take(ids),
    };
    for s in current.into_iter().flat_map(|t| t.sets.values()) {
        st.sets
            .insert(s.name.clone(), Tracked::new(s.clone(), true)?);
    }
    for op in ops {
        lower_op(b, &mut st, op)?;
    }
    // Additions a deletion made necessary and no later AddElements did.
    let t = st.table.clone();
    for (name, tracked) in st.sets.iter_mut().filter(|(_, s)| s.dirty) {
        let (dels, adds) = tracked.sync(true)?;
        if let Some(t) = &t {
            emit(b, t, name, &dels, &adds);
        }
    }
    *ids = st.ids;
    Ok(())
}

fn lower_op(b: &mut Batch, st: &mut State, op: &Op) -> Result<(), LowerError> {
    match op {
        Op::AddTable { family, name } => {
            let t = Table::new(lower_family(*family), name);
            b.add_table(&t);
            st.table = Some(t);
        }
        Op::DeleteTable { family, name } => {
            b.delete_table(&Table::new(lower_family(*family), name));
            st.sets.clear();
        }
        Op::AddChain { name, base } => {
            b.add_chain(st.table()?, &lower_chain(name, base.as_ref()));
        }
        Op::DeleteChain { name } => {
            b.delete_chain(st.table()?, name);
        }
        Op::FlushChain { name } => {
            b.flush_chain(st.table()?, name);
        }
        Op::AddSet {
            name,
            key,
            interval,
            kind,
        } => {
            let set = ir::Set::new(name, key.clone(), *interval, *kind);
            b.add_set(st.table()?, &lower_set(&set)?);
            st.sets.insert(name.clone(), Tracked::new(set, false)?);
        }
        Op::DeleteSet { name } => {
            b.delete_set(st.table()?, name);
            st.sets.remove(name);
        }
        Op::AddRules { chain, rules } => {
            let t = st.table()?.clone();
            for r in rules {
                add_lowered_rule(b, &t, &lower_rule(chain, r, &mut st.ids)?);
            }
        }
        Op::AddElements { set, elements } => {
            let t = st.table()?.clone();
            let tracked = st.set(set)?;
            let (dels, adds) = if tracked.kernel.is_some() {
                tracked.set.elements.extend(elements.iter().cloned());
                tracked.sync(true)?
            } else {
                let adds = encode(&tracked.set, elements.iter().map(|(k, v)| (k, v)))?;
                tracked.set.elements.extend(elements.iter().cloned());
                (Vec::new(), adds)
            };
            emit(b, &t, set, &dels, &adds);
        }
        Op::DeleteElements { set, keys } => {
            let t = st.table()?.clone();
            let tracked = st.set(set)?;
            let dels =
                if tracked.kernel.is_some() {
                    for k in keys {
                        tracked.set.elements.remove(k);
                    }
                    tracked.sync(false)?.0
                } else {
                    let mut gone = Vec::with_capacity(keys.len());
                    for k in keys {
                        let v = tracked.set.elements.remove(k).ok_or_else(|| {
                            LowerError::BadElements {
                                set: set.clone(),
                                reason: format!("deleting a missing element {k:02x?}"),
                            }
                        })?;
                        gone.push((k.clone(), v));
                    }
                    encode(&tracked.set, gone.iter().map(|(k, v)| (k, v)))?
                };
            emit(b, &t, set, &dels, &[]);
        }
    }
    Ok(())
}
