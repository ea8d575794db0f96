//! Real probes for the trace agreement test: one packet (or connection) of
//! TCP, UDP, ICMP echo or a raw IP protocol from one namespace to another,
//! with the source address and port chosen by the caller (forged with a
//! hand-built IPv4 header when it is not the sender's). Each probe waits at
//! most a short bound; many run at once on threads.
//!
//! Datagram probes send three copies 150 ms apart: a first packet can be
//! lost while a neighbour entry resolves, and a blocked flow blocks every
//! copy alike (conntrack confirms a flow only once it has passed).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bulkhead_testkit::probe::{checksum, in_ns};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// How long a TCP connect may take (one SYN retransmission fits).
const CONNECT: Duration = Duration::from_millis(1300);
/// How long a datagram probe waits for its packet.
const WAIT: Duration = Duration::from_millis(650);
const COPIES: u32 = 3;
const GAP: Duration = Duration::from_millis(150);

static MARK: AtomicU32 = AtomicU32::new(1);

/// A unique token for one probe.
pub fn token() -> Vec<u8> {
    let n = MARK.fetch_add(1, Ordering::Relaxed);
    format!("bhtrace-{}-{n}", std::process::id()).into_bytes()
}

fn socket(ns: &Path, ty: Type, proto: i32) -> Socket {
    let mut tries = 0;
    loop {
        match in_ns(ns, || {
            Socket::new(Domain::IPV4, ty, Some(Protocol::from(proto)))
        }) {
            Ok(s) => return s,
            Err(_) if tries < 20 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("socket {ty:?}/{proto} in {}: {e}", ns.display()),
        }
    }
}

fn bind(s: &Socket, addr: SocketAddrV4) {
    s.set_reuse_address(true).expect("reuseaddr");
    let mut tries = 0;
    while let Err(e) = s.bind(&SockAddr::from(addr)) {
        tries += 1;
        assert!(tries < 60, "bind {addr}: {e}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Where a probe listens: a UDP socket (the sender's address is kept for
/// the reply) or a raw one (the IP header is in the data).
enum Rx {
    Udp(std::net::UdpSocket),
    Raw(Socket),
}

impl Rx {
    fn recv(&self, buf: &mut [u8]) -> Option<(usize, Option<SocketAddrV4>)> {
        match self {
            Rx::Udp(u) => match u.recv_from(buf) {
                Ok((n, std::net::SocketAddr::V4(a))) => Some((n, Some(a))),
                Ok((n, _)) => Some((n, None)),
                Err(_) => None,
            },
            Rx::Raw(r) => {
                let mut r: &Socket = r;
                r.read(buf).ok().map(|n| (n, None))
            }
        }
    }

    fn set_timeout(&self, d: Duration) {
        match self {
            Rx::Udp(u) => u.set_read_timeout(Some(d)).expect("timeout"),
            Rx::Raw(r) => r.set_read_timeout(Some(d)).expect("timeout"),
        }
    }
}

/// What a probe saw: the first packet arrived (`forward`), and, when asked
/// for, the reply on the same connection arrived (`reply`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub forward: bool,
    pub reply: Option<bool>,
}

/// TCP: `src_ns` connects from `src` to `to`; the listener sits in
/// `dst_ns` on `listen_port`.
pub fn tcp(
    src_ns: &Path,
    src: SocketAddrV4,
    dst_ns: &Path,
    listen_port: u16,
    to: SocketAddrV4,
    reply: bool,
) -> Outcome {
    let l = socket(dst_ns, Type::STREAM, 6);
    bind(&l, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, listen_port));
    l.listen(16).expect("listen");
    l.set_nonblocking(true).expect("nonblocking");
    let c = socket(src_ns, Type::STREAM, 6);
    bind(&c, src);
    let none = Outcome {
        forward: false,
        reply: None,
    };
    if c.connect_timeout(&SockAddr::from(to), CONNECT).is_err() {
        return Outcome {
            forward: false,
            reply: None,
        };
    }
    let mut c: std::net::TcpStream = c.into();
    let t = token();
    if c.write_all(&t).is_err() {
        return none;
    }
    let until = Instant::now() + WAIT;
    let mut server = loop {
        match l.accept() {
            Ok((s, _)) => break std::net::TcpStream::from(s),
            Err(_) if Instant::now() < until => std::thread::sleep(Duration::from_millis(5)),
            Err(_) => {
                return Outcome {
                    forward: false,
                    reply: None,
                }
            }
        }
    };
    server.set_nonblocking(false).expect("blocking");
    server.set_read_timeout(Some(WAIT)).expect("timeout");
    let mut buf = vec![0u8; t.len()];
    let forward = server.read_exact(&mut buf).is_ok() && buf == t;
    if !reply || !forward {
        return Outcome {
            forward,
            reply: None,
        };
    }
    let back = token();
    let sent = server.write_all(&back).is_ok();
    c.set_read_timeout(Some(WAIT)).expect("timeout");
    let mut got = vec![0u8; back.len()];
    let ok = sent && c.read_exact(&mut got).is_ok() && got == back;
    Outcome {
        forward,
        reply: Some(ok),
    }
}

/// A hand-built IPv4 packet (the kernel fills in the checksum and id).
fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload: &[u8]) -> Vec<u8> {
    let len = (20 + payload.len()) as u16;
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&len.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0x40, 0, 64, proto, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(payload);
    p
}

