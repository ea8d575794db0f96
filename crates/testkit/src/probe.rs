//! Real packets between namespaces for tests, built on
//! `bulkhead_dataplane::probe` (the packet builders and the one-shot
//! [`arrives`] live there, where `bulkhead demo` uses them too).
//!
//! Contract as there: the receiver listens before the packet leaves, a probe
//! waits at most [`PROBE`], and every packet carries a unique marker, so a
//! stray packet never counts. This module adds what tests need beyond a
//! yes/no: the peer address a server saw, request/response in both
//! directions, bulk transfer, forged sources; raw protocols are in [`raw`]
//! (re-exported here).

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use bulkhead_dataplane::netns;
pub use bulkhead_dataplane::probe::{
    arrives, checksum, crc32c, marker, ProbeKind, PROBE_TIMEOUT as PROBE,
};

mod raw;
pub use raw::*;

/// Runs `f` on a thread inside the namespace `ns`.
pub fn in_ns<R: Send>(ns: &Path, f: impl FnOnce() -> R + Send) -> R {
    netns::run_in(Some(ns), f).unwrap_or_else(|e| panic!("enter {}: {e}", ns.display()))
}

/// A TCP listener on `0.0.0.0:port` inside `ns` (non-blocking).
///
/// A bind refused with "address in use" is retried for up to a second:
/// under heavy parallel load the kernel was seen (rarely) to refuse a port
/// whose previous listener in the same namespace had just been closed.
pub fn tcp_listen(ns: &Path, port: u16) -> TcpListener {
    let until = Instant::now() + Duration::from_secs(1);
    let l = loop {
        match in_ns(ns, || TcpListener::bind(("0.0.0.0", port))) {
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && Instant::now() < until => {
                std::thread::sleep(Duration::from_millis(10));
            }
            r => break r.unwrap_or_else(|e| panic!("listen :{port}: {e}")),
        }
    };
    l.set_nonblocking(true).expect("nonblocking");
    l
}

/// Accepts one connection within `timeout`.
pub fn accept(l: &TcpListener, timeout: Duration) -> Option<(TcpStream, SocketAddr)> {
    let until = Instant::now() + timeout;
    loop {
        match l.accept() {
            Ok((s, peer)) => {
                s.set_nonblocking(false).expect("blocking");
                return Some((s, peer));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < until => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => return None,
        }
    }
}

/// A TCP connection from inside `ns` to `to` (timeout [`PROBE`]).
pub fn tcp_connect(ns: &Path, to: SocketAddr) -> io::Result<TcpStream> {
    in_ns(ns, || TcpStream::connect_timeout(&to, PROBE))
}

/// Listens on `port` in `server_ns`, connects from `client_ns` to `to`, and
/// returns the peer address the server saw, or `None` when the connection
/// did not reach the listener.
pub fn tcp_reaches(
    client_ns: &Path,
    server_ns: &Path,
    port: u16,
    to: SocketAddr,
) -> Option<SocketAddr> {
    let l = tcp_listen(server_ns, port);
    let _c = tcp_connect(client_ns, to).ok()?;
    accept(&l, PROBE).map(|(_, peer)| peer)
}

/// Reads from `s` within `timeout`: `Some(bytes)` when data came, `None` on
/// timeout, error or end of stream.
pub fn read_some(s: &mut TcpStream, timeout: Duration) -> Option<Vec<u8>> {
    s.set_read_timeout(Some(timeout)).ok()?;
    let mut buf = [0u8; 256];
    match s.read(&mut buf) {
        Ok(0) | Err(_) => None,
        Ok(n) => Some(buf[..n].to_vec()),
    }
}

/// TCP request/response: listens on `port` in `server_ns`, connects from
/// `client_ns` to `to`, sends a marker, the server echoes it back. Whether
/// the client read the echo (so both directions of the flow passed).
pub fn tcp_echo(client_ns: &Path, server_ns: &Path, port: u16, to: SocketAddr) -> bool {
    let l = tcp_listen(server_ns, port);
    let Ok(mut c) = tcp_connect(client_ns, to) else {
        return false;
    };
    let Some((mut s, _)) = accept(&l, PROBE) else {
        return false;
    };
    let m = marker();
    if c.write_all(&m).is_err() {
        return false;
    }
    let Some(got) = read_some(&mut s, PROBE) else {
        return false;
    };
    if got != m || s.write_all(&got).is_err() {
        return false;
    }
    read_some(&mut c, PROBE).as_deref() == Some(&m[..])
}

/// Sends `bytes` bytes over TCP from `client_ns` to `to` (a sink in
/// `server_ns` on `port`); whether all arrived within `timeout`.
pub fn tcp_bulk(
    client_ns: &Path,
    server_ns: &Path,
    port: u16,
    to: SocketAddr,
    bytes: usize,
    timeout: Duration,
) -> bool {
    let l = tcp_listen(server_ns, port);
    let Ok(mut c) = tcp_connect(client_ns, to) else {
        return false;
    };
    let Some((mut s, _)) = accept(&l, PROBE) else {
        return false;
    };
    s.set_read_timeout(Some(timeout)).expect("timeout");
    c.set_write_timeout(Some(timeout)).expect("timeout");
    let writer = std::thread::spawn(move || {
        let chunk = vec![0x5au8; 64 * 1024];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(chunk.len());
            if c.write_all(&chunk[..n]).is_err() {
                return false;
            }
            left -= n;
        }
        true
    });
    let until = Instant::now() + timeout;
    let mut got = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    while got < bytes && Instant::now() < until {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    let wrote = writer.join().unwrap_or(false);
    wrote && got == bytes
}

/// A UDP socket on `0.0.0.0:port` inside `ns`. A port a previous probe of
/// the same test just used may be reported busy for a moment (seen once in
/// a full-suite run), so a busy port is retried briefly before failing.
pub fn udp_listen(ns: &Path, port: u16) -> UdpSocket {
    let mut tries = 0;
    loop {
        match in_ns(ns, || UdpSocket::bind(("0.0.0.0", port))) {
            Ok(s) => return s,
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && tries < 40 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(25));
            }
            Err(e) => panic!("bind udp :{port} in {}: {e}", ns.display()),
        }
    }
}

