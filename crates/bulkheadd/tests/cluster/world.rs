//! What every cluster case shares: a three-host cluster on a fresh etcd
//! (short node TTL, so `lost` shows within seconds), an overlay network made
//! on one node, endpoints with their namespace paths, all-pairs probes run
//! concurrently, and waits with a deadline.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bulkhead_testkit::cli::endpoint;
use bulkhead_testkit::cluster::{Cluster, Host, UNDERLAY_DEV};
use bulkhead_testkit::probe::{arrives, arrives_soon, tcp_echo, udp_echo, ProbeKind};
use serde_json::Value;

/// The node lease TTL of the cases: `lost` within about this long.
pub const TTL: &str = "2s";

/// Three hosts (`node-a`, `node-b`, `node-c`) on a fresh etcd (TLS with
/// client certificates when `tls`); `None` when not root.
#[track_caller]
pub fn cluster(tls: bool) -> Option<Cluster> {
    Cluster::start(3, tls, &["--node-ttl", TTL])
}

/// `network create NAME --driver overlay` on `h`, over the underlay.
#[track_caller]
pub fn overlay(h: &Host, name: &str, subnet: &str, vni: u32) {
    h.ok(&[
        "network",
        "create",
        name,
        "--driver",
        "overlay",
        "--subnet",
        subnet,
        "--uplink",
        UNDERLAY_DEV,
        "--vni",
        &vni.to_string(),
    ]);
}

/// Polls `f` every 100 ms until it is `Some`, for at most `secs` seconds;
/// panics naming `what` otherwise.
#[track_caller]
pub fn wait_for<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < until,
            "timed out ({secs} s) waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether `f` holds within `secs` seconds (polled every 100 ms).
