//! Lowering of the policy crate's typed nftables IR onto our netlink encoder.
//!
//! Contract: [`lower_table`] turns a whole [`ir::Table`] and [`lower_ops`] a
//! `diff` ([`Op`] list) into ONE [`nft::Batch`], i.e. one atomic kernel
//! transaction; nothing here opens a socket or spawns a process. Every IR
//! construct maps to a fixed expression sequence (the table in
//! [`ir::Match`]'s docs): a [`ir::Field`] is one `meta`/`payload` load; set
//! keys of several fields live in consecutive 32-bit registers
//! ([`nft::ConcatLayout`]); single-field interval sets use the rbtree
//! encoding (start + `INTERVAL_END` at `end+1`, the end marker left out when
//! the next interval starts right there, as nft does); concatenated interval
//! sets use `KEY_END` (pipapo); other sets exact keys. Several protocols in
//! one match become an anonymous constant set created in the same batch.
//! Object order inside a batch lets the kernel resolve every reference:
//! tables, then chains and sets, then elements, then rules; `lower_ops`
//! keeps the order of the ops (diff's contract gives a valid one).
//! Element changes of rbtree sets are computed on the kernel encoding of the
//! whole set before and after, so neighbouring end markers stay right.

mod action;
mod field;
mod ops;
mod rule;
mod set;

use bulkhead_policy::ir;

use crate::nft;

pub use field::field_load;
pub use ops::{lower_ops, lower_ops_into};
pub use rule::{comment_userdata, lower_rule, LoweredRule};
pub(crate) use set::encode;
pub use set::{lower_elements, lower_set};

/// Why the IR could not be lowered (the IR is inconsistent with itself).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LowerError {
    #[error("set {set}: key field {field} is {got} bytes, the field has {want}")]
    KeyLength {
        set: String,
        field: usize,
        got: usize,
        want: usize,
    },
    #[error("set {set}: key has {got} fields, the set {want}")]
    KeyArity {
        set: String,
        got: usize,
        want: usize,
    },
    #[error("set {set}: range {from:02x?}..{to:02x?} in a set without the interval flag")]
    RangeInExactSet {
        set: String,
        from: Vec<u8>,
        to: Vec<u8>,
    },
    #[error("set {set}: {reason}")]
    BadElements { set: String, reason: String },
    #[error("set {0} is not declared in the table the ops apply to")]
    UnknownSet(String),
    #[error("ops name no table: start with AddTable or pass the current table")]
    NoTable,
    #[error("a match has an empty list ({0})")]
    EmptyMatch(&'static str),
    #[error("prefix of {field:?}: address is {got} bytes, length /{len}")]
    BadPrefix {
        field: ir::Field,
        got: usize,
        len: u8,
    },
    #[error("register layout: {0}")]
    Layout(#[from] nft::LayoutError),
}

/// The netlink family of an IR family.
pub fn lower_family(f: ir::Family) -> nft::Family {
    match f {
        ir::Family::Inet => nft::Family::Inet,
        ir::Family::Ip => nft::Family::Ip,
        ir::Family::Ip6 => nft::Family::Ip6,
        ir::Family::Netdev => nft::Family::Netdev,
        ir::Family::Bridge => nft::Family::Bridge,
    }
}

/// The encoder's verdict for an IR verdict.
pub fn lower_verdict(v: &ir::Verdict) -> nft::Verdict {
    match v {
        ir::Verdict::Accept => nft::Verdict::Accept,
        ir::Verdict::Drop => nft::Verdict::Drop,
        ir::Verdict::Continue => nft::Verdict::Continue,
        ir::Verdict::Return => nft::Verdict::Return,
        ir::Verdict::Jump(c) => nft::Verdict::Jump(c.to_string()),
        ir::Verdict::Goto(c) => nft::Verdict::Goto(c.to_string()),
    }
}

/// A chain declaration (without its rules).
pub fn lower_chain(name: &str, base: Option<&ir::BaseChain>) -> nft::Chain {
    let Some(b) = base else {
        return nft::Chain::regular(name);
    };
    let hook = match b.hook {
        ir::Hook::Prerouting => nft::Hook::Prerouting,
        ir::Hook::Input => nft::Hook::Input,
        ir::Hook::Forward => nft::Hook::Forward,
        ir::Hook::Output => nft::Hook::Output,
        ir::Hook::Postrouting => nft::Hook::Postrouting,
        ir::Hook::Ingress => nft::Hook::Ingress,
    };
    let kind = match b.kind {
        ir::ChainKind::Filter => nft::ChainType::Filter,
        ir::ChainKind::Nat => nft::ChainType::Nat,
    };
    let policy = match b.policy {
        ir::ChainPolicy::Accept => nft::Policy::Accept,
        ir::ChainPolicy::Drop => nft::Policy::Drop,
    };
    let chain = nft::Chain::base(name, kind, hook, b.priority, policy);
    match &b.device {
        Some(dev) => chain.on_device(dev),
        None => chain,
    }
}

/// Ids for anonymous sets of one batch (from 1 up; the batch's own
/// automatic ids count down from `u32::MAX`).
#[derive(Debug, Default)]
pub struct AnonIds(u32);

impl AnonIds {
    pub fn next_id(&mut self) -> u32 {
        self.0 += 1;
        self.0
    }
}

/// Appends a lowered rule (its anonymous sets and elements first).
pub fn add_lowered_rule(b: &mut nft::Batch, t: &nft::Table, r: &LoweredRule) {
    for (s, elems) in &r.anon_sets {
        b.add_set(t, s);
        b.add_elements(t, s, elems);
    }
    b.add_rule(t, &r.rule);
}

/// Appends the creation of `table` (and all its content) to `b`.
pub fn lower_table_into(
    b: &mut nft::Batch,
    table: &ir::Table,
    ids: &mut AnonIds,
) -> Result<(), LowerError> {
    let t = nft::Table::new(lower_family(table.family), &table.name);
    b.add_table(&t);
    for c in table.chains.values() {
        b.add_chain(&t, &lower_chain(&c.name, c.base.as_deref()));
    }
    for s in table.sets.values() {
        b.add_set(&t, &lower_set(s)?);
    }
    for s in table.sets.values() {
        let elems = lower_elements(s)?;
        if !elems.is_empty() {
            b.add_elements(&t, s.name.as_str(), &elems);
        }
    }
    for c in table.chains.values() {
        for r in &c.rules {
            add_lowered_rule(b, &t, &lower_rule(&c.name, r, ids)?);
        }
    }
    Ok(())
}

/// One batch that creates `table` from nothing (existing objects of the
/// same names are kept by the kernel: destroy the table first to replace).
pub fn lower_table(table: &ir::Table) -> Result<nft::Batch, LowerError> {
    let mut b = nft::Batch::new();
    lower_table_into(&mut b, table, &mut AnonIds::default())?;
    Ok(b)
}

/// One batch that replaces whatever table of that family and name exists
/// with `table`: `DESTROYTABLE` (no error if absent) then the creation.
pub fn lower_table_replace(table: &ir::Table) -> Result<nft::Batch, LowerError> {
    let mut b = nft::Batch::new();
    let t = nft::Table::new(lower_family(table.family), &table.name);
    b.destroy_table(&t);
    lower_table_into(&mut b, table, &mut AnonIds::default())?;
    Ok(b)
}
