//! Real packets between a [`Guest`] and a network namespace, or two
//! guests, with busybox tools in the guest: `nc` (TCP client and
//! listener), `tftp` (a UDP request/response: the read request carries a
//! marker, the answer's DATA block another), `ping`, and the guest's own
//! UDP and TCP counters.
//!
//! Contract: every probe carries unique markers, the namespace side listens
//! before the guest sends, and a probe that is stopped costs one bounded
//! wait (a few seconds; the guest runs under TCG on a loaded machine). A
//! probe answers whether its packets crossed; an `Err` means it could not
//! be run (the guest did not answer, a socket could not be opened).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bulkhead_dataplane::netns;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::{Guest, GuestError, Result};

/// How long the namespace side waits for a guest's packet.
const WAIT: Duration = Duration::from_secs(8);

/// How long the guest gets for one probe command.
const COMMAND: Duration = Duration::from_secs(30);

/// A marker unique in this process.
pub fn marker() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "bhm{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs `f` inside `ns` (binding a socket there).
fn in_ns<R>(ns: &Path, f: impl FnOnce() -> std::io::Result<R>) -> Result<R> {
    netns::run_in(Some(ns), f)
        .and_then(|r| r)
        .map_err(|source| GuestError::Probe {
            ns: ns.to_owned(),
            source,
        })
}

/// The first connection to `l` within [`WAIT`], if any.
fn accept_one(l: &TcpListener) -> Option<(TcpStream, SocketAddr)> {
    let ms = u16::try_from(WAIT.as_millis()).unwrap_or(u16::MAX);
    let mut fds = [PollFd::new(l.as_fd(), PollFlags::POLLIN)];
    match poll(&mut fds, PollTimeout::from(ms)) {
        Ok(n) if n > 0 => l.accept().ok(),
        _ => None,
    }
}

/// TCP from the guest to `to` (a listener this opens in `ns`): the guest
/// sends a marker, the server answers another. The client address the
/// server saw, when both markers crossed.
pub fn tcp_from_guest(g: &mut Guest, ns: &Path, to: SocketAddr) -> Result<Option<Ipv4Addr>> {
    Ok(tcp_from_guest_alongside(g, ns, to, None)?.0)
}

/// [`tcp_from_guest`] and, at the same time (a stopped probe costs one
/// bounded wait, not two), one ping from the guest to `ping`: whether it
/// was answered, and the TCP result.
pub fn ping_and_tcp_from_guest(
    g: &mut Guest,
    ns: &Path,
    ping: Ipv4Addr,
    to: SocketAddr,
) -> Result<(bool, Option<Ipv4Addr>)> {
    let alongside = format!("ping -c1 -W2 {ping} >/dev/null 2>&1; echo \"PING\"=$?");
    let (peer, out) = tcp_from_guest_alongside(g, ns, to, Some(&alongside))?;
    Ok((out.contains("PING=0"), peer))
}

/// [`tcp_from_guest`] with `alongside` run in the background of the same
/// command line; the TCP result and the guest's output.
fn tcp_from_guest_alongside(
    g: &mut Guest,
    ns: &Path,
    to: SocketAddr,
    alongside: Option<&str>,
) -> Result<(Option<Ipv4Addr>, String)> {
    let l = in_ns(ns, || TcpListener::bind(("0.0.0.0", to.port())))?;
    let (m, reply) = (marker(), marker());
    std::thread::scope(|s| {
        let server = s.spawn(|| {
            let (mut c, peer) = accept_one(&l)?;
            c.set_read_timeout(Some(WAIT)).ok()?;
            let mut buf = [0u8; 128];
            let n = c.read(&mut buf).ok()?;
            let got = String::from_utf8_lossy(&buf[..n]).into_owned();
            c.write_all(format!("{reply}\n").as_bytes()).ok()?;
            match peer {
                SocketAddr::V4(p) if got.contains(&m) => Some(*p.ip()),
                _ => None,
            }
        });
        let nc = format!("echo {m} | timeout 10 nc {} {}", to.ip(), to.port());
        let cmd = match alongside {
            // `$!`: only this job, not a guest listener left running.
            Some(job) => format!("({job}) & {nc}; wait $!"),
            None => nc,
        };
        let sent = g.sh(&cmd, COMMAND);
        let peer = server.join().ok().flatten();
        let (out, _) = sent?;
        Ok((peer.filter(|_| out.contains(&reply)), out))
    })
}

/// Starts a one-shot TCP listener on `port` in the guest that answers a
/// marker and keeps what it receives in `/tmp/t<port>`; the marker. Waits
/// until the socket listens. A listener left from an earlier (blocked)
/// probe is ended first.
pub fn guest_listen(g: &mut Guest, port: u16) -> Result<String> {
    let reply = marker();
    g.ok(&format!(
        "killall -q nc; rm -f /tmp/t{port}; (echo {reply} | timeout 30 nc -l -p {port} > /tmp/t{port}) & \
         for i in $(seq 50); do netstat -ltn | grep -q ':{port} ' && break; sleep 0.1; done"
    ))?;
    Ok(reply)
}

/// What the guest's listener on `port` received (see [`guest_listen`]).
pub fn guest_received(g: &mut Guest, port: u16) -> Result<String> {
    Ok(g.sh(&format!("cat /tmp/t{port}"), COMMAND)?.0)
}

