//! Support of `e2e_trace.rs`: the world (networks, endpoints, nodes), the
//! seeded generator and the real probes.
#![allow(dead_code)]

pub mod gen;
pub mod probes;

use std::net::{IpAddr, Ipv4Addr};

use bulkhead_model::EndpointSpec;

use gen::{Mapping, Net, Node, NodeKind, World};

use bulkhead_dataplane::netns::NetnsGuard;
use bulkhead_dataplane::testing;

use crate::common::*;

/// An endpoint `name` in its own namespace: `ip` (or IPAM's), published
/// ports, ACL mode. Returns its address and namespace pin.
pub fn endpoint(
    h: &Harness,
    name: &str,
    network: &str,
    ip: Option<&str>,
    publish: &[&str],
    mode: &str,
) -> (Ipv4Addr, std::path::PathBuf) {
    let (ep, ns, _) = h.endpoint_from(EndpointSpec {
        name: name.into(),
        network: network.into(),
        namespace: name.into(),
        ip: ip.map(Into::into),
        publish: publish.iter().map(|s| (*s).to_owned()).collect(),
        acl_mode: Some(mode.into()),
        ..Default::default()
    });
    let IpAddr::V4(addr) = ep.ip_address.addr else {
        panic!("{name}: not IPv4")
    };
    (addr, ns)
}

/// An endpoint of the world: name, network index, address, published
/// ports, ACL mode.
type EpRow<'a> = (&'a str, usize, Option<&'a str>, &'a [&'a str], &'a str);

/// A second LAN for the l2tunnel network: 203.0.113.0/24, router .254,
/// peer .2, the host's uplink `bhtlan1` .1; its switch port to the host
/// hairpins (l2tunnel needs the fabric to send frames back).
pub struct TunnelLan {
    pub lan: NetnsGuard,
    pub peer: NetnsGuard,
}

pub const TUNNEL_HOST: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
pub const TUNNEL_PEER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 2);

impl TunnelLan {
    pub fn attach(h: &Harness) -> TunnelLan {
        let lan = NetnsGuard::create(&testing::unique_name("trace-lan2")).expect("lan2 netns");
        let peer = NetnsGuard::create(&testing::unique_name("trace-peer2")).expect("peer2 netns");
        let (hn, l, p) = (h.host_name(), lan.name(), peer.name());
        for args in [
            vec!["-n", l, "link", "set", "lo", "up"],
            vec!["-n", p, "link", "set", "lo", "up"],
            vec!["-n", l, "link", "add", "lan0", "type", "bridge"],
            vec!["-n", l, "addr", "add", "203.0.113.254/24", "dev", "lan0"],
            vec!["-n", l, "link", "set", "lan0", "up"],
            vec![
                "-n", hn, "link", "add", "bhtlan1", "type", "veth", "peer", "name", "lanh",
                "netns", l,
            ],
            vec!["-n", hn, "addr", "add", "203.0.113.1/24", "dev", "bhtlan1"],
            vec!["-n", hn, "link", "set", "bhtlan1", "up"],
            vec!["-n", l, "link", "set", "lanh", "master", "lan0", "up"],
            vec![
                "-n",
                l,
                "link",
                "set",
                "lanh",
                "type",
                "bridge_slave",
                "hairpin",
                "on",
            ],
            vec![
                "-n", l, "link", "add", "lanp", "type", "veth", "peer", "name", "eth0", "netns", p,
            ],
            vec!["-n", l, "link", "set", "lanp", "master", "lan0", "up"],
            vec!["-n", p, "addr", "add", "203.0.113.2/24", "dev", "eth0"],
            vec!["-n", p, "link", "set", "eth0", "up"],
            vec!["-n", p, "route", "add", "default", "via", "203.0.113.254"],
        ] {
            ip(&args);
        }
        wait_up(p, "eth0");
        wait_up(l, "lanh");
        TunnelLan { lan, peer }
    }
}

