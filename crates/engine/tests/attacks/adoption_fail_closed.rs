//! Fail closed: a container that blasts spoofed packets while its port is
//! being made gets none of them past the switch, however slow the table
//! commit. The engine runs on a kernel that delays every nf_tables commit
//! (the window a loaded host or a large ruleset opens); the weakened run
//! brings ports up as soon as they are made (the old order), and the
//! spoofed packets reach the outside during that window. On nat (routed
//! port, switch table), transparent (bridge port, bridge table) and
//! l2bridge (routed port published on the uplink), concurrently.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bulkhead_dataplane::host::HostKernel;
use bulkhead_dataplane::kernel::{
    Flow, Kernel, NetnsHandle, NetnsId, PortSpec, Protected, RemoteEndpoint, Result, SwitchSpec,
    TableChange,
};
use bulkhead_dataplane::netns;
use bulkhead_engine::{Config, Engine};
use bulkhead_model::{EndpointSpec, NetworkSpec};
use bulkhead_store::MemoryStore;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::{adopt_in, runtime_netns};
use crate::common::{Harness, Lan, LAN_PEER, LAN_SUBNET, OUTSIDE};

/// How long each nf_tables commit is held back.
const SLOW: Duration = Duration::from_millis(1500);

/// The real kernel, with slow commits; `eager` brings every port up as soon
/// as it is made (the weakened, pre-fail-closed order).
#[derive(Debug)]
struct SlowKernel {
    inner: Arc<HostKernel>,
    eager: bool,
}

