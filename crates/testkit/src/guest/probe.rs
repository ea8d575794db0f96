//! Real packets between a [`Guest`] and a namespace, or two guests, with
//! busybox tools in the guest: `nc` (TCP client and listener), `tftp` (a
//! UDP request/response: the read request carries a marker, the answer's
//! DATA block another), `ping`, and the guest's own UDP counters.
//!
//! Contract: every probe carries unique markers, the namespace side listens
//! before the guest sends, and a probe that is stopped costs one bounded
//! wait (a few seconds; the guest runs under TCG on a loaded machine).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use super::Guest;
use crate::probe::{accept, in_ns, tcp_listen, udp_listen};

/// How long the namespace side waits for a guest's packet.
const WAIT: Duration = Duration::from_secs(8);

/// A marker unique in this test process.
fn mark() -> String {
    format!("bhm{}x{}", std::process::id(), crate::netns::next_n())
}

/// TCP from the guest to `to` (a listener in `ns`): the guest sends a
/// marker, the server answers another. The client address the server saw,
/// when both markers crossed.
pub fn tcp_from_guest(g: &mut Guest, ns: &Path, to: SocketAddr) -> Option<Ipv4Addr> {
    let l = tcp_listen(ns, to.port());
    let (m, reply) = (mark(), mark());
    std::thread::scope(|s| {
        let server = s.spawn(|| {
            let (mut c, peer) = accept(&l, WAIT)?;
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
        let (out, _) = g.sh(
            &format!("echo {m} | timeout 10 nc {} {}", to.ip(), to.port()),
            Duration::from_secs(30),
        );
        let peer = server.join().ok().flatten()?;
        out.contains(&reply).then_some(peer)
    })
}

/// Starts a one-shot TCP listener on `port` in the guest that answers a
/// marker and keeps what it receives in `/tmp/t<port>`; the marker. Waits
/// until the socket listens. A listener left from an earlier (blocked)
/// probe is ended first.
pub fn guest_listen(g: &mut Guest, port: u16) -> String {
    let reply = mark();
    g.ok(&format!(
        "killall -q nc; rm -f /tmp/t{port}; (echo {reply} | timeout 30 nc -l -p {port} > /tmp/t{port}) & \
         for i in $(seq 50); do netstat -ltn | grep -q ':{port} ' && break; sleep 0.1; done"
    ));
    reply
}

/// What the guest's listener on `port` received (see [`guest_listen`]).
pub fn guest_received(g: &mut Guest, port: u16) -> String {
    g.sh(&format!("cat /tmp/t{port}"), Duration::from_secs(30))
        .0
}

/// TCP from `ns` to the guest at `to` (a listener started here): whether
/// the guest's marker reached the client and the client's the guest.
pub fn tcp_to_guest(g: &mut Guest, ns: &Path, to: SocketAddr) -> bool {
    let reply = guest_listen(g, to.port());
    let m = mark();
    let crossed = in_ns(ns, || {
        let mut c = std::net::TcpStream::connect_timeout(&to, Duration::from_secs(3)).ok()?;
        c.set_read_timeout(Some(WAIT)).ok()?;
        c.write_all(format!("{m}\n").as_bytes()).ok()?;
        let mut buf = [0u8; 128];
        let n = c.read(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).contains(&reply))
    });
    crossed == Some(true) && guest_received(g, to.port()).contains(&m)
}

/// TCP from guest `a` to a listener in guest `b` at `to`: whether both
/// markers crossed.
pub fn tcp_guest_to_guest(a: &mut Guest, b: &mut Guest, to: SocketAddr) -> bool {
    let reply = guest_listen(b, to.port());
    let m = mark();
    let (out, _) = a.sh(
        &format!("echo {m} | timeout 10 nc {} {}", to.ip(), to.port()),
        Duration::from_secs(30),
    );
    out.contains(&reply) && guest_received(b, to.port()).contains(&m)
}

/// UDP from the guest to `to` (a TFTP-speaking socket in `ns`): the
/// guest's read request names a marker, the answer carries another back.
/// The source address the server saw, when both crossed.
pub fn udp_from_guest(g: &mut Guest, ns: &Path, to: SocketAddr) -> Option<Ipv4Addr> {
    let rx = udp_listen(ns, to.port());
    rx.set_read_timeout(Some(WAIT)).expect("timeout");
    let (m, reply) = (mark(), mark());
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
        let (out, _) = g.sh(
            &format!(
                "rm -f {file}; timeout 10 tftp -g -r {m} -l {file} {} {} ; cat {file}",
                to.ip(),
                to.port()
            ),
            Duration::from_secs(30),
        );
        let peer = server.join().ok().flatten()?;
        out.contains(&reply).then_some(peer)
    })
}

/// The guest kernel's counter `field` of protocol `proto` (`Ip`, `Tcp`,
/// `Udp`, …) in `/proc/net/snmp`: what reached the guest, counted by the
/// guest itself.
pub fn snmp(g: &mut Guest, proto: &str, field: &str) -> u64 {
    let out = g.ok(&format!("grep '^{proto}:' /proc/net/snmp"));
    let head = format!("{proto}:");
    let mut lines = out
        .lines()
        .filter_map(|l| l.find(&head).map(|i| l[i..].split_whitespace()));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        panic!("guest {}: no {proto} counters in {out:?}", g.name)
    };
    names
        .zip(values)
        .find(|(n, _)| *n == field)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or_else(|| panic!("guest {}: no {proto} {field} in {out:?}", g.name))
}

/// The guest's UDP `NoPorts` counter (datagrams to a closed port).
fn udp_no_ports(g: &mut Guest) -> u64 {
    snmp(g, "Udp", "NoPorts")
}

/// UDP from guest `a` to a closed port of guest `b` at `to`: whether `b`'s
/// kernel counted the datagram.
pub fn udp_guest_to_guest(a: &mut Guest, b: &mut Guest, to: SocketAddr) -> bool {
    let before = udp_no_ports(b);
    a.sh(
        &format!(
            "timeout 3 tftp -g -r {} -l /tmp/x {} {}",
            mark(),
            to.ip(),
            to.port()
        ),
        Duration::from_secs(30),
    );
    udp_no_ports(b) > before
}
