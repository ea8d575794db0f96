//! A diff's operations as one batch.
//!
//! Contract: [`lower_ops`] emits the ops in their order (the diff orders
//! them for the kernel) into one batch. Ops after the first carry no table,
//! and element ops carry no key layout, so the caller passes the table the
//! ops apply to as the kernel holds it now (`None` when the ops start with
//! `AddTable`); set declarations are tracked through the ops like
//! `diff::apply` does. An op costs what it changes, never what the table
//! holds: nothing is copied or encoded for sets the ops do not name.
//! Element ops are encoded on their own: the kernel encoding of a
//! one-field interval (a start element with the data, an end marker at
//! `end+1`) depends only on the interval, and the intervals of one set are
//! disjoint, so no two of them share a kernel element (see
//! [`super::set`]); deleting an interval removes exactly its elements.

use std::collections::HashMap;

use bulkhead_policy::diff::Op;
use bulkhead_policy::ir;

use super::set::{encode, lower_set};
use super::{add_lowered_rule, lower_chain, lower_family, lower_rule, AnonIds, LowerError};
use crate::nft::{Batch, Element, Table};

struct State<'a> {
    table: Option<Table>,
    /// The table as the kernel held it before the batch (`None` once the
    /// batch deletes it).
    current: Option<&'a ir::Table>,
    /// Declarations (without elements) of the sets the batch added, or
    /// `None` for those it deleted; others are as in `current`.
    declared: HashMap<String, Option<ir::Set>>,
    ids: AnonIds,
}

impl State<'_> {
    fn table(&self) -> Result<&Table, LowerError> {
        self.table.as_ref().ok_or(LowerError::NoTable)
    }

    fn set(&self, name: &str) -> Result<&ir::Set, LowerError> {
        match self.declared.get(name) {
            Some(declared) => declared.as_ref(),
            None => self.current.and_then(|t| t.sets.get(name)),
        }
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
        current,
        declared: HashMap::new(),
        ids: std::mem::take(ids),
    };
    for op in ops {
        lower_op(b, &mut st, op)?;
    }
    *ids = st.ids;
    Ok(())
}

fn lower_op(b: &mut Batch, st: &mut State<'_>, op: &Op) -> Result<(), LowerError> {
    match op {
        Op::AddTable { family, name } => {
            let t = Table::new(lower_family(*family), name);
            b.add_table(&t);
            st.table = Some(t);
        }
        Op::DeleteTable { family, name } => {
            b.delete_table(&Table::new(lower_family(*family), name));
            st.declared.clear();
            st.current = None;
        }
        Op::AddChain { name, base } => {
            b.add_chain(st.table()?, &lower_chain(name, base.as_deref()));
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
            counter,
        } => {
            let mut set = ir::Set::new(name, key.clone(), *interval, *kind);
            set.counter = *counter;
            b.add_set(st.table()?, &lower_set(&set)?);
            st.declared.insert(name.clone(), Some(set));
        }
        Op::DeleteSet { name } => {
            b.delete_set(st.table()?, name);
            st.declared.insert(name.clone(), None);
        }
        Op::AddRules { chain, rules } => {
            let t = st.table()?.clone();
            for r in rules {
                add_lowered_rule(b, &t, &lower_rule(chain, r, &mut st.ids)?);
            }
        }
        Op::AddElements { set, elements, .. } => {
            let adds = encode(st.set(set)?, elements.iter().map(|(k, v)| (k, v)))?;
            emit(b, st.table()?, set, &[], &adds);
        }
        Op::DeleteElements { set, keys } => {
            // Deletion names keys only: encode them as a plain set would.
            let decl = st.set(set)?;
            let keys_only = ir::Set::new(
                &decl.name,
                decl.key.clone(),
                decl.interval,
                ir::SetKind::Set,
            );
            let dels = encode(&keys_only, keys.iter().map(|k| (k, &None)))?;
            emit(b, st.table()?, set, &dels, &[]);
        }
    }
    Ok(())
}