/// Sends one UDP datagram from `from_ns` (source `src` or any) to `to`,
/// received on `0.0.0.0:<to.port>` in `to_ns`. Whether it arrived.
pub fn udp_arrives(from_ns: &Path, src: Option<Ipv4Addr>, to_ns: &Path, to: SocketAddr) -> bool {
    let rx = udp_listen(to_ns, to.port());
    rx.set_read_timeout(Some(PROBE)).expect("timeout");
    let tx = in_ns(from_ns, || {
        UdpSocket::bind((src.unwrap_or(Ipv4Addr::UNSPECIFIED), 0))
    })
    .expect("bind udp sender");
    let m = marker();
    if tx.send_to(&m, to).is_err() {
        return false;
    }
    let until = Instant::now() + PROBE;
    let mut buf = [0u8; 256];
    while Instant::now() < until {
        match rx.recv_from(&mut buf) {
            Ok((n, _)) if buf[..n] == m[..] => return true,
            Ok(_) => continue,
            Err(_) => return false,
        }
    }
    false
}

/// Sends one UDP datagram from `from_ns` to `to`, received on
/// `0.0.0.0:<listen_port>` in `to_ns` (for port mappings, where the
/// destination port differs from the container port). Whether it arrived.
pub fn udp_arrives_at(from_ns: &Path, to_ns: &Path, listen_port: u16, to: SocketAddr) -> bool {
    let rx = udp_listen(to_ns, listen_port);
    rx.set_read_timeout(Some(PROBE)).expect("timeout");
    let tx = in_ns(from_ns, || UdpSocket::bind(("0.0.0.0", 0))).expect("bind udp tx");
    let m = marker();
    if tx.send_to(&m, to).is_err() {
        return false;
    }
    let mut buf = [0u8; 256];
    matches!(rx.recv_from(&mut buf), Ok((n, _)) if buf[..n] == m[..])
}

/// UDP request/response: a server on `0.0.0.0:<listen_port>` in
/// `server_ns` answers the first datagram it gets to its source; the client
/// in `client_ns` sends a marker to `to`. Whether the answer came back.
pub fn udp_echo(client_ns: &Path, server_ns: &Path, listen_port: u16, to: SocketAddr) -> bool {
    let srv = udp_listen(server_ns, listen_port);
    srv.set_read_timeout(Some(PROBE)).expect("timeout");
    let cli = in_ns(client_ns, || UdpSocket::bind(("0.0.0.0", 0))).expect("bind udp client");
    cli.set_read_timeout(Some(PROBE)).expect("timeout");
    let m = marker();
    if cli.send_to(&m, to).is_err() {
        return false;
    }
    let mut buf = [0u8; 256];
    match srv.recv_from(&mut buf) {
        Ok((n, from)) if buf[..n] == m[..] => {
            if srv.send_to(&buf[..n], from).is_err() {
                return false;
            }
        }
        _ => return false,
    }
    matches!(cli.recv_from(&mut buf), Ok((n, _)) if buf[..n] == m[..])
}

/// Whether a probe that should arrive does, tried for up to 5 s: right
/// after a create the new links may still be coming up on a loaded
/// machine. For probes expected to arrive only (a refused probe must be
/// checked once).
pub fn arrives_soon(from: &Path, at: &Path, to: Ipv4Addr, kind: ProbeKind) -> bool {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        match arrives(from, at, to, kind) {
            Ok(true) => return true,
            Ok(false) if Instant::now() < until => std::thread::sleep(Duration::from_millis(50)),
            Ok(false) => return false,
            Err(e) => panic!("probe {kind:?} to {to}: {e}"),
        }
    }
}
