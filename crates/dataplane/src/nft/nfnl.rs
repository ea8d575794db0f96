//! A blocking `NETLINK_NETFILTER` socket, optionally inside another network
//! namespace; shared by nf_tables and ctnetlink.
//!
//! Contract: the socket is opened (and so belongs) in the namespace given at
//! [`NlSocket::open`] and stays there. Sequence numbers are unique per socket.
//! [`NlSocket::request`] discards anything left queued by an earlier
//! request, sends a buffer of messages and collects every ack or error;
//! because the kernel processes netlink requests synchronously inside
//! `sendmsg`, every reply is already queued when the send returns, so
//! reading stops at the first empty read, and the first error of a sequence
//! number is kept. Replies do not echo their request (`NETLINK_CAP_ACK`),
//! so thousands of errors from one rejected batch stay small. Socket
//! buffers are grown (the `*BUFFORCE` options, root only) so a large batch
//! fits in one send and its replies are never dropped. A blocking read
//! waits at most `rtnl::RECV_TIMEOUT` (`SO_RCVTIMEO`).

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use nix::sys::socket::{
    bind, connect, getsockopt, send, setsockopt, socket, sockopt, AddressFamily, MsgFlags,
    NetlinkAddr, SockFlag, SockProtocol, SockType,
};

use super::uapi::*;
use super::wire::{messages, MsgHeader};
use crate::netns;

const RECV_BUF: usize = 256 * 1024;
/// Netlink acks cost about 1 KiB of receive buffer each (skb overhead).
const ACK_COST: usize = 2048;

#[derive(Debug)]
pub(crate) struct NlSocket {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

fn errno(e: nix::Error) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// The outcome of one sequence number: `0` on success, else a positive errno.
pub(crate) type Acks = HashMap<u32, i32>;

impl NlSocket {
    pub(crate) fn open(netns_path: Option<&Path>) -> io::Result<Self> {
        let fd = netns::run_in(netns_path, || {
            socket(
                AddressFamily::Netlink,
                SockType::Raw,
                SockFlag::SOCK_CLOEXEC,
                SockProtocol::NetlinkNetFilter,
            )
            .map_err(errno)
        })??;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).map_err(errno)?;
        connect(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).map_err(errno)?;
        crate::rtnl::sys::enable_ext_ack(fd.as_fd());
        crate::rtnl::set_recv_timeout(fd.as_fd(), crate::rtnl::RECV_TIMEOUT)?;
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(1);
        Ok(Self {
            fd,
            seq: seed,
            buf: vec![0; RECV_BUF],
        })
    }

    /// Reserves `n` consecutive sequence numbers and returns the first.
    pub(crate) fn take_seq(&mut self, n: u32) -> u32 {
        let first = self.seq;
        self.seq = self.seq.wrapping_add(n.max(1));
        first
    }

    fn grow(&self, send_len: usize, acks: usize) {
        let want_snd = send_len + 64 * 1024;
        if getsockopt(&self.fd, sockopt::SndBuf).map_or(true, |cur| cur < want_snd) {
            let _ = setsockopt(&self.fd, sockopt::SndBufForce, &want_snd)
                .or_else(|_| setsockopt(&self.fd, sockopt::SndBuf, &want_snd));
        }
        let want_rcv = (acks * ACK_COST).max(RECV_BUF * 4);
        if getsockopt(&self.fd, sockopt::RcvBuf).map_or(true, |cur| cur < want_rcv) {
            let _ = setsockopt(&self.fd, sockopt::RcvBufForce, &want_rcv)
                .or_else(|_| setsockopt(&self.fd, sockopt::RcvBuf, &want_rcv));
        }
    }

    pub(crate) fn send_all(&self, buf: &[u8], acks: usize) -> io::Result<()> {
        self.grow(buf.len(), acks);
        let n = send(self.fd.as_raw_fd(), buf, MsgFlags::empty()).map_err(errno)?;
        if n != buf.len() {
            return Err(io::Error::other("short netlink send"));
        }
        Ok(())
    }

    /// Reads one datagram; `Ok(None)` when nothing is queued and `wait` is false.
    fn recv_one(&mut self, wait: bool) -> io::Result<Option<usize>> {
        let mut flags = MsgFlags::MSG_TRUNC;
        if !wait {
            flags |= MsgFlags::MSG_DONTWAIT;
        }
        // A blocking read ends after the socket's receive timeout.
        match crate::rtnl::recv_bounded(self.fd.as_fd(), &mut self.buf, flags) {
            Ok(n) if n > self.buf.len() => Err(io::Error::other(
                "netlink reply larger than the receive buffer",
            )),
            Ok(n) => Ok(Some(n)),
            Err(e) if !wait && e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sends `buf` and reads every reply queued for it: seq → result (the
    /// first error of a seq wins over a later ack). `expected` sizes the
    /// receive buffer. Replies left from an earlier request are discarded
    /// first, so they can neither fill the buffer nor be taken for ours.
    pub(crate) fn request(
        &mut self,
        buf: &[u8],
        seqs: impl Fn(u32) -> bool,
        expected: usize,
    ) -> io::Result<Acks> {
        while self.recv_one(false)?.is_some() {}
        self.send_all(buf, expected)?;
        let mut acks = Acks::with_capacity(expected);
        while let Some(n) = self.recv_one(false)? {
            for (hdr, payload) in messages(&self.buf[..n]) {
                if hdr.ty != NLMSG_ERROR || payload.len() < 4 + NLMSG_HDRLEN {
                    continue;
                }
                let err = i32::from_ne_bytes(payload[0..4].try_into().expect("4 bytes"));
                let seq = u32::from_ne_bytes(payload[12..16].try_into().expect("4 bytes"));
                if seqs(seq) {
                    let kept = acks.entry(seq).or_insert(-err);
                    if *kept == 0 {
                        *kept = -err;
                    }
                }
            }
        }
        Ok(acks)
    }

    /// Runs a dump request (`NLM_F_DUMP` set by the caller, sequence `seq`)
    /// and returns each reply message's payload. Retries when the kernel
    /// says the dump was interrupted by a concurrent change.
    pub(crate) fn dump(
        &mut self,
        req: &[u8],
        seq: u32,
    ) -> Result<Vec<(MsgHeader, Vec<u8>)>, DumpError> {
        for _ in 0..8 {
            self.send_all(req, 1).map_err(DumpError::Io)?;
            let mut out = Vec::new();
            let mut interrupted = false;
            'recv: loop {
                let n = self.recv_one(true).map_err(DumpError::Io)?.unwrap_or(0);
                for (hdr, payload) in messages(&self.buf[..n]) {
                    if hdr.seq != seq {
                        continue;
                    }
                    interrupted |= hdr.flags & NLM_F_DUMP_INTR != 0;
                    match hdr.ty {
                        NLMSG_DONE => break 'recv,
                        NLMSG_ERROR => {
                            let err = payload
                                .get(0..4)
                                .map(|b| i32::from_ne_bytes(b.try_into().expect("4 bytes")))
                                .unwrap_or(-libc::EPROTO);
                            if err == 0 {
                                break 'recv;
                            }
                            return Err(DumpError::Kernel(-err));
                        }
                        _ => out.push((hdr, payload.to_vec())),
                    }
                }
            }
            if !interrupted {
                return Ok(out);
            }
        }
        Err(DumpError::Kernel(libc::EINTR))
    }
}

#[derive(Debug)]
pub(crate) enum DumpError {
    Io(io::Error),
    Kernel(i32),
}
