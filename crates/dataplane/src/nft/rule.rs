//! Rules: an ordered list of expressions appended to a chain.
//!
//! Contract: a [`Rule`] is addressed by its chain's name (and the batch's
//! table); it is always appended. Its optional user data is stored by the
//! kernel verbatim and returned by dumps, which is how a rule found in the
//! kernel is traced back to the ACL entry that produced it.

use super::expr::Expr;
use super::uapi::*;
use crate::netlink::wire::Writer;

/// A rule to append to a chain.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rule {
    pub chain: String,
    pub exprs: Vec<Expr>,
    /// Opaque bytes stored with the rule (`NFTA_RULE_USERDATA`, at most 256):
    /// bulkhead keeps the ACL rule id here so a dump can be traced back.
    pub userdata: Option<Vec<u8>>,
}

impl Rule {
    pub fn new(chain: impl Into<String>, exprs: Vec<Expr>) -> Self {
        Self {
            chain: chain.into(),
            exprs,
            userdata: None,
        }
    }

    pub fn with_userdata(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.userdata = Some(data.into());
        self
    }

    pub(crate) fn encode(&self, w: &mut Writer, table: &str) {
        w.str(NFTA_RULE_TABLE, table);
        w.str(NFTA_RULE_CHAIN, &self.chain);
        let list = w.nest_start(NFTA_RULE_EXPRESSIONS);
        for e in &self.exprs {
            e.encode(w);
        }
        w.nest_end(list);
        if let Some(u) = &self.userdata {
            w.bytes(NFTA_RULE_USERDATA, u);
        }
    }
}
