//! One nf_tables transaction: messages between `BATCH_BEGIN` and `BATCH_END`.
//!
//! Contract: a [`Batch`] encodes each operation as it is added, into one
//! buffer. The kernel reports every rejected message by its sequence number
//! (an error names the message that caused it); `NLM_F_ACK` is left on the
//! last message only, so success is one acknowledgement whatever the batch
//! size (an ack per message of a 100k-rule ACL overflowed any receive
//! buffer). The kernel applies the
//! whole batch or none of it. Sequence numbers are stamped at commit time by
//! the socket ([`super::NftSocket::commit`]). Element lists longer than one
//! netlink attribute can hold (64 KiB) are split over several messages of the
//! same batch, which stays atomic.

use super::chain::Chain;
use super::nfnl::NfWriter;
use super::rule::Rule;
use super::set::{Element, Set};
use super::table::Table;
use super::uapi::*;
use crate::netlink::wire::Writer;

/// Largest element list put in one message (a nest length is a u16).
const MAX_ELEMS_NEST: usize = 60 * 1024;

/// What one message of a batch does, for error reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MsgInfo {
    pub(crate) op: &'static str,
    pub(crate) object: String,
    pub(crate) start: usize,
}

/// A set addressed by name, and by batch-local id when it is created in the
/// same batch and has no name the kernel knows yet (anonymous sets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetRef<'a> {
    pub name: &'a str,
    pub id: Option<u32>,
}

impl<'a> From<&'a str> for SetRef<'a> {
    fn from(name: &'a str) -> Self {
        SetRef { name, id: None }
    }
}

impl<'a> From<&'a Set> for SetRef<'a> {
    fn from(s: &'a Set) -> Self {
        SetRef {
            name: &s.name,
            id: s.id,
        }
    }
}

/// A transaction being built.
#[derive(Debug)]
pub struct Batch {
    pub(crate) w: Writer,
    pub(crate) msgs: Vec<MsgInfo>,
    /// Next id for sets created without one (from the top of the range,
    /// away from ids callers pick).
    next_set_id: u32,
}

impl Default for Batch {
    fn default() -> Self {
        Self::new()
    }
}

impl Batch {
    pub fn new() -> Self {
        let mut w = Writer::default();
        let m = w.nf_begin(
            NFNL_MSG_BATCH_BEGIN,
            NLM_F_REQUEST,
            0,
            0,
            NFNL_SUBSYS_NFTABLES,
        );
        w.end(m);
        Self {
            w,
            msgs: Vec::new(),
            next_set_id: u32::MAX,
        }
    }

    /// Number of messages (without BEGIN/END).
    pub fn len(&self) -> usize {
        self.msgs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }

    /// Encoded size so far, in bytes.
    pub fn encoded_len(&self) -> usize {
        self.w.buf.len()
    }

    fn open(
        &mut self,
        msg: u16,
        flags: u16,
        family: u8,
        op: &'static str,
        object: String,
    ) -> usize {
        let ty = (NFNL_SUBSYS_NFTABLES << 8) | msg;
        let start = self
            .w
            .nf_begin(ty, NLM_F_REQUEST | NLM_F_ACK | flags, 0, family, 0);
        self.msgs.push(MsgInfo { op, object, start });
        start
    }

    /// Creates the table if it does not exist (existing content is kept).
    pub fn add_table(&mut self, t: &Table) -> &mut Self {
        let m = self.open(
            NFT_MSG_NEWTABLE,
            NLM_F_CREATE,
            t.family as u8,
            "NEWTABLE",
            t.to_string(),
        );
        self.w.str(NFTA_TABLE_NAME, &t.name);
        self.w.be32(NFTA_TABLE_FLAGS, 0);
        self.w.end(m);
        self
    }

    /// Deletes the table and everything in it; fails if it does not exist.
    pub fn delete_table(&mut self, t: &Table) -> &mut Self {
        self.table_op(NFT_MSG_DELTABLE, "DELTABLE", t)
    }

    /// Deletes the table and everything in it if it exists (kernel 6.3+).
    pub fn destroy_table(&mut self, t: &Table) -> &mut Self {
        self.table_op(NFT_MSG_DESTROYTABLE, "DESTROYTABLE", t)
    }