fn udp_payload(src_port: u16, dst_port: u16, data: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&src_port.to_be_bytes());
    u.extend_from_slice(&dst_port.to_be_bytes());
    u.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]); // no checksum (allowed over IPv4)
    u.extend_from_slice(data);
    u
}

/// Sends `packet` (a whole IPv4 packet) from `ns` through a raw socket.
fn send_forged(ns: &Path, to: Ipv4Addr, packet: &[u8]) -> Socket {
    let s = socket(ns, Type::RAW, 255); // IPPROTO_RAW: header included
    let _ = s.send_to(packet, &SockAddr::from(SocketAddrV4::new(to, 0)));
    s
}

/// Waits on `s` until `want` accepts a datagram or `WAIT` passes,
/// calling `resend` every `GAP` for the first copies.
fn wait(
    s: &Rx,
    mut resend: impl FnMut(),
    want: impl Fn(&[u8], Option<SocketAddrV4>) -> bool,
) -> Option<Option<SocketAddrV4>> {
    s.set_timeout(Duration::from_millis(30));
    let start = Instant::now();
    let mut sent = 1;
    let mut buf = [0u8; 2048];
    while start.elapsed() < WAIT {
        if sent < COPIES && start.elapsed() >= GAP * sent {
            resend();
            sent += 1;
        }
        if let Some((n, from)) = s.recv(&mut buf) {
            if want(&buf[..n], from) {
                return Some(from);
            }
        }
    }
    None
}

/// UDP from `src` (forged through a raw socket when `forged`) to `to`,
/// received on `listen` in `dst_ns`; with `reply`, the receiver answers
/// from its socket to whoever it saw. The receiver is bound to its own
/// address, so the reply leaves from the address the flow was reached at
/// (a host has several).
pub fn udp(
    src_ns: &Path,
    src: SocketAddrV4,
    forged: bool,
    listen: SocketAddrV4,
    dst_ns: &Path,
    to: SocketAddrV4,
    reply: bool,
) -> Outcome {
    let rx = socket(dst_ns, Type::DGRAM, 17);
    bind(&rx, listen);
    let rx = Rx::Udp(rx.into());
    let t = token();
    let mut client = None;
    let tx: Box<dyn FnMut()> = if forged {
        let p = ipv4(
            *src.ip(),
            *to.ip(),
            17,
            &udp_payload(src.port(), to.port(), &t),
        );
        let s = send_forged(src_ns, *to.ip(), &p);
        Box::new(move || {
            let _ = s.send_to(&p, &SockAddr::from(SocketAddrV4::new(*to.ip(), 0)));
        })
    } else {
        let s = socket(src_ns, Type::DGRAM, 17);
        bind(&s, src);
        let _ = s.send_to(&t, &SockAddr::from(to));
        let (tt, s2) = (t.clone(), s.try_clone().expect("clone"));
        client = Some(Rx::Udp(s.into()));
        Box::new(move || {
            let _ = s2.send_to(&tt, &SockAddr::from(to));
        })
    };
    let seen = wait(&rx, tx, |d, _| d == t.as_slice());
    let Some(peer) = seen else {
        return Outcome {
            forward: false,
            reply: None,
        };
    };
    let (true, Some(peer), Some(client)) = (reply, peer, client) else {
        return Outcome {
            forward: true,
            reply: None,
        };
    };
    let Rx::Udp(server) = &rx else { unreachable!() };
    let back = token();
    let _ = server.send_to(&back, peer);
    let again = || {
        let _ = server.send_to(&back, peer);
    };
    let got = wait(&client, again, |d, _| d == back.as_slice()).is_some();
    Outcome {
        forward: true,
        reply: Some(got),
    }
}