pub fn wait_until(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until every host lists network `name`.
#[track_caller]
pub fn network_everywhere(c: &Cluster, name: &str) {
    for h in &c.hosts {
        wait_for(&format!("{name} on {}", h.node), 10, || {
            h.names("network").iter().any(|n| n == name).then_some(())
        });
    }
}

/// An endpoint of a test, with what probes need.
#[derive(Debug, Clone)]
pub struct Ep {
    pub name: String,
    pub node: String,
    pub ip: Ipv4Addr,
    pub mac: String,
    /// Its namespace's pin.
    pub ns: PathBuf,
}

impl Ep {
    pub fn addr(&self, port: u16) -> SocketAddr {
        SocketAddr::new(self.ip.into(), port)
    }
}

/// Reads an endpoint's address and MAC from its JSON.
pub fn ip_of(v: &Value) -> Ipv4Addr {
    let ip = v["ip_address"].as_str().expect("ip_address");
    ip.split('/')
        .next()
        .unwrap_or(ip)
        .parse()
        .expect("an IPv4 address")
}

/// A namespace and endpoint `name` on network `net` of host `h`.
#[track_caller]
pub fn ep(h: &Host, net: &str, name: &str) -> Ep {
    let v = endpoint(h, net, name, name);
    Ep {
        name: name.to_owned(),
        node: h.node.clone(),
        ip: ip_of(&v),
        mac: v["mac_address"].as_str().unwrap_or_default().to_owned(),
        ns: PathBuf::from(format!("/run/netns/{}{name}", h.prefix)),
    }
}

/// Every ordered pair of `eps` with a TCP request/response, a UDP
/// request/response and an ICMP echo request, all pairs at once (threads);
/// returns the failures as `"a -> b tcp"` lines. `soon`: retry each for up
/// to 5 s (right after a change, remote entries may still be on their way).
pub fn mesh(eps: &[Ep], port: u16, soon: bool) -> Vec<String> {
    let mut failures = Vec::new();
    std::thread::scope(|s| {
        let mut jobs = Vec::new();
        for (i, a) in eps.iter().enumerate() {
            for (j, b) in eps.iter().enumerate() {
                if i == j {
                    continue;
                }
                // A port per pair: concurrent listeners never collide.
                let p = port + u16::try_from(i * eps.len() + j).expect("few endpoints");
                jobs.push(s.spawn(move || {
                    let retry = |f: &dyn Fn() -> bool| {
                        let until = Instant::now() + Duration::from_secs(if soon { 5 } else { 0 });
                        loop {
                            if f() {
                                return true;
                            }
                            if Instant::now() >= until {
                                return false;
                            }
                            std::thread::sleep(Duration::from_millis(100));
                        }
                    };
                    let mut bad = Vec::new();
                    if !retry(&|| tcp_echo(&a.ns, &b.ns, p, b.addr(p))) {
                        bad.push(format!("{} -> {} tcp", a.name, b.name));
                    }
                    if !retry(&|| udp_echo(&a.ns, &b.ns, p, b.addr(p))) {
                        bad.push(format!("{} -> {} udp", a.name, b.name));
                    }
                    let icmp = if soon {
                        arrives_soon(&a.ns, &b.ns, b.ip, ProbeKind::Icmp)
                    } else {
                        arrives(&a.ns, &b.ns, b.ip, ProbeKind::Icmp).unwrap_or(false)
                    };
                    if !icmp {
                        bad.push(format!("{} -> {} icmp", a.name, b.name));
                    }
                    bad
                }));
            }
        }
        for j in jobs {
            failures.extend(j.join().expect("probe thread"));
        }
    });
    failures.sort();
    failures
}

/// `node ls` on `h` as JSON objects.
pub fn nodes(h: &Host) -> Vec<Value> {
    h.json(&["node", "ls"]).as_array().expect("array").clone()
}

/// The state `h` reports for node `name` (`None`: not listed).
pub fn state_of(h: &Host, name: &str) -> Option<String> {
    nodes(h)
        .iter()
        .find(|n| n["name"] == name)
        .and_then(|n| n["state"].as_str().map(str::to_owned))
}

/// Waits until `h` reports node `name` in `state`.
#[track_caller]
pub fn wait_state(h: &Host, name: &str, state: &str, secs: u64) {
    wait_for(&format!("{name} {state} on {}", h.node), secs, || {
        (state_of(h, name).as_deref() == Some(state)).then_some(())
    });
}

/// `endpoint ls --all-nodes` on `h`: `(name, node, ip)` per endpoint,
/// sorted (`node` is `h`'s own for local endpoints).
/// What `endpoint ls --all-nodes` should show for `eps`: (name, node,
/// address), sorted — the form [`all_endpoints`] returns.
pub fn listing(eps: &[Ep]) -> Vec<(String, String, Ipv4Addr)> {
    let mut v: Vec<_> = eps
        .iter()
        .map(|e| (e.name.clone(), e.node.clone(), e.ip))
        .collect();
    v.sort();
    v
}

pub fn all_endpoints(h: &Host) -> Vec<(String, String, Ipv4Addr)> {
    let mut v: Vec<_> = h
        .json(&["endpoint", "ls", "--all-nodes"])
        .as_array()
        .expect("array")
        .iter()
        .map(|e| {
            let node = e["node"].as_str().unwrap_or(&h.node).to_owned();
            (
                e["name"].as_str().unwrap_or_default().to_owned(),
                node,
                ip_of(e),
            )
        })
        .collect();
    v.sort();
    v
}

/// In `h`'s host namespace: the neighbour entries of `ip`, and the VXLAN
/// FDB entries (`… dst <vtep>`) of `mac` — what the watch programs for a
/// remote endpoint. (The bridge's own learned entry for a MAC seen through
/// the VXLAN port is not one: without the VXLAN entry it leads nowhere.)
pub fn remote_entries(h: &Host, ip: Ipv4Addr, mac: &str) -> (Vec<String>, Vec<String>) {
    let ip_s = ip.to_string();
    let neigh = bulkhead_testkit::cmd::ip(&["-n", h.ns_name(), "neigh", "show", &ip_s]);
    let fdb = bulkhead_testkit::cmd::checked(
        std::process::Command::new("bridge").args(["-n", h.ns_name(), "fdb", "show"]),
        "bridge fdb show",
    );
    let neigh = neigh
        .lines()
        .filter(|l| l.split_whitespace().next() == Some(ip_s.as_str()))
        .map(str::to_owned)
        .collect();
    let fdb = fdb
        .lines()
        .filter(|l| !mac.is_empty() && l.starts_with(mac) && l.contains(" dst "))
        .map(str::to_owned)
        .collect();
    (neigh, fdb)
}
