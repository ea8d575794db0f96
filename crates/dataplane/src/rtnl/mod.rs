//! Links, addresses, routes and neighbours over rtnetlink, in-process and
//! synchronous.
//!
//! Contract: an [`Rtnl`] is a blocking `NETLINK_ROUTE` socket opened inside
//! one network namespace (the caller's, or a pinned one such as
//! `/run/netns/NAME`) and it acts on that namespace only, whatever thread uses
//! it later. Changes are described as a [`Batch`] of requests; [`Rtnl::execute`]
//! sends the batch in one datagram (one per 64 requests, so the acks fit the
//! socket's receive buffer) and then collects one ack per request, so a batch
//! costs one round trip. The kernel applies the requests in order
//! and does not stop at a failed one; `execute` reports the first failure, as
//! an [`RtnlError`] naming the operation and the object ("create veth bhp1:
//! File exists"). No operation ever spawns a process. A receive waits at
//! most [`RECV_TIMEOUT`] for the kernel (`SO_RCVTIMEO`, also on the
//! netfilter sockets), so a reply that never comes fails the operation with
//! `TimedOut` instead of hanging the daemon under its engine lock.

mod addr;
mod link;
mod route;
mod rule;
pub(crate) mod sys;
mod tap;
mod timeout;
mod wire;

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sys::socket::{
    bind, send, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType,
};

pub use addr::IfAddr;
pub use link::{Link, MacvlanMode, MacvlanSpec, VethSpec, VxlanSpec};
pub use route::{Neighbour, Route};
pub use rule::RoutingRule;
pub use tap::TapSpec;

use crate::netns;
pub(crate) use timeout::{recv_bounded, set_recv_timeout, RECV_TIMEOUT};

/// What failed, on which object, and why.
#[derive(Debug, thiserror::Error)]
#[error("{op} {object}: {}{}", reason(.source), detail_suffix(.detail))]
pub struct RtnlError {
    /// The operation, e.g. "create veth", "add address".
    pub op: &'static str,
    /// The object it was applied to, e.g. an interface name or "10.0.0.2/24 on 7".
    pub object: String,
    /// The kernel's error.
    pub source: io::Error,
    /// The kernel's extended-ack message, when it gave one.
    pub detail: Option<String>,
}

/// The kernel's reason without std's " (os error N)" tail: the errno is
/// still there for callers, through [`RtnlError::errno`].
fn reason(e: &io::Error) -> String {
    let text = e.to_string();
    match (e.raw_os_error(), text.rfind(" (os error ")) {
        (Some(_), Some(at)) => text[..at].to_owned(),
        _ => text,
    }
}

fn detail_suffix(detail: &Option<String>) -> String {
    detail
        .as_ref()
        .map(|d| format!(" ({d})"))
        .unwrap_or_default()
}

impl RtnlError {
    fn new(op: &'static str, object: impl Into<String>, source: io::Error) -> Self {
        Self {
            op,
            object: object.into(),
            source,
            detail: None,
        }
    }

    /// The errno the kernel returned, if any.
    pub fn errno(&self) -> Option<i32> {
        self.source.raw_os_error()
    }

    /// The object was not there (no such device, address, route or neighbour).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.errno(),
            Some(libc::ENODEV) | Some(libc::ENOENT) | Some(libc::ESRCH) | Some(libc::EADDRNOTAVAIL)
        )
    }

    /// The object already exists.
    pub fn is_exists(&self) -> bool {
        self.errno() == Some(libc::EEXIST)
    }
}

/// One request of a batch, with the words that name it in an error.
#[derive(Debug, Clone)]
struct Request {
    op: &'static str,
    object: String,
    msg: wire::Msg,
}

