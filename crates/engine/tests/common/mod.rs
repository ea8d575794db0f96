//! Harness for end-to-end tests of the engine on the real kernel (tier T2).
//!
//! Safety: every test builds its own throwaway "host" namespace and runs the
//! engine's real kernel ([`HostKernel`]) inside it, with a netns prefix that
//! is unique to the test (`bht<pid>x<n>-`), so parallel tests never see each
//! other's namespaces. An "outside" peer (the uplink side) is another
//! throwaway namespace joined to the host namespace by a veth:
//!
//! ```text
//!   host ns: bhtup0 192.0.2.1/24  <-- veth -->  outside ns: up0 192.0.2.2/24, default via 192.0.2.1
//! ```
//!
//! Nothing here touches the machine's own namespace, links, routes, sysctls
//! or firewall, and probes only address namespaces the test made. On drop
//! (also on panic) the harness unpins every namespace with its prefix, then
//! the outside and host namespaces (guards).
#![allow(dead_code)]

use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bulkhead_dataplane::host::HostKernel;
use bulkhead_dataplane::netns::{self, NetnsGuard};
use bulkhead_dataplane::testing;
use bulkhead_engine::{Config, Engine};
use bulkhead_model::{AclRuleSpec, EndpointSpec, NamespaceSpec, NetworkSpec};
use bulkhead_store::MemoryStore;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// How long a probe waits for an answer.
pub const PROBE: Duration = Duration::from_millis(400);
/// The host's uplink address (in the throwaway host namespace).
pub const UPLINK: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The outside peer, behind the uplink.
pub const OUTSIDE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// The uplink device in the host namespace.
pub const UPLINK_DEV: &str = "bhtup0";

/// Runs `ip ARGS`, panicking with its output when it fails.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `nft ARGS` in the pinned namespace `ns_name`; its stdout.
pub fn nft(ns_name: &str, args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", ns_name, "nft"])
        .args(args)
        .output()
        .expect("run nft");
    assert!(
        out.status.success(),
        "nft {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Deletes the one rule of chain `chain` of `inet table` in the host
/// namespace `host` whose comment contains `needle`: the deliberately
/// weakened setup of an attack or agreement test.
pub fn delete_rule(host: &str, table: &str, chain: &str, needle: &str) {
    let list = nft(host, &["-a", "list", "chain", "inet", table, chain]);
    let handle = list
        .lines()
        .find(|l| l.contains("comment \"") && l.contains(needle))
        .and_then(|l| l.rsplit("# handle ").next())
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|| panic!("no rule {needle:?} in {table} {chain}:\n{list}"));
    nft(
        host,
        &["delete", "rule", "inet", table, chain, "handle", &handle],
    );
}

/// One endpoint made through the engine, with its own namespace.
#[derive(Debug, Clone)]
pub struct Ep {
    pub name: String,
    pub ip: Ipv4Addr,
    /// The namespace's pin (`/run/netns/<prefix><name>`).
    pub ns: PathBuf,
    /// The pinned namespace name (for `ip -n`).
    pub ns_name: String,
}

impl Ep {
    pub fn addr(&self, port: u16) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(self.ip, port))
    }
}

/// One test's world: host namespace, outside peer, engine.
pub struct Harness {
    pub engine: Arc<Engine>,
    pub kernel: Arc<HostKernel>,
    pub prefix: String,
    outside: NetnsGuard,
    host: NetnsGuard,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("prefix", &self.prefix)
            .field("host", &self.host)
            .finish()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        // Endpoint namespaces first (by this test's unique prefix), then the
        // guards (fields) drop: outside, then host, which takes every link in
        // it (switch ports, uplink) along.
        if let Ok(names) = netns::list(&self.prefix) {
            for n in names {
                let _ = netns::delete(&n);
            }
        }
    }
}

fn next_prefix() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "bht{}x{}-",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

