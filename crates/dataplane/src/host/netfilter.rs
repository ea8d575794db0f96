//! The host kernel's netfilter side: committing table changes (one
//! nf_tables transaction per call), reading counters, and listing and
//! deleting tracked connections.
//!
//! Contract: host-namespace calls reuse the host's sockets, and calls for a
//! namespace this kernel made reuse its kept nf_tables socket
//! (`owned.rs`); a call for any other namespace opens a socket there for
//! that call only and hands it to the reaper, so closing it (an RCU wait)
//! is off the operation's path.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Mutex;

use super::{err, owned, HostKernel};
use crate::conntrack::{Conntrack, Tuple};
use crate::kernel::{Flow, Result, TableChange};
use crate::lower;
use crate::nft::{Batch as NftBatch, NftSocket, Table as NftTable};

/// One batch for every change: one transaction.
fn lower_changes(changes: &[TableChange<'_>]) -> std::result::Result<NftBatch, lower::LowerError> {
    let mut batch = NftBatch::new();
    let mut ids = lower::AnonIds::default();
    for c in changes {
        if c.replace {
            batch.destroy_table(&NftTable::new(lower::lower_family(c.family), &c.table));
        }
        let current = if c.replace { None } else { c.current };
        lower::lower_ops_into(&mut batch, current, &c.ops, &mut ids)?;
    }
    Ok(batch)
}

impl HostKernel {
    /// Runs `f` on the host's socket `cached` (`netns` = None), or on one
    /// opened in `netns` for this call and closed by the reaper.
    fn with_socket<S, R, E, F>(
        &self,
        netns: Option<&Path>,
        cached: &Mutex<S>,
        open: impl FnOnce(&Path) -> std::result::Result<S, F>,
        f: impl FnOnce(&mut S) -> std::result::Result<R, E>,
    ) -> Result<R>
    where
        S: Send + 'static,
        E: std::error::Error + 'static,
        F: std::error::Error + 'static,
    {
        let Some(path) = netns else {
            return f(&mut cached.lock().unwrap_or_else(|p| p.into_inner())).map_err(err);
        };
        let mut sock = open(path).map_err(err)?;
        let out = f(&mut sock).map_err(err);
        self.reaper.reap(sock);
        out
    }

    pub(super) fn commit_changes(
        &self,
        netns: Option<&Path>,
        changes: &[TableChange<'_>],
    ) -> Result<()> {
        let batch = lower_changes(changes).map_err(err)?;
        if let Some(kept) = netns.and_then(|p| self.owned.get(p)) {
            return owned::lock(&kept).nft.commit(batch).map_err(err);
        }
        let open = |p: &Path| NftSocket::open(Some(p));
        self.with_socket(netns, &self.nft, open, |s| s.commit(batch))
    }

    pub(super) fn read_counters(
        &self,
        netns: Option<&Path>,
        table: &bulkhead_policy::ir::Table,
        sets: &[String],
    ) -> Result<crate::counters::TableCounters> {
        if let Some(kept) = netns.and_then(|p| self.owned.get(p)) {
            return crate::counters::read(&mut owned::lock(&kept).nft, table, sets).map_err(err);
        }
        let open = |p: &Path| NftSocket::open(Some(p));
        self.with_socket(netns, &self.nft, open, |s| {
            crate::counters::read(s, table, sets)
        })
    }

    fn with_conntrack<R>(
        &self,
        netns: Option<&Path>,
        f: impl FnOnce(&mut Conntrack) -> std::result::Result<R, crate::nft::Error>,
    ) -> Result<R> {
        let open = |p: &Path| Conntrack::open(Some(p));
        self.with_socket(netns, &self.conntrack, open, f)
    }

    pub(super) fn tracked_flows(&self, netns: Option<&Path>, addr: IpAddr) -> Result<Vec<Flow>> {
        // Each dump walks the kernel's whole, global, conntrack hash (every
        // namespace's entries) whatever it returns; the namespace's own
        // count is kept by the kernel and costs one short request. Read
        // after the caller's commit, a count of 0 means every connection
        // still to come is classified by the committed rules: nothing to
        // cut. A small table is copied out in one walk and matched here.
        let entries = self.with_conntrack(netns, |ct| match ct.count() {
            Ok(0) => Ok(Vec::new()),
            Ok(n) if n <= crate::conntrack::SMALL_TABLE => Ok(ct
                .list()?
                .into_iter()
                .filter(|e| e.orig.src == addr || e.orig.dst == addr)
                .collect()),
            _ => {
                let mut all = ct.list_matching(addr, false, true)?;
                all.extend(ct.list_matching(addr, false, false)?);
                Ok(all)
            }
        })?;
        let ported = |p: u8| matches!(p, 6 | 17 | 132 | 136);
        let mut seen = std::collections::HashSet::new();
        Ok(entries
            .into_iter()
            .filter(|e| seen.insert(e.orig)) // a flow to itself is in both dumps
            .map(|e| Flow {
                protocol: e.orig.proto,
                src: e.orig.src,
                dst: e.orig.dst,
                src_port: ported(e.orig.proto).then_some(e.orig.sport),
                dst_port: ported(e.orig.proto).then_some(e.orig.dport),
            })
            .collect())
    }

    /// Queues the deletion of the host's connections of `addr` on the
    /// reaper. Addresses gathered while a deletion waits join it
    /// ([`super::gather`]): a burst of endpoint deletes costs one walk of
    /// the kernel's connection table per [`super::gather::MOST`], not one
    /// per endpoint.
    pub(super) fn forget_host_flows_later(&self, addr: IpAddr) {
        if !self.forgetting.add(addr) {
            return;
        }
        let (ct, pending) = (self.cleanup_ct.clone(), self.forgetting.clone());
        self.flows_reaper.later(move || {
            let addrs = pending.take_when_due(super::gather::QUIET, super::gather::MOST);
            let gone = ct
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .delete_involving_any(&addrs);
            if let Err(e) = gone {
                tracing::warn!(?addrs, error = %e, "could not delete tracked connections");
            }
        });
    }

    pub(super) fn delete_tracked_flows(
        &self,
        netns: Option<&Path>,
        flows: &[Flow],
    ) -> Result<usize> {
        self.with_conntrack(netns, |ct| {
            let mut removed = 0;
            for f in flows {
                let t = Tuple {
                    src: f.src,
                    dst: f.dst,
                    proto: f.protocol,
                    sport: f.src_port.unwrap_or(0),
                    dport: f.dst_port.unwrap_or(0),
                };
                removed += ct.delete_flow(&t)?;
            }
            Ok(removed)
        })
    }
}