/// An ordered list of changes to apply in one round trip; build it with the
/// methods in the `link`, `addr` and `route` modules, apply it with
/// [`Rtnl::execute`].
#[derive(Debug, Clone, Default)]
pub struct Batch {
    reqs: Vec<Request>,
    /// Descriptors the requests refer to (IFLA_NET_NS_FD); they must stay
    /// open until the kernel has read the batch.
    fds: Vec<std::sync::Arc<std::fs::File>>,
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.reqs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// What each request does, in order, as `(operation, object)` — the same
    /// words an error would use; for logs and recording fakes.
    pub fn ops(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.reqs.iter().map(|r| (r.op, r.object.as_str()))
    }

    fn push(&mut self, op: &'static str, object: impl Into<String>, msg: wire::Msg) -> &mut Self {
        self.reqs.push(Request {
            op,
            object: object.into(),
            msg,
        });
        self
    }
}

/// A blocking rtnetlink socket bound to one network namespace.
#[derive(Debug)]
pub struct Rtnl {
    fd: OwnedFd,
    netns: Option<PathBuf>,
    seq: u32,
    tx: Vec<u8>,
    rx: Vec<u8>,
}

const RX_BUF: usize = 64 * 1024;

impl Rtnl {
    /// A handle on the caller's own network namespace.
    pub fn current() -> Result<Self, RtnlError> {
        Self::open(None)
    }

    /// A handle on the namespace pinned at `netns` (e.g. `/run/netns/NAME`).
    pub fn in_netns(netns: &Path) -> Result<Self, RtnlError> {
        Self::open(Some(netns))
    }

    fn open(netns: Option<&Path>) -> Result<Self, RtnlError> {
        let object = netns.map_or("current netns".into(), |p| p.display().to_string());
        let fail = |e| RtnlError::new("open rtnetlink socket in", object.clone(), e);
        let fd = match netns {
            // The socket belongs to the namespace of the thread that made it.
            Some(path) => netns::run_in(Some(path), open_socket).map_err(fail)?,
            None => open_socket(),
        }
        .map_err(fail)?;
        Ok(Self {
            fd,
            netns: netns.map(Path::to_path_buf),
            seq: 0,
            tx: Vec::with_capacity(4096),
            rx: vec![0; RX_BUF],
        })
    }

    /// The namespace this handle acts on (`None`: the one it was opened in).
    pub fn netns(&self) -> Option<&Path> {
        self.netns.as_deref()
    }

    /// Applies every request of `batch` in one round trip (one per 64
    /// requests); returns the first failure, after the kernel has answered
    /// every request.
    pub fn execute(&mut self, batch: &Batch) -> Result<(), RtnlError> {
        if batch.is_empty() {
            return Ok(());
        }
        let msgs: Vec<_> = batch.reqs.iter().map(|r| &r.msg).collect();
        let results = self.transact(&msgs, |_, _| {})?;
        for (req, res) in batch.reqs.iter().zip(results) {
            if let Err((source, detail)) = res {
                let mut e = RtnlError::new(req.op, req.object.clone(), source);
                e.detail = detail;
                return Err(e);
            }
        }
        Ok(())
    }

    /// Sends one request and feeds each reply payload (not acks) to `each`.
    fn query(
        &mut self,
        op: &'static str,
        object: &str,
        msg: &wire::Msg,
        each: impl FnMut(u16, &[u8]),
    ) -> Result<(), RtnlError> {
        let mut each = each;
        let res = self
            .transact(&[msg], |_, r| each(r.ty, r.payload))?
            .pop()
            .unwrap_or(Ok(()));
        res.map_err(|(source, detail)| RtnlError {
            detail,
            ..RtnlError::new(op, object, source)
        })
    }

