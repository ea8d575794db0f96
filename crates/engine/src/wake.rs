//! A wake-up for the watcher ([`crate::watch`]): the engine pokes it when
//! a namespace gains a firewall, so the watcher opens that namespace's
//! drop-log and change-monitor sockets at once instead of at its next
//! periodic sync (up to [`crate::watch::SYNC_EVERY`] later, during which a
//! drop in the new namespace went unlogged).
//!
//! Contract: [`Wake::poke`] never blocks and never fails the operation
//! that calls it (pokes not yet read collapse into one); the receiving end
//! is a non-blocking socket to poll for readability and [`drain`].

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

#[derive(Debug)]
pub(crate) struct Wake {
    tx: UnixStream,
    rx: UnixStream,
}

impl Wake {
    pub(crate) fn new() -> std::io::Result<Self> {
        let (tx, rx) = UnixStream::pair()?;
        tx.set_nonblocking(true)?;
        rx.set_nonblocking(true)?;
        Ok(Self { tx, rx })
    }

    /// Wakes the receiver (a full buffer means it is awake already).
    pub(crate) fn poke(&self) {
        let _ = (&self.tx).write(&[1]);
    }

    /// A receiving end for the watcher's thread (a duplicate descriptor).
    pub(crate) fn receiver(&self) -> std::io::Result<UnixStream> {
        self.rx.try_clone()
    }
}

/// Reads every poke waiting on `rx`.
pub(crate) fn drain(rx: &UnixStream) {
    let mut buf = [0u8; 64];
    while matches!((&*rx).read(&mut buf), Ok(n) if n > 0) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;

    fn readable(rx: &UnixStream) -> bool {
        let mut fds = [PollFd::new(rx.as_fd(), PollFlags::POLLIN)];
        poll(&mut fds, PollTimeout::ZERO).expect("poll") > 0
    }

    #[test]
    fn pokes_wake_the_receiver_collapse_and_are_drained() {
        let wake = Wake::new().expect("wake");
        let rx = wake.receiver().expect("receiver");
        assert!(!readable(&rx));
        for _ in 0..100_000 {
            wake.poke(); // never blocks, even with the buffer full
        }
        assert!(readable(&rx));
        drain(&rx);
        assert!(!readable(&rx));
    }
}