impl Kernel for SlowKernel {
    fn prepare_host(&self) -> Result<()> {
        self.inner.prepare_host()
    }
    fn create_netns(&self, name: &str) -> Result<PathBuf> {
        self.inner.create_netns(name)
    }
    fn prepare_netns(&self, netns: &Path) -> Result<()> {
        self.inner.prepare_netns(netns)
    }
    fn delete_netns(&self, name: &str) -> Result<()> {
        self.inner.delete_netns(name)
    }
    fn netns_names(&self, prefix: &str) -> Result<Vec<String>> {
        self.inner.netns_names(prefix)
    }
    fn create_network_device(
        &self,
        name: &str,
        gateway: Option<(std::net::IpAddr, u8)>,
    ) -> Result<()> {
        self.inner.create_network_device(name, gateway)
    }
    fn create_switch(&self, spec: &SwitchSpec) -> Result<()> {
        self.inner.create_switch(spec)
    }
    fn delete_switch(&self, spec: &SwitchSpec) -> Result<()> {
        self.inner.delete_switch(spec)
    }
    fn create_port(&self, spec: &PortSpec) -> Result<()> {
        self.inner.create_port(spec)?;
        if self.eager {
            self.inner.enable_port(spec)?;
        }
        Ok(())
    }
    fn enable_port(&self, spec: &PortSpec) -> Result<()> {
        self.inner.enable_port(spec)
    }
    fn netns_id(&self, path: &Path) -> Result<NetnsId> {
        self.inner.netns_id(path)
    }
    fn is_netns(&self, path: &Path) -> bool {
        self.inner.is_netns(path)
    }
    fn netns_path(&self, name: &str) -> PathBuf {
        self.inner.netns_path(name)
    }
    fn protected_netns(&self) -> Vec<(NetnsId, Protected)> {
        self.inner.protected_netns()
    }
    fn open_netns(&self, path: &Path, expected: NetnsId) -> Result<NetnsHandle> {
        self.inner.open_netns(path, expected)
    }
    fn detach_port(&self, spec: &PortSpec) -> Result<()> {
        self.inner.detach_port(spec)
    }
    fn set_remotes(&self, v: &str, a: &[RemoteEndpoint], r: &[RemoteEndpoint]) -> Result<()> {
        self.inner.set_remotes(v, a, r)
    }
    fn delete_link(&self, name: &str) -> Result<()> {
        self.inner.delete_link(name)
    }
    fn retire_port(&self, spec: &PortSpec) -> Result<()> {
        self.inner.retire_port(spec)
    }
    fn remove_port_later(&self, name: &str) {
        self.inner.remove_port_later(name)
    }
    fn settle(&self) {
        self.inner.settle()
    }
    fn link_names(&self, prefix: &str) -> Result<Vec<String>> {
        self.inner.link_names(prefix)
    }
    fn host_addresses(&self) -> Result<Vec<std::net::IpAddr>> {
        self.inner.host_addresses()
    }
    fn local_addresses(&self) -> Result<Vec<(std::net::IpAddr, u8)>> {
        self.inner.local_addresses()
    }
    fn netns_pinned(&self, name: &str) -> Result<bool> {
        self.inner.netns_pinned(name)
    }
    fn counters(
        &self,
        netns: Option<&Path>,
        table: &bulkhead_policy::ir::Table,
        sets: &[String],
    ) -> Result<bulkhead_dataplane::counters::TableCounters> {
        self.inner.counters(netns, table, sets)
    }
    fn apply(&self, netns: Option<&Path>, changes: &[TableChange<'_>]) -> Result<()> {
        std::thread::sleep(SLOW);
        self.inner.apply(netns, changes)
    }
    fn flows(&self, netns: Option<&Path>, addr: std::net::IpAddr) -> Result<Vec<Flow>> {
        self.inner.flows(netns, addr)
    }
    fn delete_flows(&self, netns: Option<&Path>, flows: &[Flow]) -> Result<usize> {
        self.inner.delete_flows(netns, flows)
    }
    fn forget_host_flows(&self, addr: std::net::IpAddr) {
        self.inner.forget_host_flows(addr)
    }
}

/// An IPv4/UDP packet from `src` to `dst:port` carrying `payload`
/// (checksums: the kernel fills the IP one; UDP's 0 means none).
fn udp_packet(src: Ipv4Addr, dst: Ipv4Addr, port: u16, payload: &[u8]) -> Vec<u8> {
    let total = (20 + 8 + payload.len()) as u16;
    let mut p = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0];
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&40000u16.to_be_bytes());
    p.extend_from_slice(&port.to_be_bytes());
    p.extend_from_slice(&(8 + payload.len() as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    p
}

/// One driver's setup: the network, the endpoint addresses of the weakened
/// and the real run, the spoofed sources, and where packets are counted.
struct Case {
    driver: &'static str,
    subnet: &'static str,
    gateway: Option<&'static str>,
    uplink: Option<&'static str>,
    ips: [&'static str; 2],
    spoofed: [Ipv4Addr; 2],
    to: Ipv4Addr,
}

const CASES: [Case; 3] = [
    Case {
        driver: "nat",
        subnet: "10.62.9.0/24",
        gateway: None,
        uplink: None,
        ips: ["10.62.9.10", "10.62.9.11"],
        spoofed: [Ipv4Addr::new(10, 62, 9, 200), Ipv4Addr::new(10, 62, 9, 201)],
        to: OUTSIDE,
    },
    Case {
        driver: "transparent",
        subnet: LAN_SUBNET,
        gateway: Some("198.51.100.254"),
        uplink: Some("bhtfc0"),
        ips: ["198.51.100.10", "198.51.100.11"],
        spoofed: [
            Ipv4Addr::new(198, 51, 100, 77),
            Ipv4Addr::new(198, 51, 100, 78),
        ],
        to: LAN_PEER,
    },
    Case {
        driver: "l2bridge",
        subnet: LAN_SUBNET,
        gateway: Some("198.51.100.254"),
        uplink: Some("bhtfc0"),
        ips: ["198.51.100.12", "198.51.100.13"],
        spoofed: [
            Ipv4Addr::new(198, 51, 100, 79),
            Ipv4Addr::new(198, 51, 100, 80),
        ],
        to: LAN_PEER,
    },
];

/// Creates an endpoint (at `ip`) in a runtime namespace while a thread
/// inside it sends UDP from `spoofed` to `to` every 200 µs, counted in
/// `to_ns` (from before the port exists until `SLOW` after the create
/// returns). How many arrived.
fn spoofed_arrivals(
    engine: &Engine,
    tag: &str,
    ip: &str,
    spoofed: Ipv4Addr,
    to_ns: &Path,
    to: Ipv4Addr,
) -> usize {
    let pod = runtime_netns(tag);
    adopt_in(engine, tag, pod.path(), &format!("ctr-{tag}")).expect("adopt");
    let port = 20000 + (crate::common::unique_u32() % 20000) as u16;
    let rx = netns::run_in(Some(to_ns), || UdpSocket::bind(("0.0.0.0", port)))
        .expect("enter receiver")
        .expect("bind");
    rx.set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let tx = netns::run_in(Some(pod.path()), || {
        Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(255))) /* IPPROTO_RAW: header included */
    })
    .expect("enter pod")
    .expect("raw socket");
    let marker = format!("bulkhead-fail-closed-{tag}");
    let packet = udp_packet(spoofed, to, port, marker.as_bytes());
    let (stop, arrived) = (AtomicBool::new(false), AtomicUsize::new(0));
    std::thread::scope(|s| {
        s.spawn(|| {
            let dst = SockAddr::from(SocketAddrV4::new(to, 0));
            while !stop.load(Ordering::Relaxed) {
                let _ = tx.send_to(&packet, &dst); // unroutable until configured
                std::thread::sleep(Duration::from_micros(200));
            }
        });
        s.spawn(|| {
            let mut buf = [0u8; 256];
            while !stop.load(Ordering::Relaxed) {
                if let Ok((n, _)) = rx.recv_from(&mut buf) {
                    if buf[..n] == *marker.as_bytes() {
                        arrived.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
        std::thread::sleep(Duration::from_millis(50));
        let made = engine.create_endpoint(EndpointSpec {
            name: tag.into(),
            network: "n1".into(),
            namespace: tag.into(),
            ip: Some(ip.into()),
            ..Default::default()
        });
        std::thread::sleep(SLOW);
        stop.store(true, Ordering::Relaxed);
        made.expect("endpoint");
    });
    arrived.load(Ordering::Relaxed)
}

/// One driver: the weakened run (ports up at once) must leak, the real one
/// must not. Returns the two counts.
fn run_case(c: &Case) -> Option<(usize, usize)> {
    let h = Harness::new(&format!("fc{}", &c.driver[..3]))?;
    let lan = c
        .uplink
        .map(|u| Lan::attach(&h, &format!("fc{}", &c.driver[..3]), u, false));
    // Strict reverse-path filtering (inherited from the machine) would drop
    // the spoofed source by itself: off in this throwaway host namespace,
    // so only bulkhead stands in the way.
    for conf in ["all", "default"] {
        crate::common::ip(&[
            "netns",
            "exec",
            h.host_name(),
            "sysctl",
            "-qw",
            &format!("net.ipv4.conf.{conf}.rp_filter=0"),
        ]);
    }
    let to_ns = lan.as_ref().map_or_else(
        || h.outside().to_path_buf(),
        |l| l.peer.path().to_path_buf(),
    );
    let mut counts = [0; 2];
    for (i, eager) in [true, false].into_iter().enumerate() {
        let kernel = Arc::new(SlowKernel {
            inner: h.kernel.clone(),
            eager,
        });
        let (engine, _) = Engine::open(
            kernel,
            Arc::new(MemoryStore::new()),
            Config {
                netns_prefix: format!("{}s{i}-", h.prefix),
            },
        )
        .expect("open engine");
        engine
            .create_network(NetworkSpec {
                name: "n1".into(),
                driver: c.driver.into(),
                subnets: vec![c.subnet.into()],
                gateway: c.gateway.map(Into::into),
                uplink: c.uplink.map(Into::into),
                ..Default::default()
            })
            .expect("network");
        let tag = format!("fc{}{i}", &c.driver[..3]);
        counts[i] = spoofed_arrivals(&engine, &tag, c.ips[i], c.spoofed[i], &to_ns, c.to);
        // Hand the uplink back for the next run.
        engine.delete_endpoint(&tag).expect("delete endpoint");
        engine.delete_namespace(&tag).expect("delete namespace");
        engine.delete_network("n1").expect("delete network");
    }
    Some((counts[0], counts[1]))
}

#[test]
fn a_port_being_created_passes_nothing_unbound() {
    let results: Vec<_> = std::thread::scope(|s| {
        let runs: Vec<_> = CASES.iter().map(|c| s.spawn(move || run_case(c))).collect();
        runs.into_iter().map(|r| r.join().expect("case")).collect()
    });
    for (c, r) in CASES.iter().zip(results) {
        let Some((weak, closed)) = r else { return };
        eprintln!(
            "{}: weakened {weak} spoofed packets passed, bulkhead {closed}",
            c.driver
        );
        assert!(
            weak > 0,
            "{}: the weakened port (up before its tables) must pass spoofed packets",
            c.driver
        );
        assert_eq!(
            closed, 0,
            "{}: spoofed packets passed a port being created",
            c.driver
        );
    }
}
