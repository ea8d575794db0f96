//! Support of `e2e_trace.rs`: the world (networks, endpoints, nodes), the
//! seeded generator and the real probes.
#![allow(dead_code)]

pub mod gen;
pub mod probes;

use std::net::{IpAddr, Ipv4Addr};

use bulkhead_engine::EndpointOptions;
use bulkhead_model::{EndpointSpec, NamespaceSpec};

use gen::{Mapping, Net, Node, NodeKind, World};

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
    let ns = h
        .engine
        .create_namespace(NamespaceSpec {
            name: name.into(),
            isolation: None,
        })
        .unwrap_or_else(|e| panic!("create namespace {name}: {e}"));
    let ep = h
        .engine
        .create_endpoint(
            EndpointSpec {
                name: name.into(),
                network: network.into(),
                namespace: name.into(),
                ip: ip.map(Into::into),
                publish: publish.iter().map(|s| (*s).to_owned()).collect(),
                acl_mode: Some(mode.into()),
                ..Default::default()
            },
            EndpointOptions::default(),
        )
        .unwrap_or_else(|e| panic!("create endpoint {name}: {e}"));
    wait_up(&format!("{}{name}", h.prefix), ep.ifname.as_str());
    wait_up(h.host_name(), ep.switch_port.as_str());
    let IpAddr::V4(addr) = ep.ip_address.addr else {
        panic!("{name}: not IPv4")
    };
    (addr, ns.netns_path.clone())
}

/// An endpoint of the world: name, network index, address, published
/// ports, ACL mode.
type EpRow<'a> = (&'a str, usize, Option<&'a str>, &'a [&'a str], &'a str);

pub fn build(h: &Harness, lan: &Lan) -> World {
    let lan_ns = lan.lan.name().to_owned();
    // The LAN router routes the nat and overlay subnets and the uplink's
    // subnet to the host, so a LAN peer's packets reach the host's rules
    // (isolation, published ports) rather than a missing route.
    ip(&[
        "-n",
        &lan_ns,
        "route",
        "add",
        "10.0.0.0/8",
        "via",
        "198.51.100.1",
    ]);
    ip(&[
        "-n",
        &lan_ns,
        "route",
        "add",
        "192.0.2.0/24",
        "via",
        "198.51.100.1",
    ]);
    let fwd = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &lan_ns,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ])
        .status()
        .expect("sysctl in the LAN namespace");
    assert!(fwd.success());
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
    ];
    let eps: [EpRow<'_>; 7] = [
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
    ];
    let mut w = World {
        nets,
        ..World::default()
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
