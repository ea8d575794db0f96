//! Raw-socket probes: IP protocols without ports (ICMP, IGMP, GRE, SCTP,
//! anything), forged sources, and ICMPv6 to link-local addresses. The
//! kernel writes the IPv4 header; the payloads come from the builders of
//! `bulkhead_dataplane::probe`.

use std::io::Read;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bulkhead_dataplane::probe::{self as dp, checksum, marker};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::{in_ns, PROBE};

static UNIQUE: AtomicU32 = AtomicU32::new(0);

/// A fresh value for making probe packets unique.
pub fn unique_u32() -> u32 {
    UNIQUE.fetch_add(1, Ordering::Relaxed) ^ (std::process::id() << 16)
}

fn raw_socket(ns: &Path, proto: i32) -> Socket {
    let p = u8::try_from(proto).expect("an IP protocol number");
    dp::raw_socket(ns, p).unwrap_or_else(|e| panic!("raw socket proto {proto}: {e}"))
}

/// Reads IPv4 packets (header included) from a raw socket until `timeout`,
/// returning whether one that `want` accepts (source, L4 bytes) came.
fn raw_wait(s: &Socket, timeout: Duration, want: impl Fn(Ipv4Addr, &[u8]) -> bool) -> bool {
    let until = Instant::now() + timeout;
    let mut buf = [0u8; 2048];
    let mut sock = s;
    while Instant::now() < until {
        let Ok(n) = sock.read(&mut buf) else { continue };
        if n < 20 {
            continue;
        }
        let ihl = usize::from(buf[0] & 0x0f) * 4;
        let src = Ipv4Addr::new(buf[12], buf[13], buf[14], buf[15]);
        if n >= ihl && want(src, &buf[ihl..n]) {
            return true;
        }
    }
    false
}

/// Sends one raw IP packet of protocol `proto` from `from_ns` (source
/// `src` or the routing's choice) to `to`, counted on a raw socket in
/// `to_ns`. Whether it arrived.
pub fn raw_arrives(
    from_ns: &Path,
    src: Option<Ipv4Addr>,
    to_ns: &Path,
    to: Ipv4Addr,
    proto: i32,
) -> bool {
    let rx = raw_socket(to_ns, proto);
    let tx = raw_socket(from_ns, proto);
    if let Some(a) = src {
        tx.bind(&SockAddr::from(SocketAddrV4::new(a, 0)))
            .expect("bind raw");
    }
    let m = marker();
    if tx
        .send_to(&m, &SockAddr::from(SocketAddrV4::new(to, 0)))
        .is_err()
    {
        return false;
    }
    raw_wait(&rx, PROBE, |_, payload| payload.starts_with(&m))
}

/// Sends `payload` as one raw IPv4 packet of protocol `proto` from
/// `from_ns` to `to`, counted on a raw socket for `proto` in `to_ns`:
/// whether a packet whose L4 bytes equal `payload` arrived within [`PROBE`].
pub fn raw_payload_arrives(
    from_ns: &Path,
    to_ns: &Path,
    to: Ipv4Addr,
    proto: i32,
    payload: &[u8],
) -> bool {
    let rx = raw_socket(to_ns, proto);
    let tx = raw_socket(from_ns, proto);
    if tx
        .send_to(payload, &SockAddr::from(SocketAddrV4::new(to, 0)))
        .is_err()
    {
        return false;
    }
    raw_wait(&rx, PROBE, |_, got| got == payload)
}

/// An echo request (ICMP `kind` 8 or ICMPv6 128) with a unique identifier;
/// the identifier and the packet.
fn echo_request(kind: u8, text: &[u8]) -> (u16, Vec<u8>) {
    let ident = (unique_u32() as u16) ^ (std::process::id() as u16);
    let mut pkt = vec![kind, 0, 0, 0];
    pkt.extend_from_slice(&ident.to_be_bytes());
    pkt.extend_from_slice(&1u16.to_be_bytes());
    pkt.extend_from_slice(text);
    (ident, pkt)
}

/// ICMP echo from inside `from_ns` to `to`: whether a reply came back.
pub fn ping(from_ns: &Path, to: Ipv4Addr) -> bool {
    let s = raw_socket(from_ns, 1);
    let (ident, mut pkt) = echo_request(8, b"bulkhead-e2e-ping");
    let c = checksum(&pkt);
    pkt[2..4].copy_from_slice(&c.to_be_bytes());
    if s.send_to(&pkt, &SockAddr::from(SocketAddrV4::new(to, 0)))
        .is_err()
    {
        return false;
    }
    raw_wait(&s, PROBE, |src, icmp| {
        src == to && icmp.len() >= 8 && icmp[0] == 0 && icmp[4..6] == ident.to_be_bytes()
    })
}

/// ICMPv6 echo from inside `from_ns` to the link-local `to` on interface
/// index `scope` (`to%ifname`): whether the echo reply came back. The kernel
/// fills in the ICMPv6 checksum on raw ICMPv6 sockets.
pub fn ping6(from_ns: &Path, to: Ipv6Addr, scope: u32) -> bool {
    let s = in_ns(from_ns, || {
        Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))
    })
    .unwrap_or_else(|e| panic!("raw icmpv6 socket: {e}"));
    s.set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let (ident, pkt) = echo_request(128, b"bulkhead-e2e-ping6");
    let dst = SocketAddrV6::new(to, 0, 0, scope);
    if s.send_to(&pkt, &SockAddr::from(dst)).is_err() {
        return false;
    }
    let until = Instant::now() + PROBE;
    let mut buf = [0u8; 2048];
    let mut sock = &s;
    while Instant::now() < until {
        let Ok(n) = sock.read(&mut buf) else {
            continue;
        };
        if n >= 8 && buf[0] == 129 && buf[4..6] == ident.to_be_bytes() {
            return true;
        }
    }
    false
}

/// An IGMPv2 membership report (type 0x16) for `group`, with its checksum.
pub fn igmp_v2_report(group: Ipv4Addr) -> Vec<u8> {
    let mut p = vec![0x16, 0, 0, 0];
    p.extend_from_slice(&group.octets());
    let c = checksum(&p);
    p[2..4].copy_from_slice(&c.to_be_bytes());
    p
}

/// A unique multicast group (239.0.0.0/8, administratively scoped).
pub fn unique_group() -> Ipv4Addr {
    let [_, b, c, d] = unique_u32().to_be_bytes();
    Ipv4Addr::new(239, b, c, d | 1)
}

/// A GRE (RFC 2784, version 0, no options) packet: protocol type 0x88B5
/// (local experimental ethertype) followed by a unique marker.
pub fn gre_packet() -> Vec<u8> {
    let mut p = vec![0, 0, 0x88, 0xb5];
    p.extend_from_slice(&marker());
    p
}

/// A well-formed SCTP INIT whose ports and initiate tag are unique per
/// call, so concurrent probes never share a conntrack association.
pub fn sctp_init() -> Vec<u8> {
    let u = unique_u32();
    let sport = 40000 + (u % 20000) as u16;
    let dport = 5000 + (u % 1000) as u16;
    dp::sctp_init(sport, dport, u | 1)
}
