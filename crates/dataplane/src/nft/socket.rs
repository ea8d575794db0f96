//! [`NftSocket`]: commits batches and reads objects back, in one namespace.
//!
//! Contract: a socket belongs to the namespace it was opened for (the
//! caller's, or a pinned one such as `/run/netns/NAME`) and can commit any
//! number of batches. [`NftSocket::commit`] returns `Ok` only when the kernel
//! acknowledged the batch's last message and rejected none; the first
//! rejected message becomes an [`NftError`]. List calls are dumps and never change anything.

use std::path::Path;

use super::batch::Batch;
use super::dump::{self, ChainInfo, RuleInfo, SetInfo, TableInfo};
use super::error::{Error, NftError};
use super::nfnl::NfWriter;
use super::nfnl::NlSocket;
use super::set::Element;
use super::table::{Family, Table};
use super::uapi::*;
use crate::netlink::wire::{Header, Writer};

/// A netlink socket for nf_tables in one network namespace.
#[derive(Debug)]
pub struct NftSocket {
    nl: NlSocket,
}

impl NftSocket {
    /// Opens a socket in the caller's namespace (`None`) or in the namespace
    /// pinned at `netns` (e.g. `/run/netns/NAME`).
    pub fn open(netns: Option<&Path>) -> Result<Self, Error> {
        Ok(Self {
            nl: NlSocket::open(netns).map_err(Error::io("open socket"))?,
        })
    }

    /// Frees the receive buffer until the next request.
    pub fn release_buffer(&mut self) {
        self.nl.release_buffer();
    }

    /// Sends the batch in one `sendmsg` and checks every acknowledgement.
    /// An empty batch is not sent.
    pub fn commit(&mut self, mut batch: Batch) -> Result<(), Error> {
        if batch.is_empty() {
            return Ok(());
        }
        let n = batch.len() as u32;
        let first = self.nl.take_seq(n + 2);
        let buf = batch.finish(first);
        // The kernel runs the batch inside `sendmsg`: when it returns, the
        // rejections (any message) and the one acknowledgement (the last
        // message) are queued. A failed commit phase is answered on the
        // first message's sequence (the kernel has pulled BATCH_BEGIN off
        // by then), so it is reported as that message's error; only errors
        // about the batch itself (generation, unsupported) come on BEGIN.
        let answers = self
            .nl
            .request(buf, first, n as usize + 1)
            .map_err(Error::io("commit batch"))?;
        let failed = answers.iter().enumerate().find_map(|(at, a)| match a {
            Some(Err(nack)) => Some((at, nack.errno)),
            _ => None,
        });
        if let Some((at, errno)) = failed {
            return Err(match at.checked_sub(1) {
                Some(index) => {
                    let m = &batch.msgs[index];
                    NftError {
                        op: m.op,
                        object: m.object.clone(),
                        errno,
                        index,
                    }
                }
                None => NftError {
                    op: "COMMIT",
                    object: "batch".into(),
                    errno,
                    index: n as usize,
                },
            }
            .into());
        }
        if answers.last() != Some(&Some(Ok(()))) {
            return Err(Error::Unacknowledged { sent: n as usize });
        }
        Ok(())
    }

    fn dump(
        &mut self,
        msg: u16,
        family: Option<Family>,
        op: &'static str,
        object: String,
        attrs: impl FnOnce(&mut Writer),
    ) -> Result<Vec<(Header, Vec<u8>)>, Error> {
        let seq = self.nl.take_seq(1);
        let mut w = Writer::default();
        let ty = (NFNL_SUBSYS_NFTABLES << 8) | msg;
        let m = w.nf_begin(
            ty,
            NLM_F_REQUEST | NLM_F_DUMP,
            seq,
            family.map_or(0, |f| f as u8),
            0,
        );
        attrs(&mut w);
        w.end(m);
        self.nl.dump(&w.buf, seq, op, &object)
    }

    /// Every table (of `family`, or of all families).
    pub fn list_tables(&mut self, family: Option<Family>) -> Result<Vec<TableInfo>, Error> {
        let object = family.map_or("all".into(), |f| f.to_string());
        let msgs = self.dump(NFT_MSG_GETTABLE, family, "GETTABLE", object, |_| {})?;
        Ok(msgs.iter().filter_map(|(_, p)| dump::table(p)).collect())
    }

    pub fn table_exists(&mut self, t: &Table) -> Result<bool, Error> {
        Ok(self
            .list_tables(Some(t.family))?
            .iter()
            .any(|i| i.name == t.name))
    }

    pub fn list_chains(&mut self, t: &Table) -> Result<Vec<ChainInfo>, Error> {
        let msgs = self.dump(
            NFT_MSG_GETCHAIN,
            Some(t.family),
            "GETCHAIN",
            t.to_string(),
            |w| {
                w.str(NFTA_CHAIN_TABLE, &t.name);
            },
        )?;
        Ok(msgs
            .iter()
            .filter_map(|(_, p)| dump::chain(p))
            .filter(|c| c.table == t.name)
            .collect())
    }

    /// Rules of a table, or of one chain of it, in chain order.
    pub fn list_rules(&mut self, t: &Table, chain: Option<&str>) -> Result<Vec<RuleInfo>, Error> {
        let object = format!("{t} {}", chain.unwrap_or(""));
        let msgs = self.dump(NFT_MSG_GETRULE, Some(t.family), "GETRULE", object, |w| {
            w.str(NFTA_RULE_TABLE, &t.name);
            if let Some(c) = chain {
                w.str(NFTA_RULE_CHAIN, c);
            }
        })?;
        Ok(msgs
            .iter()
            .filter_map(|(_, p)| dump::rule(p))
            .filter(|r| r.table == t.name && chain.is_none_or(|c| r.chain == c))
            .collect())
    }

    pub fn list_sets(&mut self, t: &Table) -> Result<Vec<SetInfo>, Error> {
        let msgs = self.dump(
            NFT_MSG_GETSET,
            Some(t.family),
            "GETSET",
            t.to_string(),
            |w| {
                w.str(NFTA_SET_TABLE, &t.name);
            },
        )?;
        Ok(msgs
            .iter()
            .filter_map(|(_, p)| dump::set(p))
            .filter(|s| s.table == t.name)
            .collect())
    }

    /// Elements of a set as the kernel stores them (interval sets show their
    /// start and `INTERVAL_END` elements separately).
    pub fn list_elements(&mut self, t: &Table, set: &str) -> Result<Vec<Element>, Error> {
        let msgs = self.dump(
            NFT_MSG_GETSETELEM,
            Some(t.family),
            "GETSETELEM",
            format!("{t} set {set}"),
            |w| {
                w.str(NFTA_SET_ELEM_LIST_TABLE, &t.name);
                w.str(NFTA_SET_ELEM_LIST_SET, set);
            },
        )?;
        let mut out = Vec::new();
        for (_, p) in &msgs {
            dump::elements(p, &mut out);
        }
        Ok(out)
    }
}