/// TCP from `ns` to the guest at `to` (a listener started here): whether
/// the guest's marker reached the client and the client's the guest.
pub fn tcp_to_guest(g: &mut Guest, ns: &Path, to: SocketAddr) -> Result<bool> {
    let reply = guest_listen(g, to.port())?;
    let m = marker();
    let crossed = tcp_exchange(ns, to, &m, &reply);
    Ok(crossed && guest_received(g, to.port())?.contains(&m))
}

/// The namespace side of [`tcp_to_guest`], without the guest's console
/// (so that it can run while the guest does something else): connects
/// from `ns` to a [`guest_listen`]er at `to`, sends `m`; whether the
/// listener's `reply` came back.
pub fn tcp_exchange(ns: &Path, to: SocketAddr, m: &str, reply: &str) -> bool {
    let exchange = || -> Option<bool> {
        let mut c = in_ns(ns, || {
            TcpStream::connect_timeout(&to, Duration::from_secs(3))
        })
        .ok()?;
        c.set_read_timeout(Some(WAIT)).ok()?;
        c.write_all(format!("{m}\n").as_bytes()).ok()?;
        let mut buf = [0u8; 128];
        let n = c.read(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).contains(reply))
    };
    exchange() == Some(true)
}

/// TCP from guest `a` to a listener in guest `b` at `to`: whether both
/// markers crossed.
pub fn tcp_guest_to_guest(a: &mut Guest, b: &mut Guest, to: SocketAddr) -> Result<bool> {
    let reply = guest_listen(b, to.port())?;
    let m = marker();
    let (out, _) = a.sh(
        &format!("echo {m} | timeout 10 nc {} {}", to.ip(), to.port()),
        COMMAND,
    )?;
    Ok(out.contains(&reply) && guest_received(b, to.port())?.contains(&m))
}

/// UDP from the guest to `to` (a TFTP-speaking socket this opens in `ns`):
/// the guest's read request names a marker, the answer carries another
/// back. The source address the server saw, when both crossed.
pub fn udp_from_guest(g: &mut Guest, ns: &Path, to: SocketAddr) -> Result<Option<Ipv4Addr>> {
    let rx = in_ns(ns, || {
        let s = UdpSocket::bind(("0.0.0.0", to.port()))?;
        s.set_read_timeout(Some(WAIT))?;
        Ok(s)
    })?;
    let (m, reply) = (marker(), marker());
    std::thread::scope(|s| {
        let server = s.spawn(|| {
            let mut buf = [0u8; 512];
            let (n, from) = rx.recv_from(&mut buf).ok()?;
            // RRQ: opcode 1, file name, 0, mode, 0.
            if buf[..2] != [0, 1] || !String::from_utf8_lossy(&buf[2..n]).contains(&m) {
                return None;
            }
            // DATA, block 1, shorter than 512 bytes: the whole file.
            let mut data = vec![0, 3, 0, 1];
            data.extend_from_slice(reply.as_bytes());
            rx.send_to(&data, from).ok()?;
            match from {
                SocketAddr::V4(f) => Some(*f.ip()),
                SocketAddr::V6(_) => None,
            }
        });
        let file = format!("/tmp/u{}", to.port());
        let sent = g.sh(
            &format!(
                "rm -f {file}; timeout 10 tftp -g -r {m} -l {file} {} {} ; cat {file}",
                to.ip(),
                to.port()
            ),
            COMMAND,
        );
        let peer = server.join().ok().flatten();
        let (out, _) = sent?;
        Ok(peer.filter(|_| out.contains(&reply)))
    })
}

/// The guest kernel's counter `field` of protocol `proto` (`Ip`, `Tcp`,
/// `Udp`, …) in `/proc/net/snmp`: what reached the guest, counted by the
/// guest itself.
pub fn snmp(g: &mut Guest, proto: &str, field: &str) -> Result<u64> {
    let cmd = format!("grep '^{proto}:' /proc/net/snmp");
    let out = g.ok(&cmd)?;
    let head = format!("{proto}:");
    let mut lines = out
        .lines()
        .filter_map(|l| l.find(&head).map(|i| l[i..].split_whitespace()));
    let value = match (lines.next(), lines.next()) {
        (Some(names), Some(values)) => names
            .zip(values)
            .find(|(n, _)| *n == field)
            .and_then(|(_, v)| v.parse().ok()),
        _ => None,
    };
    value.ok_or_else(|| GuestError::Failed {
        name: g.name.clone(),
        cmd,
        status: 0,
        out: format!("no {proto} {field} in {out:?}"),
    })
}

/// UDP from guest `a` to a closed port of guest `b` at `to`: whether `b`'s
/// kernel counted the datagram (its `Udp NoPorts`).
pub fn udp_guest_to_guest(a: &mut Guest, b: &mut Guest, to: SocketAddr) -> Result<bool> {
    let before = snmp(b, "Udp", "NoPorts")?;
    a.sh(
        &format!(
            "timeout 3 tftp -g -r {} -l /tmp/x {} {}",
            marker(),
            to.ip(),
            to.port()
        ),
        COMMAND,
    )?;
    Ok(snmp(b, "Udp", "NoPorts")? > before)
}