impl Harness {
    /// `None` when not root (loud skip; panics under `CI=true`).
    #[track_caller]
    pub fn new(tag: &str) -> Option<Self> {
        if !testing::require_root() {
            return None;
        }
        let host = NetnsGuard::create(&testing::unique_name(&format!("{tag}-host")))
            .expect("create host netns");
        let outside = NetnsGuard::create(&testing::unique_name(&format!("{tag}-out")))
            .expect("create outside netns");
        let (h, o) = (host.name().to_owned(), outside.name().to_owned());
        ip(&["-n", &h, "link", "set", "lo", "up"]);
        ip(&["-n", &o, "link", "set", "lo", "up"]);
        ip(&[
            "-n", &h, "link", "add", UPLINK_DEV, "type", "veth", "peer", "name", "up0", "netns", &o,
        ]);
        ip(&["-n", &h, "addr", "add", "192.0.2.1/24", "dev", UPLINK_DEV]);
        ip(&["-n", &h, "link", "set", UPLINK_DEV, "up"]);
        ip(&["-n", &o, "addr", "add", "192.0.2.2/24", "dev", "up0"]);
        ip(&["-n", &o, "link", "set", "up0", "up"]);
        ip(&["-n", &o, "route", "add", "default", "via", "192.0.2.1"]);
        let kernel = Arc::new(HostKernel::open(Some(host.path())).expect("open host kernel"));
        let prefix = next_prefix();
        let (engine, _report) = Engine::open(
            kernel.clone(),
            Arc::new(MemoryStore::new()),
            Config {
                netns_prefix: prefix.clone(),
            },
        )
        .expect("open engine");
        Some(Self {
            engine: Arc::new(engine),
            kernel,
            prefix,
            outside,
            host,
        })
    }

    pub fn host(&self) -> &Path {
        self.host.path()
    }

    pub fn host_name(&self) -> &str {
        self.host.name()
    }

    pub fn outside(&self) -> &Path {
        self.outside.path()
    }

    /// A nat network with `subnet`, default profile unless `profile`.
    pub fn nat_network(&self, name: &str, subnet: &str, profile: Option<&str>) {
        self.engine
            .create_network(NetworkSpec {
                name: name.into(),
                driver: "nat".into(),
                subnets: vec![subnet.into()],
                acl_profile: profile.map(Into::into),
                ..Default::default()
            })
            .unwrap_or_else(|e| panic!("create network {name}: {e}"));
    }

    /// An endpoint `name` in a fresh namespace of the same name.
    pub fn endpoint(
        &self,
        name: &str,
        network: &str,
        publish: &[&str],
        acl_mode: Option<&str>,
    ) -> Ep {
        let (ep, ns, ns_name) = self.endpoint_from(EndpointSpec {
            name: name.into(),
            network: network.into(),
            namespace: name.into(),
            publish: publish.iter().map(|s| (*s).to_owned()).collect(),
            acl_mode: acl_mode.map(Into::into),
            ..Default::default()
        });
        let IpAddr::V4(ip) = ep.ip_address.addr else {
            panic!("endpoint {name}: not IPv4: {:?}", ep.ip_address)
        };
        Ep {
            name: name.into(),
            ip,
            ns,
            ns_name,
        }
    }

    /// Makes the namespace `spec.namespace` and the endpoint `spec` in it,
    /// and waits until both ends of its veth are up. Returns the endpoint,
    /// the namespace's pin and its pinned name.
    pub fn endpoint_from(&self, spec: EndpointSpec) -> (bulkhead_model::Endpoint, PathBuf, String) {
        let name = spec.name.clone();
        let namespace = spec.namespace.clone();
        let ns = self
            .engine
            .create_namespace(NamespaceSpec {
                name: namespace.clone(),
                isolation: None,
                ..NamespaceSpec::default()
            })
            .unwrap_or_else(|e| panic!("create namespace {namespace}: {e}"));
        let ep = self
            .engine
            .create_endpoint(spec)
            .unwrap_or_else(|e| panic!("create endpoint {name}: {e}"));
        // A fresh veth drops packets until the kernel's link watch has
        // activated both ends (up to a second): wait for both to be UP so
        // probes measure the policy, not link bring-up.
        let ns_name = format!("{}{namespace}", self.prefix);
        wait_up(&ns_name, ep.ifname.as_str());
        wait_up(self.host.name(), ep.switch_port.as_str());
        (
            ep,
            ns.netns_path.clone().expect("a process namespace"),
            ns_name,
        )
    }

    /// Adds a rule, returning its id.
    pub fn acl(&self, ep: &Ep, spec: AclRuleSpec) -> String {
        self.engine
            .add_acl(&ep.name, spec.clone())
            .unwrap_or_else(|e| panic!("add_acl {}: {spec:?}: {e}", ep.name))
            .id
            .to_string()
    }
}