/// ICMP echo from `src` in `src_ns` to `to`: whether the reply came back.
pub fn icmp(src_ns: &Path, src: Ipv4Addr, to: Ipv4Addr) -> bool {
    let s = socket(src_ns, Type::RAW, 1);
    bind(&s, SocketAddrV4::new(src, 0));
    let ident =
        (MARK.fetch_add(1, Ordering::Relaxed) as u16) ^ (std::process::id() as u16).rotate_left(7);
    let mut pkt = vec![8u8, 0, 0, 0];
    pkt.extend_from_slice(&ident.to_be_bytes());
    pkt.extend_from_slice(&1u16.to_be_bytes());
    pkt.extend_from_slice(&token());
    let c = checksum(&pkt);
    pkt[2..4].copy_from_slice(&c.to_be_bytes());
    let dst = SockAddr::from(SocketAddrV4::new(to, 0));
    let _ = s.send_to(&pkt, &dst);
    let s2 = s.try_clone().expect("clone");
    let resend = move || {
        let _ = s2.send_to(&pkt, &dst);
    };
    wait(&Rx::Raw(s), resend, |d, _| {
        let ihl = usize::from(d.first().copied().unwrap_or(0) & 0x0f) * 4;
        let icmp = d.get(ihl..).unwrap_or(&[]);
        d.len() >= 20
            && d[12..16] == to.octets()
            && icmp.len() >= 8
            && icmp[0] == 0
            && icmp[4..6] == ident.to_be_bytes()
    })
    .is_some()
}

/// A raw IP packet of protocol `proto` from `src` (forged or bound) to
/// `to`, counted on a raw socket in `dst_ns`.
pub fn raw(
    src_ns: &Path,
    src: Ipv4Addr,
    forged: bool,
    dst_ns: &Path,
    to: Ipv4Addr,
    proto: u8,
) -> bool {
    let rx = Rx::Raw(socket(dst_ns, Type::RAW, i32::from(proto)));
    let t = token();
    let dst = SockAddr::from(SocketAddrV4::new(to, 0));
    let resend: Box<dyn FnMut()> = if forged {
        let p = ipv4(src, to, proto, &t);
        let s = send_forged(src_ns, to, &p);
        Box::new(move || {
            let _ = s.send_to(&p, &dst);
        })
    } else {
        let s = socket(src_ns, Type::RAW, i32::from(proto));
        bind(&s, SocketAddrV4::new(src, 0));
        let _ = s.send_to(&t, &dst);
        let tt = t.clone();
        Box::new(move || {
            let _ = s.send_to(&tt, &dst);
        })
    };
    wait(&rx, resend, |d, _| {
        let ihl = usize::from(d.first().copied().unwrap_or(0) & 0x0f) * 4;
        d.get(ihl..).is_some_and(|p| p.starts_with(&t))
    })
    .is_some()
}

/// The IPv4 socket address of `ip:port`.
pub fn sa(ip: Ipv4Addr, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(ip, port)
}
