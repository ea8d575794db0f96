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
//! File exists"). No operation ever spawns a process. The socket, its
//! receive timeout and the ack collection are the shared netlink core's
//! (`crate::netlink`).

mod addr;
mod link;
mod neigh;
mod route;
mod rule;
mod tap;
mod wire;

use std::io;
use std::path::{Path, PathBuf};

use nix::sys::socket::SockProtocol;

pub use addr::IfAddr;
pub use link::{Link, MacvlanMode, MacvlanSpec, VethSpec, VxlanSpec};
pub use route::{Neighbour, Route};
pub use rule::RoutingRule;
pub use tap::TapSpec;

use crate::netlink::wire::Header;
use crate::netlink::{Answer, Collect, Nack, Socket};

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

    /// The kernel's refusal of one request.
    fn refused(op: &'static str, object: impl Into<String>, nack: Nack) -> Self {
        Self {
            detail: nack.detail,
            ..Self::new(op, object, io::Error::from_raw_os_error(nack.errno))
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
    msg: wire::Writer,
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

    fn push(
        &mut self,
        op: &'static str,
        object: impl Into<String>,
        msg: wire::Writer,
    ) -> &mut Self {
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
    sock: Socket,
    netns: Option<PathBuf>,
    tx: Vec<u8>,
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

    /// A handle on the calling thread's namespace, which is the one pinned
    /// at `netns` (a thread inside a namespace it just made): opened without
    /// entering it again, and named `netns` in errors.
    pub fn here_named(netns: &Path) -> Result<Self, RtnlError> {
        let mut h = Self::open(None)?;
        h.netns = Some(netns.to_path_buf());
        Ok(h)
    }

    fn open(netns: Option<&Path>) -> Result<Self, RtnlError> {
        let object = netns.map_or("current netns".into(), |p| p.display().to_string());
        let sock = Socket::open(SockProtocol::NetlinkRoute, netns, 0, RX_BUF)
            .map_err(|e| RtnlError::new("open rtnetlink socket in", object, e))?;
        Ok(Self {
            sock,
            netns: netns.map(Path::to_path_buf),
            tx: Vec::with_capacity(4096),
        })
    }

    /// Frees the receive buffer until the next request (see
    /// [`Socket::release_buffer`]).
    pub fn release_buffer(&mut self) {
        self.sock.release_buffer();
    }

    /// Names the namespace this handle was opened in (`netns` in errors):
    /// for a handle opened in a namespace before it was pinned.
    pub fn name_netns(&mut self, netns: &Path) {
        self.netns = Some(netns.to_path_buf());
    }

    /// The namespace this handle acts on (`None`: the one it was opened in).
    pub fn netns(&self) -> Option<&Path> {
        self.netns.as_deref()
    }

    /// Applies every request of `batch` in one round trip (one per 64
    /// requests); returns the first failure, after the kernel has answered
    /// every request.
    pub fn execute(&mut self, batch: &Batch) -> Result<(), RtnlError> {
        self.execute_and_find(batch, &[]).map(drop)
    }

    /// Sends one request and feeds each reply payload (not acks) to `each`.
    fn query(
        &mut self,
        op: &'static str,
        object: &str,
        msg: &wire::Writer,
        mut each: impl FnMut(u16, &[u8]),
    ) -> Result<(), RtnlError> {
        let res = self
            .transact(&[msg], |_, h, p| each(h.ty, p))?
            .pop()
            .unwrap_or(Ok(()));
        res.map_err(|nack| RtnlError::refused(op, object, nack))
    }

    /// Sends `msgs`, at most [`CHUNK`] per datagram, and returns one answer
    /// per message. Socket failures are errors of the whole call.
    fn transact(
        &mut self,
        msgs: &[&wire::Writer],
        mut on_data: impl FnMut(usize, Header, &[u8]),
    ) -> Result<Vec<Answer>, RtnlError> {
        let mut results = Vec::with_capacity(msgs.len());
        for (n, chunk) in msgs.chunks(CHUNK).enumerate() {
            let base = n * CHUNK;
            let first = self.sock.take_seq(chunk.len() as u32);
            self.tx.clear();
            for (i, m) in chunk.iter().enumerate() {
                let at = self.tx.len();
                self.tx.extend_from_slice(&m.buf);
                let len = (self.tx.len() - at) as u32;
                self.tx[at..at + 4].copy_from_slice(&len.to_ne_bytes());
                let seq = first.wrapping_add(i as u32);
                self.tx[at + 8..at + 12].copy_from_slice(&seq.to_ne_bytes());
            }
            // Every request asks for an ack or is a dump (ended by DONE).
            let answers = self
                .sock
                .transact(
                    &self.tx,
                    first,
                    chunk.len(),
                    Collect::EveryRequest,
                    |i, h, p| on_data(base + i, h, p),
                )
                .map_err(|e| RtnlError::new("talk rtnetlink", "socket", e))?;
            results.extend(answers.into_iter().map(|a| a.unwrap_or(Ok(()))));
        }
        Ok(results)
    }
}

/// Requests per datagram: the acks of one datagram must fit the socket's
/// receive buffer (about 250 acks with the default 208 KiB), or the kernel
/// drops them (ENOBUFS).
const CHUNK: usize = 64;
