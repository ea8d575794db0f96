//! Fail closed: a container that blasts spoofed packets while its port is
//! being made gets none of them past the switch, however slow the table
//! commit. The engine runs on a kernel that delays every nf_tables commit
//! (the window a loaded host or a large ruleset opens); the weakened run
//! brings ports up as soon as they are made (the old order), and the
//! spoofed packets reach the outside during that window.

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
use bulkhead_model::NetworkSpec;
use bulkhead_store::MemoryStore;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::{adopt_in, endpoint, runtime_netns};
use crate::common::{Harness, OUTSIDE};

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

/// Creates an endpoint in a runtime namespace while a thread inside it
/// sends spoofed UDP to the outside peer every 200 µs (from before the
/// port exists until `SLOW` after the create returns). How many arrived.
fn spoofed_arrivals(h: &Harness, engine: &Engine, tag: &str, spoofed: Ipv4Addr) -> usize {
    let pod = runtime_netns(tag);
    adopt_in(engine, tag, pod.path(), &format!("ctr-{tag}")).expect("adopt");
    let port = 20000 + (crate::common::unique_u32() % 20000) as u16;
    let rx = netns::run_in(Some(h.outside()), || UdpSocket::bind(("0.0.0.0", port)))
        .expect("enter outside")
        .expect("bind");
    rx.set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let tx = netns::run_in(Some(pod.path()), || {
        Socket::new(
            Domain::IPV4,
            Type::RAW,
            Some(Protocol::from(255)), /* IPPROTO_RAW: header included */
        )
    })
    .expect("enter pod")
    .expect("raw socket");
    let marker = format!("bulkhead-fail-closed-{tag}");
    let packet = udp_packet(spoofed, OUTSIDE, port, marker.as_bytes());
    let (stop, arrived) = (AtomicBool::new(false), AtomicUsize::new(0));
    std::thread::scope(|s| {
        s.spawn(|| {
            let to = SockAddr::from(SocketAddrV4::new(OUTSIDE, 0));
            while !stop.load(Ordering::Relaxed) {
                let _ = tx.send_to(&packet, &to); // unroutable until configured
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
        let made = endpoint(engine, tag, "n1", tag);
        std::thread::sleep(SLOW);
        stop.store(true, Ordering::Relaxed);
        made.expect("endpoint");
    });
    arrived.load(Ordering::Relaxed)
}

#[test]
fn a_port_being_created_passes_nothing_unbound() {
    let Some(h) = Harness::new("adclosed") else {
        return;
    };
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
    let open = |eager, subnet: &str| {
        let kernel = Arc::new(SlowKernel {
            inner: h.kernel.clone(),
            eager,
        });
        let (engine, _) = Engine::open(
            kernel,
            Arc::new(MemoryStore::new()),
            Config {
                netns_prefix: format!("{}s-", h.prefix),
            },
        )
        .expect("open engine");
        engine
            .create_network(NetworkSpec {
                name: "n1".into(),
                driver: "nat".into(),
                subnets: vec![subnet.into()],
                ..Default::default()
            })
            .expect("network");
        engine
    };
    // Weakened: the port is up while its tables are still being committed.
    {
        let engine = open(true, "10.62.9.0/24");
        let n = spoofed_arrivals(&h, &engine, "weak", Ipv4Addr::new(10, 62, 9, 200));
        assert!(n > 0, "an unbound port must pass spoofed packets");
        engine.delete_endpoint("weak").expect("delete");
    }
    // bulkhead: down until the commit; then anti-spoofing drops them all.
    let engine = open(false, "10.62.10.0/24");
    let n = spoofed_arrivals(&h, &engine, "closed", Ipv4Addr::new(10, 62, 10, 200));
    assert_eq!(n, 0, "spoofed packets passed a port being created");
}