pub fn build(h: &Harness, lan: &Lan, lan2: &TunnelLan) -> World {
    route_via(
        lan.lan.name(),
        "198.51.100.1",
        &["10.0.0.0/8", "192.0.2.0/24", "203.0.113.0/24"],
    );
    route_via(
        lan2.lan.name(),
        "203.0.113.1",
        &["10.0.0.0/8", "192.0.2.0/24", LAN_SUBNET],
    );
    h.nat_network("n1", "10.71.1.0/24", None);
    h.nat_network("n2", "10.72.2.0/24", Some("legacy"));
    l2_network(
        h,
        "l2",
        "l2bridge",
        LAN_SUBNET,
        Some("198.51.100.254"),
        &lan.uplink,
        None,
    );
    l2_network(
        h,
        "lt",
        "l2tunnel",
        "203.0.113.0/24",
        Some("203.0.113.254"),
        "bhtlan1",
        None,
    );
    l2_network(
        h,
        "ov",
        "overlay",
        "10.73.3.0/24",
        None,
        UPLINK_DEV,
        Some(4242),
    );
    let nets = vec![
        Net {
            name: "n1".into(),
            driver: "nat",
            subnet: "10.71.1.0/24",
            gateway: Ipv4Addr::new(10, 71, 1, 1),
        },
        Net {
            name: "n2".into(),
            driver: "nat",
            subnet: "10.72.2.0/24",
            gateway: Ipv4Addr::new(10, 72, 2, 1),
        },
        Net {
            name: "l2".into(),
            driver: "l2bridge",
            subnet: LAN_SUBNET,
            gateway: LAN_ROUTER,
        },
        Net {
            name: "ov".into(),
            driver: "overlay",
            subnet: "10.73.3.0/24",
            gateway: Ipv4Addr::new(10, 73, 3, 1),
        },
        Net {
            name: "lt".into(),
            driver: "l2tunnel",
            subnet: "203.0.113.0/24",
            gateway: Ipv4Addr::new(203, 0, 113, 254),
        },
    ];
    let eps: [EpRow<'_>; 9] = [
        ("a1", 0, None, &["18080:80", "18053:53/udp"], "layered"),
        ("a2", 0, None, &[], "replace"),
        (
            "b1",
            1,
            None,
            &["28080:8080", "192.0.2.1:28081:8081/udp"],
            "layered",
        ),
        ("c1", 2, Some("198.51.100.10"), &[], "layered"),
        ("c2", 2, Some("198.51.100.11"), &[], "replace"),
        ("o1", 3, Some("10.73.3.10"), &[], "layered"),
        ("o2", 3, Some("10.73.3.11"), &[], "replace"),
        ("t1", 4, Some("203.0.113.10"), &[], "layered"),
        ("t2", 4, Some("203.0.113.11"), &[], "replace"),
    ];
    let mut w = World {
        nets,
        nodes: Vec::new(),
        mappings: Vec::new(),
        masquerade: UPLINK,
    };
    for (name, net, addr, publish, mode) in eps {
        let (ip, ns) = endpoint(h, name, &w.nets[net].name, addr, publish, mode);
        let switch = net >= 2;
        let e = w.nodes.len();
        for p in publish {
            let m = bulkhead_model::PortMapping::parse("publish", p).expect("mapping");
            w.mappings.push(Mapping {
                endpoint: e,
                tcp: m.protocol.number() == Some(6),
                host_ip: m.host_ip.map(|a| match a {
                    std::net::IpAddr::V4(v) => v,
                    std::net::IpAddr::V6(_) => panic!("v6 mapping"),
                }),
                host_port: m.host_port,
                container_port: m.container_port,
            });
        }
        w.nodes.push(Node {
            label: name.into(),
            ip,
            ns,
            kind: NodeKind::Endpoint { net, switch },
        });
    }
    for a in [
        UPLINK,
        LAN_HOST,
        Ipv4Addr::new(10, 71, 1, 1),
        Ipv4Addr::new(10, 72, 2, 1),
        Ipv4Addr::new(10, 73, 3, 1),
        TUNNEL_HOST,
    ] {
        w.nodes.push(Node {
            label: a.to_string(),
            ip: a,
            ns: h.host().to_path_buf(),
            kind: NodeKind::Host,
        });
    }
    w.nodes.push(Node {
        label: OUTSIDE.to_string(),
        ip: OUTSIDE,
        ns: h.outside().to_path_buf(),
        kind: NodeKind::Outside,
    });
    w.nodes.push(Node {
        label: LAN_PEER.to_string(),
        ip: LAN_PEER,
        ns: lan.peer.path().to_path_buf(),
        kind: NodeKind::Outside,
    });
    w.nodes.push(Node {
        label: TUNNEL_PEER.to_string(),
        ip: TUNNEL_PEER,
        ns: lan2.peer.path().to_path_buf(),
        kind: NodeKind::Outside,
    });
    w
}

/// Resolves neighbours before measuring (a first packet waiting for ARP
/// is not a policy verdict): every node pings a few others, results unused.
pub fn warm_up(w: &World) {
    std::thread::scope(|s| {
        for a in &w.nodes {
            for b in w.nodes.iter().filter(|b| b.ns != a.ns) {
                s.spawn(move || probes::icmp(&a.ns, a.ip, b.ip));
            }
        }
    });
}
