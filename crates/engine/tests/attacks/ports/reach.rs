//! Attack: a nat endpoint reaches the host's own services at an address
//! other than its network's gateway (spec §9).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV6};
use std::time::Duration;

use crate::common::{ifindex, ip, link_local, udp_arrives, Harness};

use super::probe::{all, lands, reaches, sysctl};
use crate::common::{delete_rule, nft};

/// The host listens on every address (`0.0.0.0`, `[::]`) on one port per
/// probe. A, on n1 (10.64.3.0/24), connects to n1's gateway, to the uplink
/// address, to n2's gateway (10.64.4.1) and to the host side of its switch
/// port's link-local address (`fe80::…%eth0`, when IPv6 is up), and to the
/// uplink address's published port 8080 (P's). Expects the gateway and the
/// published port reached, every other host address not; with bulkhead's
/// input drop rule deleted (the weakened setup) every one is reached.
#[test]
fn nat_endpoint_reaches_the_host_only_at_its_gateway() {
    let Some(h) = Harness::new("reach") else {
        return;
    };
    h.nat_network("n1", "10.64.3.0/24", None);
    h.nat_network("n2", "10.64.4.0/24", None);
    let a = h.endpoint("a", "n1", &[], None);
    let p = h.endpoint("p", "n1", &["8080:80"], None);
    let rec = h.engine.endpoint("a").expect("a");
    let v4 = |addr: [u8; 4], port| SocketAddr::from((Ipv4Addr::from(addr), port));
    let mut others = vec![
        ("the uplink address", v4([192, 0, 2, 1], 7001)),
        ("n2's gateway", v4([10, 64, 4, 1], 7002)),
    ];
    let wait = Duration::from_secs(5);
    let host_ll = link_local(h.host_name(), rec.switch_port.as_str(), wait);
    if link_local(&a.ns_name, rec.ifname.as_str(), wait).is_some() {
        if let Some(ll) = host_ll {
            let scope = ifindex(&a.ns_name, rec.ifname.as_str());
            others.push((
                "its port's link-local address",
                SocketAddr::V6(SocketAddrV6::new(ll, 7003, 0, scope)),
            ));
        }
    }
    assert!(others.len() == 3, "IPv6 link-local addresses expected");
    let gateway = v4([10, 64, 3, 1], 7000);
    let published = v4([192, 0, 2, 1], 8080);
    let host = h.host();
    let probe_all = |targets: &[(&'static str, SocketAddr)]| {
        all(targets
            .iter()
            .map(|&(_, to)| {
                let ns = a.ns.clone();
                Box::new(move || reaches(&ns, host, to)) as Box<dyn FnOnce() -> bool + Send>
            })
            .collect())
    };

    assert!(
        reaches(&a.ns, host, gateway),
        "A -> n1's gateway must reach the host"
    );
    assert_eq!(
        lands(&a.ns, published, &[(p.ns.as_path(), 80)]),
        Some(0),
        "A -> uplink:8080 (published, DNAT before input) must reach P:80"
    );
    for ((what, to), got) in others.iter().zip(probe_all(&others)) {
        assert!(!got, "A -> {what} ({to}) must not reach the host");
    }

    delete_rule(
        h.host_name(),
        "bulkhead_net",
        "input",
        "reach the host only at their gateway",
    );
    // The port guard (`inet bulkhead` prerouting) also refuses anything
    // but neighbour discovery from a link-local source: remove it too, so
    // that the weakened setup is the host without either layer.
    nft(
        h.host_name(),
        &["flush", "chain", "inet", "bulkhead", "prerouting"],
    );
    for ((what, to), got) in others.iter().zip(probe_all(&others)) {
        assert!(got, "weakened: A -> {what} ({to}) reaches the host");
    }
}

/// The host's loopback services (a DNS stub on 127.0.0.53, say): on a host
/// with `route_localnet` on (kube-proxy turns it on), the kernel accepts
/// packets to 127/8 from other interfaces. A, root in its namespace, takes
/// 127/8 out of its own local table and routes it to its gateway, then
/// sends UDP to 127.0.0.53:7005, where the host listens on `0.0.0.0`.
/// Expects nothing to arrive; with bulkhead's input drop rule deleted, the
/// datagram arrives.
#[test]
fn nat_endpoint_cannot_reach_host_loopback_services() {
    let Some(h) = Harness::new("reachlo") else {
        return;
    };
    h.nat_network("n1", "10.64.8.0/24", None);
    let a = h.endpoint("a", "n1", &[], None);
    sysctl(h.host_name(), "net.ipv4.conf.all.route_localnet=1");
    let ns = a.ns_name.as_str();
    ip(&[
        "-n",
        ns,
        "route",
        "del",
        "local",
        "127.0.0.0/8",
        "dev",
        "lo",
        "table",
        "local",
    ]);
    ip(&[
        "-n",
        ns,
        "route",
        "add",
        "127.0.0.0/8",
        "via",
        "10.64.8.1",
        "dev",
        "eth0",
    ]);
    let to = SocketAddr::from((Ipv4Addr::new(127, 0, 0, 53), 7005));
    assert!(
        !udp_arrives(&a.ns, None, h.host(), to),
        "A -> 127.0.0.53 must not reach the host"
    );
    delete_rule(
        h.host_name(),
        "bulkhead_net",
        "input",
        "reach the host only at their gateway",
    );
    assert!(
        udp_arrives(&a.ns, None, h.host(), to),
        "weakened: A -> 127.0.0.53 reaches the host's loopback service"
    );
}