    fn table_op(&mut self, msg: u16, op: &'static str, t: &Table) -> &mut Self {
        let m = self.open(msg, 0, t.family as u8, op, t.to_string());
        self.w.str(NFTA_TABLE_NAME, &t.name);
        self.w.end(m);
        self
    }

    /// Creates the chain (or, if it exists, leaves it as it is).
    pub fn add_chain(&mut self, t: &Table, c: &Chain) -> &mut Self {
        let m = self.open(
            NFT_MSG_NEWCHAIN,
            NLM_F_CREATE,
            t.family as u8,
            "NEWCHAIN",
            format!("{t} {}", c.name),
        );
        c.encode(&mut self.w, &t.name);
        self.w.end(m);
        self
    }

    /// Deletes a chain and its rules; fails if a rule still jumps to it.
    pub fn delete_chain(&mut self, t: &Table, chain: &str) -> &mut Self {
        self.chain_op(NFT_MSG_DELCHAIN, "DELCHAIN", t, chain)
    }

    /// Like [`Batch::delete_chain`], but a missing chain is not an error.
    pub fn destroy_chain(&mut self, t: &Table, chain: &str) -> &mut Self {
        self.chain_op(NFT_MSG_DESTROYCHAIN, "DESTROYCHAIN", t, chain)
    }

    fn chain_op(&mut self, msg: u16, op: &'static str, t: &Table, chain: &str) -> &mut Self {
        let m = self.open(msg, 0, t.family as u8, op, format!("{t} {chain}"));
        self.w.str(NFTA_CHAIN_TABLE, &t.name);
        self.w.str(NFTA_CHAIN_NAME, chain);
        self.w.end(m);
        self
    }

    /// Deletes every rule of a chain (`DELRULE` naming only the chain).
    pub fn flush_chain(&mut self, t: &Table, chain: &str) -> &mut Self {
        let m = self.open(
            NFT_MSG_DELRULE,
            0,
            t.family as u8,
            "DELRULE",
            format!("{t} {chain}"),
        );
        self.w.str(NFTA_RULE_TABLE, &t.name);
        self.w.str(NFTA_RULE_CHAIN, chain);
        self.w.end(m);
        self
    }

    /// Appends a rule at the end of its chain.
    pub fn add_rule(&mut self, t: &Table, r: &Rule) -> &mut Self {
        let flags = NLM_F_CREATE | NLM_F_APPEND;
        let m = self.open(
            NFT_MSG_NEWRULE,
            flags,
            t.family as u8,
            "NEWRULE",
            format!("{t} {}", r.chain),
        );
        r.encode(&mut self.w, &t.name);
        self.w.end(m);
        self
    }

    /// Deletes one rule by the handle the kernel gave it.
    pub fn delete_rule(&mut self, t: &Table, chain: &str, handle: u64) -> &mut Self {
        let object = format!("{t} {chain} handle {handle}");
        let m = self.open(NFT_MSG_DELRULE, 0, t.family as u8, "DELRULE", object);
        self.w.str(NFTA_RULE_TABLE, &t.name);
        self.w.str(NFTA_RULE_CHAIN, chain);
        self.w.be64(NFTA_RULE_HANDLE, handle);
        self.w.end(m);
        self
    }

    /// Creates a set or map (an existing one with the same spec is kept).
    /// A set without an id gets a batch-local one: kernel 6.18 rejects
    /// `NEWSET` without `NFTA_SET_ID` (EINVAL).
    pub fn add_set(&mut self, t: &Table, s: &Set) -> &mut Self {
        let id = s.id.unwrap_or_else(|| {
            self.next_set_id -= 1;
            self.next_set_id + 1
        });
        let m = self.open(
            NFT_MSG_NEWSET,
            NLM_F_CREATE,
            t.family as u8,
            "NEWSET",
            format!("{t} set {}", s.name),
        );
        s.encode(&mut self.w, &t.name, id);
        self.w.end(m);
        self
    }

