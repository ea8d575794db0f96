//! [`NflogSocket`]: the packets the drop chains log to one NFLOG group of
//! one namespace.
//!
//! The socket binds the group with copy mode `packet`, 128 bytes (network
//! and transport headers, never payload worth reading), and a queue
//! threshold of 1 so each logged packet is delivered at once rather than
//! batched for up to a second. How many packets arrive is bounded by the
//! kernel's `limit` in front of the `log` (see `docs/nftables.md`). The
//! kernel drops the group's instance when the socket closes.

use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::Path;
use std::time::SystemTime;

use super::Headers;
use crate::netlink::wire::{be32_of, messages, str_of, Writer};
use crate::netlink::Socket;
use crate::nft::nfnl::{nfgen, NfWriter};
use crate::nft::uapi::*;

const COPY_RANGE: u32 = 128;

/// One logged packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedPacket {
    /// When it was read (the kernel's timestamp is not always present).
    pub time: SystemTime,
    /// The log rule's prefix.
    pub prefix: String,
    /// Input and output interface indexes in the logging namespace.
    pub indev: Option<u32>,
    pub outdev: Option<u32>,
    /// `None` when the copied bytes did not hold the headers.
    pub headers: Option<Headers>,
}

/// A bound NFLOG group in one namespace.
#[derive(Debug)]
pub struct NflogSocket {
    pub(super) sock: Socket,
    group: u16,
}

impl NflogSocket {
    /// Opens a socket in `netns` (`None`: the caller's namespace) and binds
    /// `group` there.
    pub fn open(netns: Option<&Path>, group: u16) -> io::Result<Self> {
        let mut sock = super::open(netns, 0, 1 << 20)?;
        let ty = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG;
        let flags = NLM_F_REQUEST | NLM_F_ACK;
        let mut w = Writer::default();
        let m = w.nf_begin(ty, flags, 1, 0, group);
        w.bytes(NFULA_CFG_CMD, &[NFULNL_CFG_CMD_BIND]);
        w.end(m);
        super::request(&mut sock, &mut w)?;
        let mut w = Writer::default();
        let m = w.nf_begin(ty, flags, 2, 0, group);
        let mut mode = COPY_RANGE.to_be_bytes().to_vec();
        mode.extend_from_slice(&[NFULNL_COPY_PACKET, 0]);
        w.bytes(NFULA_CFG_MODE, &mode);
        w.be32(NFULA_CFG_QTHRESH, 1);
        w.be32(NFULA_CFG_TIMEOUT, 1);
        w.end(m);
        super::request(&mut sock, &mut w)?;
        sock.release_buffer();
        Ok(Self { sock, group })
    }

    pub fn group(&self) -> u16 {
        self.group
    }

    pub fn raw_fd(&self) -> RawFd {
        self.sock.as_fd().as_raw_fd()
    }

    /// Every packet queued now (never waits). Reports lost to a full
    /// buffer are skipped (the count of drops is sampled anyway). The
    /// receive buffer is freed once the queue is empty: one socket per
    /// endpoint namespace, mostly idle.
    pub fn read(&mut self) -> io::Result<Vec<LoggedPacket>> {
        let mut out = Vec::new();
        loop {
            let n = match self.sock.recv(false) {
                Ok(Some(n)) => n,
                Ok(None) => {
                    self.sock.release_buffer();
                    return Ok(out);
                }
                Err(e) if super::lost(&e) => continue,
                Err(e) => return Err(e),
            };
            let time = SystemTime::now();
            for (hdr, payload) in messages(self.sock.received(n)) {
                if hdr.ty != (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET {
                    continue;
                }
                let Some((_, attrs)) = nfgen(payload) else {
                    continue;
                };
                let mut p = LoggedPacket {
                    time,
                    prefix: String::new(),
                    indev: None,
                    outdev: None,
                    headers: None,
                };
                for (ty, v) in attrs {
                    match ty {
                        NFULA_PREFIX => p.prefix = str_of(v),
                        NFULA_IFINDEX_INDEV => p.indev = be32_of(v),
                        NFULA_IFINDEX_OUTDEV => p.outdev = be32_of(v),
                        NFULA_PAYLOAD => p.headers = Headers::parse(v),
                        _ => {}
                    }
                }
                out.push(p);
            }
        }
    }
}