    /// Sends `msgs`, at most [`CHUNK`] per datagram, and returns one result
    /// per message. Socket failures are errors of the whole call.
    fn transact(
        &mut self,
        msgs: &[&wire::Msg],
        mut on_data: impl FnMut(usize, wire::Reply<'_>),
    ) -> Result<Vec<AckResult>, RtnlError> {
        let mut results = Vec::with_capacity(msgs.len());
        for (n, chunk) in msgs.chunks(CHUNK).enumerate() {
            let base = n * CHUNK;
            let part = self.round_trip(chunk, |i, r| on_data(base + i, r))?;
            results.extend(part);
        }
        Ok(results)
    }

    /// One datagram out, then every reply until each request is answered.
    fn round_trip(
        &mut self,
        msgs: &[&wire::Msg],
        mut on_data: impl FnMut(usize, wire::Reply<'_>),
    ) -> Result<Vec<AckResult>, RtnlError> {
        let first = self.seq.wrapping_add(1);
        self.tx.clear();
        for (i, m) in msgs.iter().enumerate() {
            let mut m = (*m).clone();
            m.set_seq(first.wrapping_add(i as u32));
            self.tx.extend_from_slice(m.bytes());
        }
        self.seq = first.wrapping_add(msgs.len() as u32);
        let io_err = |e: nix::Error| RtnlError::new("talk rtnetlink", "socket", e.into());
        send(self.fd.as_raw_fd(), &self.tx, MsgFlags::empty()).map_err(io_err)?;

        let mut results: Vec<Option<AckResult>> = (0..msgs.len()).map(|_| None).collect();
        let mut open = msgs.len();
        while open > 0 {
            let n = recv_bounded(self.fd.as_fd(), &mut self.rx, MsgFlags::empty())
                .map_err(|e| RtnlError::new("talk rtnetlink", "socket", e))?;
            for r in wire::replies(&self.rx[..n]) {
                let i = r.seq.wrapping_sub(first) as usize;
                if i >= msgs.len() || results[i].is_some() {
                    continue; // not ours: a late reply to an earlier call
                }
                let done = match r.ty {
                    wire::NLMSG_ERROR => Some(ack_result(&r)),
                    wire::NLMSG_DONE if msgs[i].is_dump() => Some(ack_result(&r)),
                    _ => {
                        on_data(i, r);
                        None
                    }
                };
                if let Some(res) = done {
                    results[i] = Some(res);
                    open -= 1;
                }
            }
        }
        Ok(results.into_iter().map(|r| r.unwrap_or(Ok(()))).collect())
    }
}

/// Requests per datagram: the acks of one datagram must fit the socket's
/// receive buffer (about 250 acks with the default 208 KiB), or the kernel
/// drops them (ENOBUFS).
const CHUNK: usize = 64;

/// The kernel's answer to one request: errno and extended-ack message.
type AckResult = Result<(), (io::Error, Option<String>)>;

pub(crate) fn open_socket() -> io::Result<OwnedFd> {
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )?;
    bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))?;
    sys::enable_ext_ack(fd.as_fd());
    set_recv_timeout(fd.as_fd(), RECV_TIMEOUT)?;
    Ok(fd)
}

/// Reads an NLMSG_ERROR (or a dump's NLMSG_DONE): errno 0 is an ack.
fn ack_result(r: &wire::Reply<'_>) -> AckResult {
    let code = r
        .payload
        .get(0..4)
        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(0);
    if code == 0 {
        return Ok(());
    }
    let mut detail = None;
    if r.flags & wire::NLM_F_ACK_TLVS != 0 {
        // After the errno: the request's header, and its payload unless capped.
        let mut off = 4 + wire::NLMSG_HDRLEN;
        if r.ty == wire::NLMSG_ERROR && r.flags & wire::NLM_F_CAPPED == 0 {
            off = 4 + r
                .payload
                .get(4..8)
                .and_then(wire::u32_of)
                .map_or(wire::NLMSG_HDRLEN, |l| (l as usize + 3) & !3);
        }
        if r.ty == wire::NLMSG_DONE {
            off = 4;
        }
        detail = r.payload.get(off..).and_then(|tlvs| {
            wire::attrs(tlvs)
                .find(|(t, _)| *t == wire::NLMSGERR_ATTR_MSG)
                .map(|(_, m)| wire::str_of(m))
        });
    }
    Err((io::Error::from_raw_os_error(code.saturating_neg()), detail))
}
