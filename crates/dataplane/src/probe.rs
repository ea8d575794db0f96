//! Real packets between namespaces: one probe sends one packet of a
//! protocol class from one namespace to an address in another and reports
//! whether it arrived. `bulkhead demo` prints its verdict matrix from these;
//! tests use them to prove what the rules promise.
//!
//! Contract: the receiver is listening before the packet leaves; a probe
//! waits at most [`PROBE_TIMEOUT`]; every packet carries a unique marker, so
//! a stray packet never counts. Probes only send to the address given, which
//! callers keep inside namespaces they made.
//!
//! The packet builders ([`marker`], [`checksum`], [`crc32c`],
//! [`sctp_init`]) and [`raw_socket`] are public so the test kit
//! (`bulkhead-testkit`) builds its richer probes on these, not on a copy.

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::netns;

/// How long a probe waits for its packet.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(400);

/// What a probe sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    /// A TCP connection to the port (a SYN that must reach a listener).
    Tcp(u16),
    /// A UDP datagram to the port.
    Udp(u16),
    /// An ICMP echo request (counted on arrival, not by its reply).
    Icmp,
    /// A raw IP datagram of this protocol number (IGMP 2, GRE 47, SCTP 132, 253…).
    Raw(u8),
}

impl ProbeKind {
    /// The IP protocol number the probe's packet carries.
    pub fn protocol(self) -> u8 {
        match self {
            ProbeKind::Tcp(_) => 6,
            ProbeKind::Udp(_) => 17,
            ProbeKind::Icmp => 1,
            ProbeKind::Raw(p) => p,
        }
    }

    /// The destination port, for TCP and UDP.
    pub fn port(self) -> Option<u16> {
        match self {
            ProbeKind::Tcp(p) | ProbeKind::Udp(p) => Some(p),
            _ => None,
        }
    }
}

static MARK: AtomicU32 = AtomicU32::new(0);

/// A payload no other probe (of any process) sends.
pub fn marker() -> Vec<u8> {
    format!(
        "bulkhead-probe-{}-{}",
        std::process::id(),
        MARK.fetch_add(1, Ordering::Relaxed)
    )
    .into_bytes()
}

fn in_ns<R: Send>(ns: &Path, f: impl FnOnce() -> std::io::Result<R> + Send) -> std::io::Result<R> {
    netns::run_in(Some(ns), f)?
}

/// A raw IPv4 socket for `proto` inside `ns`, with a short read timeout.
pub fn raw_socket(ns: &Path, proto: u8) -> std::io::Result<Socket> {
    let s = in_ns(ns, || {
        Socket::new(
            Domain::IPV4,
            Type::RAW,
            Some(Protocol::from(i32::from(proto))),
        )
    })?;
    s.set_read_timeout(Some(Duration::from_millis(50)))?;
    Ok(s)
}

/// Whether a packet whose payload (after the IP header) satisfies `want`
/// arrives on `s` before the timeout.
fn raw_seen(s: &Socket, want: impl Fn(&[u8]) -> bool) -> bool {
    let until = Instant::now() + PROBE_TIMEOUT;
    let mut buf = [0u8; 2048];
    let mut sock = s;
    while Instant::now() < until {
        let Ok(n) = sock.read(&mut buf) else { continue };
        let ihl = usize::from(buf[0] & 0x0f) * 4;
        if n >= 20 && n >= ihl && want(&buf[ihl..n]) {
            return true;
        }
    }
    false
}

const SCTP: u8 = 132;

