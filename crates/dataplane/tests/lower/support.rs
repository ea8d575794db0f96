//! Test support for `tests/lower.rs`: two namespaces joined by a veth,
//! TCP listeners and connects, UDP datagrams, raw protocol-253 packets and
//! a counting table that tells how many of those got past our input hook.
//! Setup uses `ip` (tests only); only the namespaces made here are touched.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bulkhead_dataplane::netns::{self, NetnsGuard};
use bulkhead_dataplane::nft::{self, NftSocket};
use bulkhead_dataplane::testing::unique_name;

pub const SERVER: [u8; 4] = [10, 99, 0, 2];

pub struct Pair {
    pub a: NetnsGuard,
    pub b: NetnsGuard,
}

pub fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn pair(tag: &str) -> Pair {
    let a = NetnsGuard::create(&unique_name(&format!("{tag}-a"))).unwrap();
    let b = NetnsGuard::create(&unique_name(&format!("{tag}-b"))).unwrap();
    let (na, nb) = (a.name(), b.name());
    ip(&[
        "-n", na, "link", "add", "va", "type", "veth", "peer", "name", "eth0", "netns", nb,
    ]);
    ip(&["-n", na, "addr", "add", "10.99.0.1/24", "dev", "va"]);
    ip(&["-n", na, "addr", "add", "10.99.0.3/24", "dev", "va"]);
    ip(&["-n", nb, "addr", "add", "10.99.0.2/24", "dev", "eth0"]);
    for (n, dev) in [(na, "va"), (nb, "eth0")] {
        ip(&["-n", n, "link", "set", dev, "up"]);
        ip(&["-n", n, "link", "set", "lo", "up"]);
    }
    Pair { a, b }
}

/// TCP listeners in a namespace, accepting (and closing) until dropped.
pub struct Listeners {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Listeners {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.take().map(|t| t.join());
    }
}

/// Listeners on `SERVER`.
pub fn listen(ns: &NetnsGuard, ports: &[u16]) -> Listeners {
    listen_on(ns, SERVER, ports)
}

pub fn listen_on(ns: &NetnsGuard, addr: [u8; 4], ports: &[u16]) -> Listeners {
    let ports = ports.to_vec();
    let socks: Vec<TcpListener> = netns::run_in(Some(ns.path()), move || {
        ports
            .iter()
            .map(|p| TcpListener::bind(SocketAddr::from((addr, *p))).unwrap())
            .collect()
    })
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::spawn(move || {
        socks.iter().for_each(|s| s.set_nonblocking(true).unwrap());
        while !flag.load(Ordering::Relaxed) {
            for s in &socks {
                while s.accept().is_ok() {}
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    Listeners {
        stop,
        thread: Some(thread),
    }
}

/// Whether a TCP connect from `a` to `SERVER:port` succeeds.
pub fn tcp(p: &Pair, port: u16) -> bool {
    connects(&p.a, SERVER, port)
}

/// Whether a TCP connect from `ns` to `addr:port` succeeds (300 ms).
pub fn connects(ns: &NetnsGuard, addr: [u8; 4], port: u16) -> bool {
    netns::run_in(Some(ns.path()), move || {
        TcpStream::connect_timeout(&SocketAddr::from((addr, port)), Duration::from_millis(300))
            .is_ok()
    })
    .unwrap()
}

/// Whether a datagram from `from` (10.99.0.x in `a`) reaches `b`'s port.
pub fn udp(p: &Pair, from: [u8; 4], port: u16) -> bool {
    let rx = netns::run_in(Some(p.b.path()), move || {
        UdpSocket::bind(SocketAddr::from((SERVER, port))).unwrap()
    })
    .unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    netns::run_in(Some(p.a.path()), move || {
        let tx = UdpSocket::bind(SocketAddr::from((from, 0))).unwrap();
        tx.send_to(b"ping", SocketAddr::from((SERVER, port)))
            .unwrap();
    })
    .unwrap();
    let mut buf = [0u8; 16];
    rx.recv_from(&mut buf).is_ok()
}

/// Sends `n` raw IPv4 packets of protocol 253 from `a` to the server.
pub fn send_proto_253(p: &Pair, n: usize) {
    use nix::sys::socket::{
        sendto, socket, AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrIn,
    };
    use std::os::fd::AsRawFd;
    netns::run_in(Some(p.a.path()), move || {
        let fd = socket(
            AddressFamily::Inet,
            SockType::Raw,
            SockFlag::empty(),
            SockProtocol::Raw,
        )
        .unwrap();
        // IP_HDRINCL is implied: the kernel fills in length, id and checksum.
        let mut pkt = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 253, 0, 0, 10, 99, 0, 1];
        pkt.extend_from_slice(&SERVER);
        pkt.extend_from_slice(b"bulkhead-253");
        let to = SockaddrIn::from(SocketAddrV4::new(Ipv4Addr::from(SERVER), 0));
        for _ in 0..n {
            sendto(fd.as_raw_fd(), &pkt, &to, MsgFlags::empty()).unwrap();
        }
    })
    .unwrap();
}

/// A counting table in `b`: `prerouting` counts protocol-253 packets that
/// arrive, `input` at priority 10 (after bulkhead's 0) those let through.
pub fn counting_table(nft_b: &mut NftSocket) -> nft::Table {
    use nft::*;
    let t = Table::new(Family::Inet, "bht_count");
    let count = |chain: &str| {
        Rule::new(
            chain,
            vec![
                Expr::Meta {
                    key: MetaKey::L4Proto,
                    dreg: Reg::R1,
                },
                Expr::cmp_eq(Reg::R1, [253u8]),
                Expr::Counter,
            ],
        )
    };
    let mut b = Batch::new();
    b.add_table(&t)
        .add_chain(
            &t,
            &Chain::base(
                "pre",
                ChainType::Filter,
                Hook::Prerouting,
                -10,
                Policy::Accept,
            ),
        )
        .add_chain(
            &t,
            &Chain::base("in", ChainType::Filter, Hook::Input, 10, Policy::Accept),
        )
        .add_rule(&t, &count("pre"))
        .add_rule(&t, &count("in"));
    nft_b.commit(b).unwrap();
    t
}

/// `(arrived, let in)` protocol-253 packets.
pub fn counts(nft_b: &mut NftSocket, t: &nft::Table) -> (u64, u64) {
    let get = |nft_b: &mut NftSocket, c| {
        nft_b.list_rules(t, Some(c)).unwrap()[0]
            .counter()
            .unwrap()
            .0
    };
    (get(nft_b, "pre"), get(nft_b, "in"))
}
