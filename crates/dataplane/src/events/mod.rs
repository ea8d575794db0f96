//! Reading what the kernel reports about a namespace's firewall, without
//! spawning anything: [`NflogSocket`] receives the packets the drop chains
//! log (NFLOG, `nfnetlink_log`), [`NftMonitor`] receives every nf_tables
//! change committed in the namespace (the `NFNLGRP_NFTABLES` multicast
//! group), with the pid of the process that committed it.
//!
//! Contract: both sockets are opened inside the namespace they watch (the
//! caller's, or one pinned at a path) and stay bound to it; both expose
//! their fd for `poll`, and their `read` drains what is queued and never
//! waits. Both are connected to the kernel (port id 0), so
//! no process of the namespace can unicast fake reports to them. NFLOG
//! groups are per namespace: a group has at most one listener per
//! namespace, so binding fails (`EBUSY`/`EEXIST`) if someone else holds it.

mod headers;
mod monitor;
mod nflog;

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use nix::sys::socket::SockProtocol;

pub use headers::Headers;
pub use monitor::{Commit, MonitorEvent, NftMonitor};
pub use nflog::{LoggedPacket, NflogSocket};

use crate::netlink::{Collect, Socket};

/// A `NETLINK_NETFILTER` socket in one namespace, subscribed to the
/// multicast `groups` bitmask, with a receive buffer of `rcvbuf` bytes:
/// root may exceed rmem_max, and a larger buffer makes a burst of reports
/// (a big commit's events) fit instead of overflowing.
fn open(netns: Option<&Path>, groups: u32, rcvbuf: usize) -> io::Result<Socket> {
    let sock = Socket::open(SockProtocol::NetlinkNetFilter, netns, groups, 256 * 1024)?;
    sock.grow(0, rcvbuf);
    Ok(sock)
}

/// Sends one configuration request and waits for its acknowledgement.
fn request(sock: &mut Socket, msg: &mut crate::netlink::wire::Writer) -> io::Result<()> {
    let seq = sock.take_seq(1);
    msg.set_seq(0, seq);
    let answer = sock.transact(&msg.buf, seq, 1, Collect::EveryRequest, |_, _, _| {})?;
    match answer.into_iter().next().flatten() {
        Some(Err(nack)) => Err(io::Error::from_raw_os_error(nack.errno)),
        _ => Ok(()),
    }
}

/// Whether a read failed because reports were lost (`ENOBUFS`: the
/// receive buffer was full).
fn lost(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOBUFS)
}

impl AsFd for NflogSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

impl AsFd for NftMonitor {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}