/// CRC32c (Castagnoli), as SCTP's checksum uses it.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A well-formed SCTP INIT (common header + INIT chunk, RFC 4960) with a
/// correct CRC32c (stored little-endian, as Linux compares it), so
/// connection tracking sees a new association rather than an invalid
/// packet. `tag` is the initiate tag (non-zero) and initial TSN.
pub fn sctp_init(sport: u16, dport: u16, tag: u32) -> Vec<u8> {
    let mut p = Vec::with_capacity(32);
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&0u32.to_be_bytes()); // verification tag: 0 for INIT
    p.extend_from_slice(&0u32.to_be_bytes()); // checksum, filled in below
    p.extend_from_slice(&[1, 0, 0, 20]); // INIT, flags, length 20
    p.extend_from_slice(&tag.to_be_bytes()); // initiate tag: the probe's marker
    p.extend_from_slice(&65535u32.to_be_bytes()); // a_rwnd
    p.extend_from_slice(&1u16.to_be_bytes()); // outbound streams
    p.extend_from_slice(&1u16.to_be_bytes()); // inbound streams
    p.extend_from_slice(&tag.to_be_bytes()); // initial TSN
    let c = crc32c(&p);
    p[8..12].copy_from_slice(&c.to_le_bytes());
    p
}

/// The Internet checksum (RFC 1071) of `data`.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Sends one probe from namespace `from` to `to` (an address in namespace
/// `at`) and reports whether it arrived there.
pub fn arrives(from: &Path, at: &Path, to: Ipv4Addr, kind: ProbeKind) -> std::io::Result<bool> {
    match kind {
        ProbeKind::Tcp(port) => {
            let listener = in_ns(at, || TcpListener::bind(("0.0.0.0", port)))?;
            listener.set_nonblocking(true)?;
            let target = SocketAddr::V4(SocketAddrV4::new(to, port));
            let _client = in_ns(from, || {
                Ok(TcpStream::connect_timeout(&target, PROBE_TIMEOUT).ok())
            })?;
            let until = Instant::now() + PROBE_TIMEOUT;
            loop {
                match listener.accept() {
                    Ok(_) => return Ok(true),
                    Err(_) if Instant::now() < until => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    Err(_) => return Ok(false),
                }
            }
        }
        ProbeKind::Udp(port) => {
            let rx = in_ns(at, || UdpSocket::bind(("0.0.0.0", port)))?;
            rx.set_read_timeout(Some(PROBE_TIMEOUT))?;
            let tx = in_ns(from, || UdpSocket::bind(("0.0.0.0", 0)))?;
            let m = marker();
            tx.send_to(&m, (to, port))?;
            let mut buf = [0u8; 256];
            let until = Instant::now() + PROBE_TIMEOUT;
            while Instant::now() < until {
                match rx.recv_from(&mut buf) {
                    Ok((n, _)) if buf[..n] == m[..] => return Ok(true),
                    Ok(_) => continue,
                    Err(_) => return Ok(false),
                }
            }
            Ok(false)
        }
        ProbeKind::Icmp => {
            let rx = raw_socket(at, 1)?;
            let tx = raw_socket(from, 1)?;
            let m = marker();
            let mut pkt = vec![8u8, 0, 0, 0, 0x42, 0x48, 0, 1];
            pkt.extend_from_slice(&m);
            let c = checksum(&pkt);
            pkt[2..4].copy_from_slice(&c.to_be_bytes());
            tx.send_to(&pkt, &SockAddr::from(SocketAddrV4::new(to, 0)))?;
            Ok(raw_seen(&rx, |icmp| {
                icmp.first() == Some(&8) && icmp.ends_with(&m)
            }))
        }
        ProbeKind::Raw(SCTP) => {
            let rx = raw_socket(at, SCTP)?;
            let tx = raw_socket(from, SCTP)?;
            let tag = MARK.fetch_add(1, Ordering::Relaxed) ^ std::process::id().rotate_left(16);
            // Source 40000, destination 9 (discard).
            let pkt = sctp_init(40000, 9, tag);
            tx.send_to(&pkt, &SockAddr::from(SocketAddrV4::new(to, 0)))?;
            Ok(raw_seen(&rx, |p| {
                p.len() >= 20 && p[16..20] == tag.to_be_bytes()
            }))
        }
        ProbeKind::Raw(proto) => {
            let rx = raw_socket(at, proto)?;
            let tx = raw_socket(from, proto)?;
            let m = marker();
            tx.send_to(&m, &SockAddr::from(SocketAddrV4::new(to, 0)))?;
            Ok(raw_seen(&rx, |payload| payload.starts_with(&m)))
        }
    }
}
