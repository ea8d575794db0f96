//! Helpers of the port and host-reach attacks: listeners in either family,
//! "which listener got the connection", `nft` on the test's host namespace
//! (to weaken bulkhead's table on purpose), IPv6 endpoints, concurrency.

use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bulkhead_model::EndpointSpec;

pub use crate::common::sysctl;
use crate::common::{in_ns, link_local, Harness, PROBE};

/// A non-blocking TCP listener on the unspecified address of `family_of`'s
/// family (`[::]` listens on IPv6 only) at `port`, inside `ns`.
pub fn listen(ns: &Path, port: u16, family_of: IpAddr) -> TcpListener {
    let any: IpAddr = match family_of {
        IpAddr::V4(_) => std::net::Ipv4Addr::UNSPECIFIED.into(),
        IpAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    // A bind right after the previous probe's listener on the same port
    // closed can still be refused as in use for a moment: retry briefly.
    let until = Instant::now() + Duration::from_secs(1);
    let bind = || {
        in_ns(ns, || {
            let s = socket2::Socket::new(
                socket2::Domain::for_address(SocketAddr::new(any, port)),
                socket2::Type::STREAM,
                None,
            )?;
            if any.is_ipv6() {
                s.set_only_v6(true)?;
            }
            s.set_reuse_address(true)?;
            s.bind(&SocketAddr::new(any, port).into())?;
            s.listen(16)?;
            io::Result::Ok(TcpListener::from(s))
        })
    };
    let l = loop {
        match bind() {
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && Instant::now() < until => {
                std::thread::sleep(Duration::from_millis(10));
            }
            r => {
                break r.unwrap_or_else(|e| panic!("listen {any}:{port} in {}: {e}", ns.display()))
            }
        }
    };
    l.set_nonblocking(true).expect("nonblocking");
    l
}

/// Listens at each of `servers` (namespace, port), connects from `client`
/// to `to`, and returns the index of the server that accepted it (`None`:
/// no connection within [`PROBE`]).
pub fn lands(client: &Path, to: SocketAddr, servers: &[(&Path, u16)]) -> Option<usize> {
    let ls: Vec<TcpListener> = servers
        .iter()
        .map(|(ns, port)| listen(ns, *port, to.ip()))
        .collect();
    let _c = in_ns(client, || TcpStream::connect_timeout(&to, PROBE)).ok()?;
    let until = Instant::now() + PROBE;
    while Instant::now() < until {
        if let Some(i) = ls.iter().position(|l| l.accept().is_ok()) {
            return Some(i);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

/// Whether a TCP connection from `client` to `to` reaches a listener on
/// `to`'s port in `server`.
pub fn reaches(client: &Path, server: &Path, to: SocketAddr) -> bool {
    lands(client, to, &[(server, to.port())]) == Some(0)
}

/// Runs each probe on its own thread (blocked probes wait [`PROBE`] each;
/// together they wait it once) and returns their results in order.
pub fn all<'a, T: Send>(probes: Vec<Box<dyn FnOnce() -> T + Send + 'a>>) -> Vec<T> {
    std::thread::scope(|s| {
        let running: Vec<_> = probes.into_iter().map(|p| s.spawn(p)).collect();
        running
            .into_iter()
            .map(|j| j.join().expect("probe thread"))
            .collect()
    })
}

/// An endpoint of any family, made through the engine in its own namespace.
#[derive(Debug, Clone)]
pub struct Ep6 {
    pub ip: IpAddr,
    pub ns: PathBuf,
    pub ns_name: String,
    pub ifname: String,
    pub port: String,
}

pub fn endpoint_any(h: &Harness, name: &str, network: &str) -> Ep6 {
    let (ep, ns, ns_name) = h.endpoint_from(EndpointSpec {
        name: name.into(),
        network: network.into(),
        namespace: name.into(),
        ..Default::default()
    });
    let ep = Ep6 {
        ip: ep.ip_address.addr,
        ns,
        ns_name,
        ifname: ep.ifname.to_string(),
        port: ep.switch_port.to_string(),
    };
    if let Some(IpAddr::V6(gw)) = h.engine.network(network).ok().and_then(|n| n.gateway) {
        gateway_neighbour(h, &ep, gw);
        // Neighbour discovery between the host and the endpoint needs
        // usable (post-DAD) link-local addresses on both sides.
        let wait = Duration::from_secs(5);
        assert!(
            link_local(&ep.ns_name, &ep.ifname, wait).is_some(),
            "IPv6 in {name}"
        );
        assert!(
            link_local(h.host_name(), &ep.port, wait).is_some(),
            "IPv6 on {}",
            ep.port
        );
    }
    ep
}

/// IPv6 endpoints of a nat network resolve their gateway only through a
/// neighbour entry of their own (the host does not answer solicitations
/// for the gateway on the port: `docs/drivers.md`, gaps); the tenant is
/// root in its namespace and adds it, pointing at its port's MAC.
fn gateway_neighbour(h: &Harness, ep: &Ep6, gw: Ipv6Addr) {
    let out = Command::new("ip")
        .args(["-n", h.host_name(), "-o", "link", "show", &ep.port])
        .output()
        .expect("run ip");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mac = text
        .split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .unwrap_or_else(|| panic!("no MAC for {}: {text}", ep.port));
    let gw = gw.to_string();
    crate::common::ip(&[
        "-n",
        &ep.ns_name,
        "-6",
        "neigh",
        "replace",
        &gw,
        "lladdr",
        mac,
        "dev",
        &ep.ifname,
        "nud",
        "permanent",
    ]);
}
