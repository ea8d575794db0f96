//! One DHCP server thread: a packet socket bound to one TAP, answering
//! what [`super::reply::answer`] answers, until told to stop or the TAP
//! goes away.

use std::os::fd::AsFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{reply, DhcpLease};
use crate::sys;

/// How often a server looks at its stop flag while no frame arrives.
pub const POLL: Duration = Duration::from_millis(200);

/// Opens the socket in `netns` (where the TAP is) and starts the thread;
/// an error if the TAP is missing.
pub fn start(netns: Option<&Path>, lease: DhcpLease, stop: Arc<AtomicBool>) -> std::io::Result<()> {
    let port = lease.port.clone();
    let open = move || -> std::io::Result<_> {
        let index = nix::net::if_::if_nametoindex(port.as_str())
            .map_err(|e| std::io::Error::from_raw_os_error(e as i32))?;
        sys::packet_socket(index, POLL)
    };
    // The socket keeps the namespace it was made in.
    let (fd, server_mac) = crate::netns::run_in(netns, open)??;
    std::thread::Builder::new()
        .name(format!("dhcp-{}", lease.port))
        .spawn(move || {
            let mut buf = vec![0u8; 2048];
            while !stop.load(Ordering::Acquire) {
                let n = match sys::packet_recv(fd.as_fd(), &mut buf) {
                    Ok(Some(n)) => n,
                    Ok(None) => continue,
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock
                                | std::io::ErrorKind::TimedOut
                                | std::io::ErrorKind::Interrupted
                        ) =>
                    {
                        continue
                    }
                    // ENETDOWN while the guest has the TAP closed: wait.
                    Err(e) if e.raw_os_error() == Some(libc::ENETDOWN) => {
                        std::thread::sleep(POLL);
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(port = %lease.port, error = %e, "dhcp server stops");
                        return;
                    }
                };
                if stop.load(Ordering::Acquire) {
                    return;
                }
                if let Some(out) = reply::answer(&lease, server_mac, &buf[..n]) {
                    if let Err(e) = sys::packet_send(fd.as_fd(), &out) {
                        tracing::debug!(port = %lease.port, error = %e, "dhcp reply not sent");
                    }
                }
            }
        })?;
    Ok(())
}
