//! Reading what the kernel reports about a namespace's firewall, without
//! spawning anything: [`NflogSocket`] receives the packets the drop chains
//! log (NFLOG, `nfnetlink_log`), [`NftMonitor`] receives every nf_tables
//! change committed in the namespace (the `NFNLGRP_NFTABLES` multicast
//! group), with the pid of the process that committed it.
//!
//! Contract: both sockets are opened inside the namespace they watch (the
//! caller's, or one pinned at a path) and stay bound to it; both are
//! non-blocking, expose their fd for `poll`, and their `read` drains what is
//! queued and never waits. Both are connected to the kernel (port id 0), so
//! no process of the namespace can unicast fake reports to them. NFLOG
//! groups are per namespace: a group has at most one listener per
//! namespace, so binding fails (`EBUSY`/`EEXIST`) if someone else holds it.

mod headers;
mod monitor;
mod nflog;

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;

use nix::sys::socket::{
    bind, connect, recv, send, setsockopt, socket, sockopt, AddressFamily, MsgFlags, NetlinkAddr,
    SockFlag, SockProtocol, SockType,
};

pub use headers::Headers;
pub use monitor::{Commit, MonitorEvent, NftMonitor};
pub use nflog::{LoggedPacket, NflogSocket};

use crate::nft::uapi::{NLMSG_ERROR, NLMSG_HDRLEN};
use crate::nft::wire::messages;

fn errno(e: nix::Error) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// A non-blocking `NETLINK_NETFILTER` socket in one namespace, subscribed
/// to the multicast `groups` bitmask.
#[derive(Debug)]
struct RawSocket {
    fd: OwnedFd,
    buf: Vec<u8>,
}

impl RawSocket {
    fn open(netns: Option<&Path>, groups: u32, rcvbuf: usize) -> io::Result<Self> {
        let fd = crate::netns::run_in(netns, || {
            socket(
                AddressFamily::Netlink,
                SockType::Raw,
                SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
                SockProtocol::NetlinkNetFilter,
            )
            .map_err(errno)
        })??;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, groups)).map_err(errno)?;
        connect(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).map_err(errno)?;
        // Root may exceed rmem_max; a larger buffer makes a burst of reports
        // (a big commit's events) fit instead of overflowing.
        let _ = setsockopt(&fd, sockopt::RcvBufForce, &rcvbuf)
            .or_else(|_| setsockopt(&fd, sockopt::RcvBuf, &rcvbuf));
        Ok(Self {
            fd,
            buf: vec![0; 256 * 1024],
        })
    }

    /// Sends one request and waits (briefly) for its acknowledgement.
    fn request(&mut self, msg: &[u8], seq: u32) -> io::Result<()> {
        let n = send(self.fd.as_raw_fd(), msg, MsgFlags::empty()).map_err(errno)?;
        if n != msg.len() {
            return Err(io::Error::other("short netlink send"));
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while std::time::Instant::now() < deadline {
            let Some(n) = self.recv()? else {
                std::thread::sleep(std::time::Duration::from_millis(1));
                continue;
            };
            for (hdr, payload) in messages(&self.buf[..n]) {
                if hdr.ty != NLMSG_ERROR || hdr.seq != seq || payload.len() < 4 + NLMSG_HDRLEN {
                    continue;
                }
                let err = i32::from_ne_bytes(payload[0..4].try_into().expect("4 bytes"));
                return match err {
                    0 => Ok(()),
                    e => Err(io::Error::from_raw_os_error(-e)),
                };
            }
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "no netlink acknowledgement",
        ))
    }

    /// One datagram, `None` when nothing is queued. `ENOBUFS` (reports
    /// were lost because the buffer was full) is returned as an error of
    /// kind `OutOfMemory`.
    fn recv(&mut self) -> io::Result<Option<usize>> {
        loop {
            match recv(self.fd.as_raw_fd(), &mut self.buf, MsgFlags::empty()) {
                Ok(n) => return Ok(Some(n)),
                Err(nix::Error::EAGAIN) => return Ok(None),
                Err(nix::Error::EINTR) => continue,
                Err(nix::Error::ENOBUFS) => {
                    return Err(io::Error::new(io::ErrorKind::OutOfMemory, "reports lost"))
                }
                Err(e) => return Err(errno(e)),
            }
        }
    }

    fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for RawSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
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
