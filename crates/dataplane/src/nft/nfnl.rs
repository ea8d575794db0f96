//! nfnetlink on the netlink core, shared by nf_tables, ctnetlink and the
//! event sockets: the `NETLINK_NETFILTER` socket, the `nfgenmsg` header
//! every message carries after the netlink header, and dumps.
//!
//! Contract: [`NlSocket::request`] discards anything left queued by an
//! earlier request, grows the socket buffers so a large batch fits in one
//! send and its replies are never dropped, sends, and collects what the
//! kernel queued (only some messages of a batch are acked; see
//! [`Collect::Queued`]). Replies do not echo their request
//! (`NETLINK_CAP_ACK`), so thousands of errors from one rejected batch stay
//! small. [`NlSocket::dump`] restarts a dump the kernel says was
//! interrupted by a concurrent change.

use std::io;
use std::path::Path;

use nix::sys::socket::SockProtocol;

use crate::netlink::wire::{Attrs, Header, Writer, NLM_F_DUMP_INTR};
use crate::netlink::{Answer, Collect, Socket};

use super::error::{Error, NftError};
use super::uapi::{NFNETLINK_V0, NFTA_DATA_VALUE};

const RECV_BUF: usize = 256 * 1024;
/// Netlink acks cost about 1 KiB of receive buffer each (skb overhead).
const ACK_COST: usize = 2048;

/// nfnetlink's additions to the core [`Writer`].
pub(crate) trait NfWriter {
    /// Opens a message with an `nfgenmsg` header; returns its start offset.
    fn nf_begin(&mut self, ty: u16, flags: u16, seq: u32, family: u8, res_id: u16) -> usize;
    /// `nft_data` holding a plain value (`NFTA_DATA_VALUE`) inside attribute `ty`.
    fn data_value(&mut self, ty: u16, value: &[u8]);
}

impl NfWriter for Writer {
    fn nf_begin(&mut self, ty: u16, flags: u16, seq: u32, family: u8, res_id: u16) -> usize {
        let start = self.begin(ty, flags, seq);
        self.buf.extend_from_slice(&[family, NFNETLINK_V0]);
        self.buf.extend_from_slice(&res_id.to_be_bytes());
        start
    }

    fn data_value(&mut self, ty: u16, value: &[u8]) {
        let n = self.nest_start(ty);
        self.bytes(NFTA_DATA_VALUE, value);
        self.nest_end(n);
    }
}

/// The attributes of an nfnetlink message after its 4-byte `nfgenmsg`, and the family.
pub(crate) fn nfgen(payload: &[u8]) -> Option<(u8, Attrs<'_>)> {
    Some((*payload.first()?, Attrs(payload.get(4..)?)))
}

#[derive(Debug)]
pub(crate) struct NlSocket {
    sock: Socket,
}

impl NlSocket {
    pub(crate) fn open(netns: Option<&Path>) -> io::Result<Self> {
        let sock = Socket::open(SockProtocol::NetlinkNetFilter, netns, 0, RECV_BUF)?;
        Ok(Self { sock })
    }

    /// Frees the receive buffer until the next read.
    pub(crate) fn release_buffer(&mut self) {
        self.sock.release_buffer();
    }

    /// Reserves `n` consecutive sequence numbers and returns the first.
    pub(crate) fn take_seq(&mut self, n: u32) -> u32 {
        self.sock.take_seq(n)
    }

    /// Sends `buf` (messages numbered `first..first + n`) and returns each
    /// one's answer, `None` where the kernel sent none.
    pub(crate) fn request(
        &mut self,
        buf: &[u8],
        first: u32,
        n: usize,
    ) -> io::Result<Vec<Option<Answer>>> {
        self.sock.drain()?;
        self.sock
            .grow(buf.len() + 64 * 1024, (n * ACK_COST).max(RECV_BUF * 4));
        self.sock
            .transact(buf, first, n, Collect::Queued, |_, _, _| {})
    }

    /// Runs a dump request (`NLM_F_DUMP` set by the caller, sequence `seq`)
    /// and returns each reply message's payload; a refusal is `op` on
    /// `object`'s error. Retries when the kernel says the dump was
    /// interrupted by a concurrent change.
    pub(crate) fn dump(
        &mut self,
        req: &[u8],
        seq: u32,
        op: &'static str,
        object: &str,
    ) -> Result<Vec<(Header, Vec<u8>)>, Error> {
        let refused = |errno| NftError {
            op,
            object: object.to_owned(),
            errno,
            index: 0,
        };
        for _ in 0..8 {
            let mut out = Vec::new();
            let mut interrupted = false;
            let answer = self
                .sock
                .transact(req, seq, 1, Collect::EveryRequest, |_, hdr, payload| {
                    interrupted |= hdr.flags & NLM_F_DUMP_INTR != 0;
                    out.push((hdr, payload.to_vec()));
                })
                .map_err(Error::io("dump"))?;
            if let Some(Some(Err(nack))) = answer.first() {
                return Err(refused(nack.errno).into());
            }
            if !interrupted {
                return Ok(out);
            }
        }
        Err(refused(libc::EINTR).into())
    }
}
