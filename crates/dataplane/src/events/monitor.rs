//! [`NftMonitor`]: the nf_tables changes committed in one namespace, as the
//! kernel multicasts them (`NFNLGRP_NFTABLES`, what `nft monitor` reads).
//!
//! The kernel reports each changed object (table, chain, rule, set,
//! element) and then, once per commit, a `NEWGEN` message carrying the pid
//! of the committing process. [`NftMonitor::read`] groups the object
//! reports of one commit into a [`Commit`] with that pid, so a caller can
//! tell its own commits (its own pid) from anyone else's. When reports
//! were lost (the receive buffer overflowed) it says so with
//! [`MonitorEvent::Overflow`]: the caller then has to look for itself.

use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::Path;

use crate::netlink::wire::{be32_of, messages, str_of};
use crate::netlink::Socket;
use crate::nft::nfnl::nfgen;
use crate::nft::uapi::*;

/// One commit: who made it and which tables it touched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Commit {
    /// The committing process (`None` if the kernel did not say).
    pub pid: Option<u32>,
    /// (nf family, table name, what: `delete table`, `new rule`, …) per
    /// object report of the commit.
    pub changes: Vec<(u8, String, &'static str)>,
}

impl Commit {
    /// Whether the commit changed table `name` of `family`.
    pub fn touches(&self, family: u8, name: &str) -> bool {
        self.changes
            .iter()
            .any(|(f, t, _)| *f == family && t == name)
    }

    /// Whether one of this process's threads made the commit. The kernel
    /// reports the committing thread's id in the initial pid namespace
    /// (where bulkheadd runs). A thread that committed and has exited
    /// since is taken for someone else: the restore that follows is a
    /// harmless replace with what was programmed anyway.
    pub fn by_this_process(&self) -> bool {
        self.pid.is_some_and(|pid| {
            pid == std::process::id() || Path::new(&format!("/proc/self/task/{pid}")).exists()
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MonitorEvent {
    Commit(Commit),
    /// Reports were lost; what changed is unknown.
    Overflow,
}

/// Subscribed to one namespace's nf_tables changes.
#[derive(Debug)]
pub struct NftMonitor {
    pub(super) sock: Socket,
    pending: Commit,
}

fn what(msg: u16) -> Option<&'static str> {
    Some(match msg {
        NFT_MSG_NEWTABLE => "new table",
        NFT_MSG_DELTABLE | NFT_MSG_DESTROYTABLE => "delete table",
        NFT_MSG_NEWCHAIN => "new chain",
        NFT_MSG_DELCHAIN | NFT_MSG_DESTROYCHAIN => "delete chain",
        NFT_MSG_NEWRULE => "new rule",
        NFT_MSG_DELRULE | NFT_MSG_DESTROYRULE => "delete rule",
        NFT_MSG_NEWSET => "new set",
        NFT_MSG_DELSET | NFT_MSG_DESTROYSET => "delete set",
        NFT_MSG_NEWSETELEM => "new element",
        NFT_MSG_DELSETELEM | NFT_MSG_DESTROYSETELEM => "delete element",
        _ => return None,
    })
}

impl NftMonitor {
    /// Subscribes in `netns` (`None`: the caller's namespace).
    pub fn open(netns: Option<&Path>) -> io::Result<Self> {
        Ok(Self {
            // A 10k-rule table's creation reports ~40k objects; 16 MiB
            // holds them, so our own big commits do not overflow.
            sock: super::open(netns, 1 << (NFNLGRP_NFTABLES - 1), 16 << 20)?,
            pending: Commit::default(),
        })
    }

    pub fn raw_fd(&self) -> RawFd {
        self.sock.as_fd().as_raw_fd()
    }

    /// Every complete commit queued now (never waits). The receive buffer
    /// is freed once the queue is empty (one socket per endpoint
    /// namespace, mostly idle).
    pub fn read(&mut self) -> io::Result<Vec<MonitorEvent>> {
        let mut out = Vec::new();
        loop {
            let n = match self.sock.recv(false) {
                Ok(Some(n)) => n,
                Ok(None) => {
                    self.sock.release_buffer();
                    return Ok(out);
                }
                Err(e) if super::lost(&e) => {
                    self.pending = Commit::default();
                    out.push(MonitorEvent::Overflow);
                    continue;
                }
                Err(e) => return Err(e),
            };
            for (hdr, payload) in messages(self.sock.received(n)) {
                if hdr.ty >> 8 != NFNL_SUBSYS_NFTABLES {
                    continue;
                }
                let Some((family, attrs)) = nfgen(payload) else {
                    continue;
                };
                let msg = hdr.ty & 0xff;
                if msg == NFT_MSG_NEWGEN {
                    let pid = attrs
                        .filter(|(t, _)| *t == NFTA_GEN_PROC_PID)
                        .find_map(|(_, v)| be32_of(v));
                    let mut commit = std::mem::take(&mut self.pending);
                    commit.pid = pid;
                    out.push(MonitorEvent::Commit(commit));
                    continue;
                }
                let Some(what) = what(msg) else { continue };
                // Attribute 1 is the table's name in every object report
                // (NFTA_TABLE_NAME, NFTA_CHAIN_TABLE, NFTA_RULE_TABLE, …).
                if let Some((_, v)) = attrs.into_iter().find(|(t, _)| *t == 1) {
                    self.pending.changes.push((family, str_of(v), what));
                }
            }
        }
    }
}
