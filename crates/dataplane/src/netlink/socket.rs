//! A blocking netlink socket of any family, bound to one network namespace.
//!
//! Contract: [`Socket::open`] makes the socket on a thread inside the
//! namespace (the caller's, or a pinned one such as `/run/netns/NAME`), so
//! it acts on that namespace whatever thread uses it later. It is connected
//! to the kernel (port 0), so no process can unicast fake replies to it,
//! asks for extended acks without the request echoed back, and carries
//! `SO_RCVTIMEO` = [`RECV_TIMEOUT`]: a waiting receive that gets nothing in
//! that time fails with `TimedOut` instead of hanging the daemon under its
//! engine lock. Sequence numbers are unique per socket.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use nix::sys::socket::{
    bind, connect, getsockopt, recv, send, setsockopt, socket, sockopt, AddressFamily, MsgFlags,
    NetlinkAddr, SockFlag, SockProtocol, SockType,
};
use nix::sys::time::{TimeVal, TimeValLike};

/// How long a netlink receive waits. The kernel answers a request inside
/// `sendmsg` (a dump's further parts come from memory on `recv`), so a
/// reply that has not come in this long will not come: generous, because
/// a loaded machine is slow, and finite, because a wedged reply must not
/// hang the daemon.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(30);

/// A netlink socket in one namespace, with its receive buffer.
#[derive(Debug)]
pub struct Socket {
    fd: OwnedFd,
    seq: u32,
    /// The receive buffer: `rx_len` bytes, allocated at the first read
    /// after [`Socket::release_buffer`].
    pub(super) rx: Vec<u8>,
    rx_len: usize,
}

impl Socket {
    /// Opens a `protocol` socket in `netns` (`None`: the caller's
    /// namespace), subscribed to the multicast `groups` bitmask, reading
    /// datagrams of up to `rx` bytes.
    pub fn open(
        protocol: SockProtocol,
        netns: Option<&Path>,
        groups: u32,
        rx: usize,
    ) -> io::Result<Self> {
        // The socket belongs to the namespace of the thread that made it.
        let fd = crate::netns::run_in(netns, || {
            socket(
                AddressFamily::Netlink,
                SockType::Raw,
                SockFlag::SOCK_CLOEXEC,
                protocol,
            )
            .map_err(io::Error::from)
        })??;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, groups))?;
        connect(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))?;
        crate::sys::enable_ext_ack(fd.as_fd());
        set_recv_timeout(fd.as_fd(), RECV_TIMEOUT)?;
        // Seeded from the clock so that a late reply to an earlier socket's
        // request is unlikely to carry one of this socket's numbers.
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(1);
        Ok(Self {
            fd,
            seq: seed,
            rx: Vec::new(),
            rx_len: rx,
        })
    }

    /// Reserves `n` consecutive sequence numbers and returns the first.
    pub fn take_seq(&mut self, n: u32) -> u32 {
        let first = self.seq;
        self.seq = self.seq.wrapping_add(n.max(1));
        first
    }

    /// Grows the socket buffers (the `*BUFFORCE` options, root only; else
    /// up to the system maximum) so `send_len` bytes go out in one send and
    /// `rcv` bytes of replies are never dropped.
    pub fn grow(&self, send_len: usize, rcv: usize) {
        if send_len > 0 && getsockopt(&self.fd, sockopt::SndBuf).map_or(true, |c| c < send_len) {
            let _ = setsockopt(&self.fd, sockopt::SndBufForce, &send_len)
                .or_else(|_| setsockopt(&self.fd, sockopt::SndBuf, &send_len));
        }
        if getsockopt(&self.fd, sockopt::RcvBuf).map_or(true, |c| c < rcv) {
            let _ = setsockopt(&self.fd, sockopt::RcvBufForce, &rcv)
                .or_else(|_| setsockopt(&self.fd, sockopt::RcvBuf, &rcv));
        }
    }

    /// Sends `buf` as one datagram.
    pub fn send(&self, buf: &[u8]) -> io::Result<()> {
        let n = send(self.fd.as_raw_fd(), buf, MsgFlags::empty())?;
        if n != buf.len() {
            return Err(io::Error::other("short netlink send"));
        }
        Ok(())
    }

    /// Reads one datagram into the receive buffer; `Ok(None)` when nothing
    /// is queued and `wait` is false. A datagram larger than the buffer is
    /// an error, never parsed cut short.
    pub fn recv(&mut self, wait: bool) -> io::Result<Option<usize>> {
        let mut flags = MsgFlags::MSG_TRUNC;
        if !wait {
            flags |= MsgFlags::MSG_DONTWAIT;
        }
        if self.rx.len() != self.rx_len {
            self.rx = vec![0; self.rx_len];
        }
        match recv_bounded(self.fd.as_fd(), &mut self.rx, flags) {
            Ok(n) if n > self.rx.len() => Err(io::Error::other(
                "netlink reply larger than the receive buffer",
            )),
            Ok(n) => Ok(Some(n)),
            Err(e) if !wait && e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The first `len` bytes of the receive buffer (what [`Socket::recv`] read).
    pub fn received(&self, len: usize) -> &[u8] {
        &self.rx[..len]
    }

    /// Frees the receive buffer until the next read: a socket kept open for
    /// one of many namespaces should not hold tens of KiB while idle
    /// (a thousand endpoints' namespaces held ~50 MiB of them).
    pub fn release_buffer(&mut self) {
        self.rx = Vec::new();
    }

    /// Discards whatever an earlier request left queued, so it can neither
    /// fill the buffer nor be taken for the next request's replies.
    pub fn drain(&mut self) -> io::Result<()> {
        while self.recv(false)?.is_some() {}
        Ok(())
    }
}

impl AsFd for Socket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// `SO_RCVTIMEO` on a netlink socket.
pub(crate) fn set_recv_timeout(fd: BorrowedFd<'_>, timeout: Duration) -> io::Result<()> {
    let ms = i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX);
    setsockopt(&fd, sockopt::ReceiveTimeout, &TimeVal::milliseconds(ms)).map_err(io::Error::from)
}