/// Waits (up to 3 s) until `ifname` in the pinned namespace `ns_name` has
/// operational state UP.
pub fn wait_up(ns_name: &str, ifname: &str) {
    let until = Instant::now() + Duration::from_secs(3);
    loop {
        let out = Command::new("ip")
            .args(["-n", ns_name, "-o", "link", "show", ifname])
            .output()
            .expect("run ip");
        if String::from_utf8_lossy(&out.stdout).contains("state UP") {
            return;
        }
        assert!(
            Instant::now() < until,
            "{ifname} in {ns_name} never came up"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A rule spec: `action direction protocol`, optional local ports, remote
/// addresses, priority.
pub fn rule(
    action: &str,
    direction: &str,
    protocol: &str,
    local_ports: Option<&str>,
    remote: Option<&str>,
    priority: u16,
) -> AclRuleSpec {
    AclRuleSpec {
        action: action.into(),
        direction: direction.into(),
        protocol: Some(protocol.into()),
        local_ports: local_ports.map(Into::into),
        remote_addresses: remote.map(Into::into),
        priority: Some(priority.to_string()),
        ..Default::default()
    }
}

fn in_ns<R: Send>(ns: &Path, f: impl FnOnce() -> R + Send) -> R {
    netns::run_in(Some(ns), f).unwrap_or_else(|e| panic!("enter {}: {e}", ns.display()))
}

/// A TCP listener on `0.0.0.0:port` inside `ns` (non-blocking).
pub fn tcp_listen(ns: &Path, port: u16) -> TcpListener {
    let l = in_ns(ns, || TcpListener::bind(("0.0.0.0", port)))
        .unwrap_or_else(|e| panic!("listen :{port}: {e}"));
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

static MARK: AtomicU32 = AtomicU32::new(0);

fn marker() -> Vec<u8> {
    format!(
        "bht-probe-{}-{}",
        std::process::id(),
        MARK.fetch_add(1, Ordering::Relaxed)
    )
    .into_bytes()
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

fn raw_socket(ns: &Path, proto: i32) -> Socket {
    let s = in_ns(ns, || {
        Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(proto)))
    })
    .unwrap_or_else(|e| panic!("raw socket proto {proto}: {e}"));
    s.set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    s
}

/// Reads IPv4 packets (header included) from a raw socket until `timeout`,
/// returning the first that `want` accepts.
fn raw_wait(s: &Socket, timeout: Duration, want: impl Fn(Ipv4Addr, &[u8]) -> bool) -> bool {
    let until = Instant::now() + timeout;
    let mut buf = [0u8; 2048];
    let mut sock = s;
    while Instant::now() < until {
        let n = match sock.read(&mut buf) {
            Ok(n) => n,
            Err(_) => continue,
        };
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

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in data.chunks(2) {
        let word = u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// ICMP echo from inside `from_ns` to `to`: whether a reply came back.
pub fn ping(from_ns: &Path, to: Ipv4Addr) -> bool {
    let s = raw_socket(from_ns, 1);
    let ident = (MARK.fetch_add(1, Ordering::Relaxed) as u16) ^ (std::process::id() as u16);
    let mut pkt = vec![8u8, 0, 0, 0];
    pkt.extend_from_slice(&ident.to_be_bytes());
    pkt.extend_from_slice(&1u16.to_be_bytes());
    pkt.extend_from_slice(b"bulkhead-e2e-ping");
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

// ---------------------------------------------------------------------------
// Protocol probes added for `e2e_profiles.rs` (IGMP, GRE, SCTP, request/
// response, IPv6 link-local). Appended only: nothing above changes.
// ---------------------------------------------------------------------------

/// A fresh value for making probe packets unique.
pub fn unique_u32() -> u32 {
    MARK.fetch_add(1, Ordering::Relaxed) ^ (std::process::id() << 16)
}

/// Sends `payload` as one raw IPv4 packet of protocol `proto` (the kernel
/// writes the IP header) from `from_ns` to `to`, counted on a raw socket for
/// `proto` in `to_ns`: whether a packet whose L4 bytes equal `payload`
/// arrived within [`PROBE`].
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

/// CRC32c (Castagnoli, reflected, as SCTP uses it, RFC 4960 appendix B).
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A well-formed SCTP packet (RFC 4960): common header (verification tag 0,
/// as an INIT requires) + one INIT chunk (20 bytes, 1 stream each way), with
/// a correct CRC32c (stored little-endian, as Linux compares it), so that
/// conntrack's SCTP tracker sees a valid new association, not `invalid`.
/// Ports and initiate tag are unique per call.
pub fn sctp_init() -> Vec<u8> {
    let u = unique_u32();
    let sport = 40000 + (u % 20000) as u16;
    let dport = 5000 + (u % 1000) as u16;
    let mut p = Vec::with_capacity(32);
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&0u32.to_be_bytes()); // verification tag: 0 in INIT
    p.extend_from_slice(&0u32.to_be_bytes()); // checksum, filled below
    p.extend_from_slice(&[1, 0]); // chunk type INIT, flags
    p.extend_from_slice(&20u16.to_be_bytes()); // chunk length
    p.extend_from_slice(&(u | 1).to_be_bytes()); // initiate tag (non-zero)
    p.extend_from_slice(&65535u32.to_be_bytes()); // a_rwnd
    p.extend_from_slice(&1u16.to_be_bytes()); // outbound streams
    p.extend_from_slice(&1u16.to_be_bytes()); // inbound streams
    p.extend_from_slice(&u.to_be_bytes()); // initial TSN
    let c = crc32c(&p);
    p[8..12].copy_from_slice(&c.to_le_bytes());
    p
}

/// TCP request/response: listens on `port` in `server_ns`, connects from
/// `client_ns` to `to`, sends a marker, the server echoes it back. Whether
/// the client read the echo (so both directions of the flow passed).
pub fn tcp_echo(client_ns: &Path, server_ns: &Path, port: u16, to: SocketAddr) -> bool {
    use std::io::Write;
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

/// The interface index of `ifname` in the pinned namespace `ns_name`.
pub fn ifindex(ns_name: &str, ifname: &str) -> u32 {
    let out = Command::new("ip")
        .args(["-n", ns_name, "-o", "link", "show", ifname])
        .output()
        .expect("run ip");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split(':')
        .next()
        .and_then(|i| i.trim().parse().ok())
        .unwrap_or_else(|| panic!("no ifindex for {ifname} in {ns_name}: {text}"))
}

/// Waits up to `timeout` for `ifname` in `ns_name` to have a usable
/// (non-tentative, i.e. DAD done) fe80:: address; `None` when it never gets
/// one (IPv6 disabled there).
pub fn link_local(ns_name: &str, ifname: &str, timeout: Duration) -> Option<std::net::Ipv6Addr> {
    let until = Instant::now() + timeout;
    loop {
        let out = Command::new("ip")
            .args([
                "-n", ns_name, "-6", "-o", "addr", "show", "dev", ifname, "scope", "link",
            ])
            .output()
            .expect("run ip");
        let text = String::from_utf8_lossy(&out.stdout);
        for line in text.lines() {
            if line.contains("tentative") || line.contains("dadfailed") {
                continue;
            }
            let mut words = line.split_whitespace();
            if words.any(|w| w == "inet6") {
                if let Some(a) = words
                    .next()
                    .and_then(|cidr| cidr.split('/').next())
                    .and_then(|a| a.parse().ok())
                {
                    return Some(a);
                }
            }
        }
        if Instant::now() >= until {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// ICMPv6 echo from inside `from_ns` to the link-local `to` on interface
/// index `scope` (`to%ifname`): whether the echo reply came back. The kernel
/// fills in the ICMPv6 checksum on raw ICMPv6 sockets.
pub fn ping6(from_ns: &Path, to: std::net::Ipv6Addr, scope: u32) -> bool {
    let s = in_ns(from_ns, || {
        Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))
    })
    .unwrap_or_else(|e| panic!("raw icmpv6 socket: {e}"));
    s.set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let ident = (MARK.fetch_add(1, Ordering::Relaxed) as u16) ^ (std::process::id() as u16);
    let mut pkt = vec![128u8, 0, 0, 0];
    pkt.extend_from_slice(&ident.to_be_bytes());
    pkt.extend_from_slice(&1u16.to_be_bytes());
    pkt.extend_from_slice(b"bulkhead-e2e-ping6");
    let dst = std::net::SocketAddrV6::new(to, 0, 0, scope);
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

/// The `ip -6 neigh` line for `addr` on `ifname` in `ns_name`, if any.
pub fn neigh6(ns_name: &str, ifname: &str, addr: std::net::Ipv6Addr) -> Option<String> {
    let out = Command::new("ip")
        .args(["-n", ns_name, "-6", "neigh", "show", "dev", ifname])
        .output()
        .expect("run ip");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find(|l| l.split_whitespace().next() == Some(addr.to_string().as_str()))
        .map(str::to_owned)
}

// ---------------------------------------------------------------------------
// The L2 drivers and the overlay (`e2e_drivers.rs`). Appended only: nothing
// above changes.
//
// A simulated LAN behind a host's uplink, all in throwaway namespaces:
//
// ```text
//   host ns: <uplink> 198.51.100.1/24 <-- veth --> lan ns: bridge lan0 198.51.100.254 (router)
//                                                   ports: lanh (to the host; hairpin when asked)
//                                                          lanp <-- veth --> peer ns: eth0 198.51.100.2/24
// ```
// ---------------------------------------------------------------------------

/// The host's own address on the simulated LAN.
pub const LAN_HOST: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
/// The LAN peer host.
pub const LAN_PEER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
/// The LAN router (the L2 networks' gateway).
pub const LAN_ROUTER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 254);
/// The LAN subnet.
pub const LAN_SUBNET: &str = "198.51.100.0/24";

/// A LAN (switch + router namespace and a peer namespace) behind `uplink`
/// of a harness's host namespace; removed on drop.
#[derive(Debug)]
pub struct Lan {
    pub uplink: String,
    pub peer: NetnsGuard,
    pub lan: NetnsGuard,
}

impl Lan {
    /// Builds the LAN; with `hairpin`, the switch sends frames back out of
    /// the port they came in by (what l2tunnel needs from the fabric).
    pub fn attach(h: &Harness, tag: &str, uplink: &str, hairpin: bool) -> Lan {
        let lan = NetnsGuard::create(&testing::unique_name(&format!("{tag}-lan")))
            .expect("create lan netns");
        let peer = NetnsGuard::create(&testing::unique_name(&format!("{tag}-peer")))
            .expect("create peer netns");
        let (hn, l, p) = (h.host_name(), lan.name(), peer.name());
        ip(&["-n", l, "link", "set", "lo", "up"]);
        ip(&["-n", p, "link", "set", "lo", "up"]);
        ip(&["-n", l, "link", "add", "lan0", "type", "bridge"]);
        ip(&["-n", l, "addr", "add", "198.51.100.254/24", "dev", "lan0"]);
        ip(&["-n", l, "link", "set", "lan0", "up"]);
        ip(&[
            "-n", hn, "link", "add", uplink, "type", "veth", "peer", "name", "lanh", "netns", l,
        ]);
        ip(&["-n", hn, "addr", "add", "198.51.100.1/24", "dev", uplink]);
        ip(&["-n", hn, "link", "set", uplink, "up"]);
        ip(&["-n", l, "link", "set", "lanh", "master", "lan0", "up"]);
        if hairpin {
            ip(&[
                "-n",
                l,
                "link",
                "set",
                "lanh",
                "type",
                "bridge_slave",
                "hairpin",
                "on",
            ]);
        }
        ip(&[
            "-n", l, "link", "add", "lanp", "type", "veth", "peer", "name", "eth0", "netns", p,
        ]);
        ip(&["-n", l, "link", "set", "lanp", "master", "lan0", "up"]);
        ip(&["-n", p, "addr", "add", "198.51.100.2/24", "dev", "eth0"]);
        ip(&["-n", p, "link", "set", "eth0", "up"]);
        ip(&["-n", p, "route", "add", "default", "via", "198.51.100.254"]);
        wait_up(p, "eth0");
        wait_up(l, "lanh");
        Lan {
            uplink: uplink.to_owned(),
            peer,
            lan,
        }
    }
}

/// The MAC address of `ifname` in the pinned namespace `ns_name`.
pub fn mac_of(ns_name: &str, ifname: &str) -> [u8; 6] {
    let out = Command::new("ip")
        .args(["-n", ns_name, "-o", "link", "show", ifname])
        .output()
        .expect("run ip");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let hex = text
        .split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .unwrap_or_else(|| panic!("no MAC for {ifname} in {ns_name}: {text}"));
    let mut mac = [0u8; 6];
    for (i, b) in hex.split(':').enumerate().take(6) {
        mac[i] = u8::from_str_radix(b, 16).expect("hex");
    }
    mac
}

/// The MTU of `ifname` in the pinned namespace `ns_name`.
pub fn mtu_of(ns_name: &str, ifname: &str) -> u32 {
    let out = Command::new("ip")
        .args(["-n", ns_name, "-o", "link", "show", ifname])
        .output()
        .expect("run ip");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.split_whitespace()
        .skip_while(|w| *w != "mtu")
        .nth(1)
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("no MTU for {ifname} in {ns_name}: {text}"))
}

/// One IPv4 frame seen by a [`Capture`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub eth_src: [u8; 6],
    pub eth_dst: [u8; 6],
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub proto: u8,
}

/// A raw AF_PACKET socket (every frame of every interface) in a namespace;
/// frames queue in its buffer until [`Capture::ipv4`] drains them.
#[derive(Debug)]
pub struct Capture(Socket);

impl Capture {
    pub fn open(ns: &Path) -> Capture {
        const ETH_P_ALL: u16 = 0x0003;
        let s = in_ns(ns, || {
            Socket::new(
                Domain::PACKET,
                Type::RAW,
                Some(Protocol::from(i32::from(ETH_P_ALL.to_be()))),
            )
        })
        .expect("packet socket");
        s.set_nonblocking(true).expect("nonblocking");
        s.set_recv_buffer_size(4 << 20).expect("rcvbuf");
        Capture(s)
    }

    /// Every IPv4 frame seen since the last call.
    pub fn ipv4(&self) -> Vec<Seen> {
        let mut out = Vec::new();
        let mut buf = [0u8; 2048];
        while let Ok(n) = (&self.0).read(&mut buf) {
            let f = &buf[..n];
            if f.len() < 34 || f[12..14] != [0x08, 0x00] {
                continue;
            }
            let mut eth_dst = [0u8; 6];
            let mut eth_src = [0u8; 6];
            eth_dst.copy_from_slice(&f[0..6]);
            eth_src.copy_from_slice(&f[6..12]);
            out.push(Seen {
                eth_src,
                eth_dst,
                proto: f[23],
                src: Ipv4Addr::new(f[26], f[27], f[28], f[29]),
                dst: Ipv4Addr::new(f[30], f[31], f[32], f[33]),
            });
        }
        out
    }
}

/// A network of any driver (`--uplink`, `--vni` and `--gateway` as given).
pub fn l2_network(
    h: &Harness,
    name: &str,
    driver: &str,
    subnet: &str,
    gateway: Option<&str>,
    uplink: &str,
    vni: Option<u32>,
) {
    h.engine
        .create_network(NetworkSpec {
            name: name.into(),
            driver: driver.into(),
            subnets: vec![subnet.into()],
            gateway: gateway.map(Into::into),
            uplink: Some(uplink.into()),
            vni: vni.map(|v| v.to_string()),
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("create {driver} network {name}: {e}"));
}

/// A process endpoint `name` (own namespace) on `network` at `ip`, waited
/// up on both sides.
pub fn endpoint_at(h: &Harness, name: &str, network: &str, ip: &str) -> Ep {
    endpoint_publishing(h, name, network, ip, &[])
}

/// [`endpoint_at`] with published ports.
pub fn endpoint_publishing(
    h: &Harness,
    name: &str,
    network: &str,
    ip: &str,
    publish: &[&str],
) -> Ep {
    let (_, ns, ns_name) = h.endpoint_from(EndpointSpec {
        name: name.into(),
        network: network.into(),
        namespace: name.into(),
        ip: Some(ip.into()),
        publish: publish.iter().map(|p| (*p).to_owned()).collect(),
        ..Default::default()
    });
    Ep {
        name: name.into(),
        ip: ip.parse().expect("ipv4"),
        ns,
        ns_name,
    }
}

/// A vm endpoint (TAP switch port) `name` on `network`.
pub fn vm_endpoint(h: &Harness, name: &str, network: &str) -> bulkhead_model::Endpoint {
    h.engine
        .create_namespace(NamespaceSpec {
            name: name.into(),
            isolation: Some("vm".into()),
            ..NamespaceSpec::default()
        })
        .unwrap_or_else(|e| panic!("create vm namespace {name}: {e}"));
    h.engine
        .create_endpoint(EndpointSpec {
            name: name.into(),
            network: network.into(),
            namespace: name.into(),
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("create vm endpoint {name}: {e}"))
}

/// Joins the host namespaces of `a` and `b` by a veth `bhtu0` (the
/// underlay): `a` gets 10.99.0.1/24, `b` 10.99.0.2/24.
pub fn underlay(a: &Harness, b: &Harness) {
    ip(&[
        "-n",
        a.host_name(),
        "link",
        "add",
        "bhtu0",
        "type",
        "veth",
        "peer",
        "name",
        "bhtu0",
        "netns",
        b.host_name(),
    ]);
    for (h, addr) in [(a, "10.99.0.1/24"), (b, "10.99.0.2/24")] {
        ip(&["-n", h.host_name(), "addr", "add", addr, "dev", "bhtu0"]);
        ip(&["-n", h.host_name(), "link", "set", "bhtu0", "up"]);
    }
    wait_up(a.host_name(), "bhtu0");
    wait_up(b.host_name(), "bhtu0");
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
    use std::io::Write;
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
