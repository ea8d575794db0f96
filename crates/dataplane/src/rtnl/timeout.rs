//! Bounded netlink receives: every netlink socket of the dataplane carries
//! `SO_RCVTIMEO` = [`RECV_TIMEOUT`], and [`recv_bounded`] turns its expiry
//! into `TimedOut`, so a reply that never comes fails the operation instead
//! of hanging the daemon under its engine lock.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

use nix::sys::socket::{recv, setsockopt, sockopt, MsgFlags};
use nix::sys::time::{TimeVal, TimeValLike};

/// How long a netlink receive waits. The kernel answers a request inside
/// `sendmsg` (a dump's further parts come from memory on `recv`), so a
/// reply that has not come in this long will not come: generous, because
/// a loaded machine is slow, and finite, because a wedged reply must not
/// hang the daemon.
pub(crate) const RECV_TIMEOUT: Duration = Duration::from_secs(30);

/// `SO_RCVTIMEO` on a netlink socket.
pub(crate) fn set_recv_timeout(fd: BorrowedFd<'_>, timeout: Duration) -> io::Result<()> {
    let ms = i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX);
    setsockopt(&fd, sockopt::ReceiveTimeout, &TimeVal::milliseconds(ms)).map_err(io::Error::from)
}

/// `recv` that retries an interrupted call and reports the receive
/// timeout (`EAGAIN` on a blocking socket) as `TimedOut`.
pub(crate) fn recv_bounded(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    flags: MsgFlags,
) -> io::Result<usize> {
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
    use crate::rtnl::open_socket;
    use nix::sys::socket::sockopt;
    use std::os::fd::AsFd;

    #[test]
    fn a_reply_that_never_comes_ends_the_receive() {
        let fd = open_socket().expect("rtnetlink socket");
        let set = nix::sys::socket::getsockopt(&fd, sockopt::ReceiveTimeout).expect("get");
        assert_eq!(
            set.num_milliseconds(),
            30_000,
            "product sockets carry the timeout"
        );
        // Nothing was asked, so nothing comes: with the timeout shortened,
        // the receive must end on its own, as a wedged reply would.
        set_recv_timeout(fd.as_fd(), Duration::from_millis(100)).expect("shorten");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 256];
            let _ = tx.send(recv_bounded(fd.as_fd(), &mut buf, MsgFlags::empty()));
        });
        let got = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("the receive hung");
        assert_eq!(got.expect_err("no reply").kind(), io::ErrorKind::TimedOut);
    }
}