    /// Deletes a set; fails while a rule references it.
    pub fn delete_set(&mut self, t: &Table, name: &str) -> &mut Self {
        let m = self.open(
            NFT_MSG_DELSET,
            0,
            t.family as u8,
            "DELSET",
            format!("{t} set {name}"),
        );
        self.w.str(NFTA_SET_TABLE, &t.name);
        self.w.str(NFTA_SET_NAME, name);
        self.w.end(m);
        self
    }

    /// Adds elements; an element that exists already is not an error.
    pub fn add_elements<'a>(
        &mut self,
        t: &Table,
        set: impl Into<SetRef<'a>>,
        elems: &[Element],
    ) -> &mut Self {
        self.elements(
            NFT_MSG_NEWSETELEM,
            NLM_F_CREATE,
            "NEWSETELEM",
            t,
            set.into(),
            elems,
            true,
        )
    }

    /// Deletes elements; a missing element fails the batch (`ENOENT`).
    pub fn delete_elements<'a>(
        &mut self,
        t: &Table,
        set: impl Into<SetRef<'a>>,
        elems: &[Element],
    ) -> &mut Self {
        self.elements(
            NFT_MSG_DELSETELEM,
            0,
            "DELSETELEM",
            t,
            set.into(),
            elems,
            false,
        )
    }

    /// Removes every element of a set.
    pub fn flush_set<'a>(&mut self, t: &Table, set: impl Into<SetRef<'a>>) -> &mut Self {
        let set = set.into();
        let m = self.open(
            NFT_MSG_DELSETELEM,
            0,
            t.family as u8,
            "DELSETELEM",
            format!("{t} set {}", set.name),
        );
        self.elem_list_header(t, set);
        self.w.end(m);
        self
    }

    fn elem_list_header(&mut self, t: &Table, set: SetRef<'_>) {
        self.w.str(NFTA_SET_ELEM_LIST_TABLE, &t.name);
        self.w.str(NFTA_SET_ELEM_LIST_SET, set.name);
        if let Some(id) = set.id {
            self.w.be32(NFTA_SET_ELEM_LIST_SET_ID, id);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn elements(
        &mut self,
        msg: u16,
        flags: u16,
        op: &'static str,
        t: &Table,
        set: SetRef<'_>,
        elems: &[Element],
        with_data: bool,
    ) -> &mut Self {
        let mut rest = elems;
        while !rest.is_empty() {
            let m = self.open(
                msg,
                flags,
                t.family as u8,
                op,
                format!("{t} set {}", set.name),
            );
            self.elem_list_header(t, set);
            let list = self.w.nest_start(NFTA_SET_ELEM_LIST_ELEMENTS);
            let list_start = self.w.buf.len();
            let mut taken = 0;
            for e in rest {
                let before = self.w.buf.len();
                e.encode(&mut self.w, with_data);
                if self.w.buf.len() - list_start > MAX_ELEMS_NEST && taken > 0 {
                    self.w.buf.truncate(before);
                    break;
                }
                taken += 1;
            }
            self.w.nest_end(list);
            self.w.end(m);
            rest = &rest[taken..];
        }
        self
    }

    /// Appends BATCH_END and stamps sequence numbers from `first_seq`:
    /// BEGIN gets `first_seq`, message `i` gets `first_seq + 1 + i`.
    pub(crate) fn finish(&mut self, first_seq: u32) -> &[u8] {
        let end = self.w.nf_begin(
            NFNL_MSG_BATCH_END,
            NLM_F_REQUEST,
            0,
            0,
            NFNL_SUBSYS_NFTABLES,
        );
        self.w.end(end);
        self.w.set_seq(0, first_seq);
        let count = self.msgs.len();
        for (i, m) in self.msgs.iter().enumerate() {
            self.w
                .set_seq(m.start, first_seq.wrapping_add(1 + i as u32));
            // Only the last message asks for an ack: errors come anyway.
            if i + 1 < count {
                let flags = self.w.flags(m.start);
                self.w.set_flags(m.start, flags & !NLM_F_ACK);
            }
        }
        self.w
            .set_seq(end, first_seq.wrapping_add(1 + count as u32));
        &self.w.buf
    }
}