/// `recv` that retries an interrupted call and reports the receive
/// timeout (`EAGAIN` on a waiting read) as `TimedOut`.
fn recv_bounded(fd: BorrowedFd<'_>, buf: &mut [u8], flags: MsgFlags) -> io::Result<usize> {
    loop {
        match recv(fd.as_raw_fd(), buf, flags) {
            Ok(n) => return Ok(n),
            Err(nix::Error::EINTR) => continue,
            Err(nix::Error::EAGAIN) if !flags.contains(MsgFlags::MSG_DONTWAIT) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the kernel did not answer the netlink request in time",
                ))
            }
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_that_never_comes_ends_the_receive() {
        let mut s = Socket::open(SockProtocol::NetlinkRoute, None, 0, 256).expect("socket");
        let set = getsockopt(&s.fd, sockopt::ReceiveTimeout).expect("get");
        assert_eq!(
            set.num_milliseconds(),
            30_000,
            "product sockets carry the timeout"
        );
        // Nothing was asked, so nothing comes: with the timeout shortened,
        // the receive must end on its own, as a wedged reply would.
        set_recv_timeout(s.fd.as_fd(), Duration::from_millis(100)).expect("shorten");
        assert_eq!(s.recv(false).expect("nothing queued"), None);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(s.recv(true));
        });
        let got = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("the receive hung");
        assert_eq!(got.expect_err("no reply").kind(), io::ErrorKind::TimedOut);
    }

    /// The receive buffer exists only between a read and its release, and a
    /// read after a release gets the whole buffer back (a reply as large as
    /// the socket allows still fits).
    #[test]
    fn a_released_buffer_comes_back_whole_at_the_next_read() {
        let mut s = Socket::open(SockProtocol::NetlinkRoute, None, 0, 4096).expect("socket");
        assert!(s.rx.is_empty(), "no buffer before the first read");
        // An address dump of the caller's namespace: answered at once.
        let dump = |s: &mut Socket| {
            let mut w = crate::netlink::wire::Writer::default();
            let m = w.begin(
                libc::RTM_GETADDR,
                (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16,
                7,
            );
            w.buf.extend_from_slice(&[0u8; 8]);
            w.end(m);
            s.send(&w.buf).expect("send");
            s.recv(true).expect("reply").expect("a datagram")
        };
        assert!(dump(&mut s) > 0);
        assert_eq!(s.rx.len(), 4096);
        s.drain().expect("drain");
        s.release_buffer();
        assert!(s.rx.is_empty(), "released");
        assert!(dump(&mut s) > 0);
        assert_eq!(s.rx.len(), 4096, "the whole buffer is back");
    }
}
