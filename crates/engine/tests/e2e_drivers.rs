//! End-to-end tests of the drivers other than nat (spec §6) and of the
//! enforcement-point matrix on them (spec §3), on the real kernel.
//!
//! The physical network is simulated with namespaces only (see
//! `common/mod.rs`, [`Lan`]): a LAN namespace (switch + router) joined to the
//! throwaway host namespace's uplink by a veth, and a LAN peer host behind
//! it. The overlay uses two throwaway host namespaces, each with its own
//! engine and kernel, joined by a veth underlay. Frames are observed with a
//! raw AF_PACKET socket on the LAN side ([`Capture`]).

mod common;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use bulkhead_engine::StaticPeers;
use common::*;

fn sock(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(ip, port))
}

const UPLINK: &str = "bhtl0";

/// transparent: the endpoint (198.51.100.10) sits on the LAN. Sends TCP from
/// the LAN peer to the endpoint's own address and from the endpoint to the
/// peer, and pings. Expects the server to see the true client address (no
/// NAT) both ways, and the frames the peer receives from the endpoint to
/// carry the endpoint's own MAC. Then UDP from a second address added in the
/// endpoint's namespace: expects it dropped at the bridge port.
#[test]
fn transparent_endpoint_is_on_the_lan_with_its_own_address_and_mac() {
    let Some(h) = Harness::new("tr") else {
        return;
    };
    let lan = Lan::attach(&h, "tr", UPLINK, false);
    l2_network(
        &h,
        "t1",
        "transparent",
        LAN_SUBNET,
        Some("198.51.100.254"),
        UPLINK,
        None,
    );
    let a = endpoint_at(&h, "a", "t1", "198.51.100.10");
    let mac = h.engine.endpoint("a").expect("endpoint").mac_address.0;
    let cap = Capture::open(lan.peer.path());
    assert!(
        ping(lan.peer.path(), a.ip),
        "the LAN peer pings the endpoint"
    );
    assert_eq!(
        tcp_reaches(lan.peer.path(), &a.ns, 80, a.addr(80)).map(|p| p.ip()),
        Some(LAN_PEER.into()),
        "the endpoint sees the LAN peer's own address"
    );
    assert_eq!(
        tcp_reaches(&a.ns, lan.peer.path(), 81, sock(LAN_PEER, 81)).map(|p| p.ip()),
        Some(a.ip.into()),
        "the LAN peer sees the endpoint's own address (no NAT)"
    );
    let from_a: Vec<Seen> = cap.ipv4().into_iter().filter(|s| s.src == a.ip).collect();
    assert!(!from_a.is_empty(), "the peer saw frames from the endpoint");
    assert!(
        from_a.iter().all(|s| s.eth_src == mac),
        "frames from the endpoint carry its own MAC {mac:02x?}: {from_a:?}"
    );
    assert!(
        ping(&a.ns, LAN_ROUTER),
        "the endpoint reaches the LAN router"
    );
    // Anti-spoofing on the bridge port: a second address inside the
    // endpoint's namespace is not its binding.
    assert!(udp_arrives(
        &a.ns,
        Some(a.ip),
        lan.peer.path(),
        sock(LAN_PEER, 53)
    ));
    ip(&[
        "-n",
        &a.ns_name,
        "addr",
        "add",
        "198.51.100.99/24",
        "dev",
        "eth0",
    ]);
    let spoofed = Ipv4Addr::new(198, 51, 100, 99);
    assert!(
        !udp_arrives(&a.ns, Some(spoofed), lan.peer.path(), sock(LAN_PEER, 53)),
        "a foreign source is dropped at the bridge port"
    );
}

/// l2bridge: endpoints 198.51.100.11 and .12 use the host's subnet. Sends
/// TCP from each endpoint to the LAN peer, and from the peer to each
/// endpoint. Expects every connection to arrive with the true addresses, and
/// every frame the peer receives from an endpoint to carry the host
/// uplink's MAC (L2 rewrite), never the endpoint's.
#[test]
fn l2bridge_frames_leave_with_the_host_mac_and_endpoints_are_reached_by_ip() {
    let Some(h) = Harness::new("l2b") else {
        return;
    };
    let lan = Lan::attach(&h, "l2b", UPLINK, false);
    l2_network(
        &h,
        "b1",
        "l2bridge",
        LAN_SUBNET,
        Some("198.51.100.254"),
        UPLINK,
        None,
    );
    let a = endpoint_at(&h, "a", "b1", "198.51.100.11");
    let b = endpoint_at(&h, "b", "b1", "198.51.100.12");
    let host_mac = mac_of(h.host_name(), UPLINK);
    let cap = Capture::open(lan.peer.path());
    for ep in [&a, &b] {
        assert_eq!(
            tcp_reaches(&ep.ns, lan.peer.path(), 82, sock(LAN_PEER, 82)).map(|p| p.ip()),
            Some(ep.ip.into()),
            "the LAN peer sees endpoint {} by its own address",
            ep.name
        );
        assert_eq!(
            tcp_reaches(lan.peer.path(), &ep.ns, 83, ep.addr(83)).map(|p| p.ip()),
            Some(LAN_PEER.into()),
            "the LAN peer reaches endpoint {} by its IP",
            ep.name
        );
    }
    let seen: Vec<Seen> = cap
        .ipv4()
        .into_iter()
        .filter(|s| s.src == a.ip || s.src == b.ip)
        .collect();
    assert!(seen.iter().any(|s| s.src == a.ip) && seen.iter().any(|s| s.src == b.ip));
    assert!(
        seen.iter().all(|s| s.eth_src == host_mac),
        "frames from endpoints carry the host's MAC {host_mac:02x?}: {seen:?}"
    );
    assert!(
        tcp_echo(&a.ns, &b.ns, 84, b.addr(84)),
        "endpoints reach each other"
    );
}

/// l2tunnel: endpoints 198.51.100.21 and .22 on one host, behind a LAN
/// switch that hairpins. Sends UDP and TCP from one endpoint to the other.
/// Expects both to arrive, and the packets between the two endpoints to be
/// seen on the LAN side (captured in the LAN namespace), i.e. they left by
/// the uplink and came back through the fabric.
#[test]
fn l2tunnel_traffic_between_local_endpoints_hairpins_through_the_lan() {
    let Some(h) = Harness::new("l2t") else {
        return;
    };
    let lan = Lan::attach(&h, "l2t", UPLINK, true);
    l2_network(
        &h,
        "u1",
        "l2tunnel",
        LAN_SUBNET,
        Some("198.51.100.254"),
        UPLINK,
        None,
    );
    let a = endpoint_at(&h, "a", "u1", "198.51.100.21");
    let b = endpoint_at(&h, "b", "u1", "198.51.100.22");
    let cap = Capture::open(lan.lan.path());
    assert!(
        udp_arrives(&a.ns, None, &b.ns, b.addr(5353)),
        "UDP from a to b arrives"
    );
    assert!(tcp_echo(&a.ns, &b.ns, 85, b.addr(85)), "TCP a <-> b works");
    let seen = cap.ipv4();
    assert!(
        seen.iter().any(|s| s.src == a.ip && s.dst == b.ip),
        "a -> b was seen on the LAN: {seen:?}"
    );
    assert!(
        seen.iter().any(|s| s.src == b.ip && s.dst == a.ip),
        "b -> a was seen on the LAN: {seen:?}"
    );
    assert_eq!(
        tcp_reaches(lan.peer.path(), &a.ns, 86, a.addr(86)).map(|p| p.ip()),
        Some(LAN_PEER.into()),
        "the LAN peer reaches the endpoint by its IP"
    );
}

/// Two hosts (each a throwaway host namespace with its own engine), joined
/// by a veth underlay (10.99.0.1 / 10.99.0.2), with overlay networks o1
/// (VNI 4001, 10.201.0.0/24) and o2 (VNI 4002, 10.202.0.0/24) on both.
struct Overlay {
    a: Harness,
    b: Harness,
    a1: Ep,
    a2: Ep,
    b1: Ep,
    b2: Ep,
}

fn overlay(tag: &str) -> Option<Overlay> {
    let a = Harness::new(&format!("{tag}a"))?;
    let b = Harness::new(&format!("{tag}b"))?;
    underlay(&a, &b);
    for h in [&a, &b] {
        l2_network(
            h,
            "o1",
            "overlay",
            "10.201.0.0/24",
            None,
            "bhtu0",
            Some(4001),
        );
        l2_network(
            h,
            "o2",
            "overlay",
            "10.202.0.0/24",
            None,
            "bhtu0",
            Some(4002),
        );
    }
    let a1 = endpoint_at(&a, "a1", "o1", "10.201.0.10");
    let a2 = endpoint_at(&a, "a2", "o2", "10.202.0.10");
    let b1 = endpoint_at(&b, "b1", "o1", "10.201.0.20");
    let b2 = endpoint_at(&b, "b2", "o2", "10.202.0.20");
    // The static peer lists: each host lists the other's endpoints.
    for (me, other, other_ip) in [(&a, &b, "10.99.0.2"), (&b, &a, "10.99.0.1")] {
        let peers = StaticPeers::new();
        for n in ["o1", "o2"] {
            let remote = other
                .engine
                .local_peers(n, other_ip.parse().expect("ip"))
                .expect("local peers");
            peers.set(n, remote);
        }
        me.engine
            .set_peer_source(Arc::new(peers))
            .expect("program peers");
    }
    Some(Overlay {
        a,
        b,
        a1,
        a2,
        b1,
        b2,
    })
}

/// overlay: endpoints of one VXLAN network on different hosts talk (TCP
/// echo and ping both ways, o1 and o2); endpoints of the two networks (VNI
/// 4001 vs 4002) do not (TCP and UDP a1 -> b2 and a1 -> a2 get nothing).
#[test]
fn overlay_endpoints_on_two_hosts_talk_and_vnis_are_separate() {
    let Some(o) = overlay("ov") else {
        return;
    };
    assert!(
        tcp_echo(&o.a1.ns, &o.b1.ns, 90, o.b1.addr(90)),
        "a1 <-> b1 over VNI 4001"
    );
    assert!(
        tcp_echo(&o.b1.ns, &o.a1.ns, 91, o.a1.addr(91)),
        "b1 <-> a1 over VNI 4001"
    );
    assert!(
        tcp_echo(&o.a2.ns, &o.b2.ns, 92, o.b2.addr(92)),
        "a2 <-> b2 over VNI 4002"
    );
    assert!(ping(&o.b2.ns, o.a2.ip), "b2 pings a2");
    assert!(
        !udp_arrives(&o.a1.ns, None, &o.b2.ns, o.b2.addr(5000)),
        "UDP from VNI 4001 never reaches VNI 4002 (remote)"
    );
    assert_eq!(tcp_reaches(&o.a1.ns, &o.b2.ns, 93, o.b2.addr(93)), None);
    assert!(
        !udp_arrives(&o.a1.ns, None, &o.a2.ns, o.a2.addr(5001)),
        "UDP from VNI 4001 never reaches VNI 4002 (same host)"
    );
    for host in [&o.a, &o.b] {
        let details = std::process::Command::new("ip")
            .args([
                "-n",
                host.host_name(),
                "-d",
                "link",
                "show",
                "type",
                "vxlan",
            ])
            .output()
            .expect("ip");
        let text = String::from_utf8_lossy(&details.stdout);
        for want in [
            "vxlan id 4001",
            "vxlan id 4002",
            "dstport 4789",
            "nolearning",
        ] {
            assert!(text.contains(want), "{want}: {text}");
        }
    }
}

/// overlay MTU: the uplink has MTU 1500, so the VXLAN device, the bridge
/// and both ends of every endpoint veth get 1450; sends 8 MiB over TCP
/// a1 -> b1 (full-size segments, DF set). Expects every byte to arrive.
#[test]
fn overlay_mtu_accounts_for_vxlan_and_large_transfers_work() {
    let Some(o) = overlay("mtu") else {
        return;
    };
    assert_eq!(mtu_of(&o.a1.ns_name, "eth0"), 1450);
    let port = o.a.engine.endpoint("a1").expect("a1").switch_port.clone();
    assert_eq!(mtu_of(o.a.host_name(), port.as_str()), 1450);
    assert!(
        tcp_bulk(
            &o.a1.ns,
            &o.b1.ns,
            94,
            o.b1.addr(94),
            8 << 20,
            Duration::from_secs(20)
        ),
        "8 MiB a1 -> b1"
    );
    assert!(
        tcp_bulk(
            &o.b1.ns,
            &o.a1.ns,
            95,
            o.a1.addr(95),
            8 << 20,
            Duration::from_secs(20)
        ),
        "8 MiB b1 -> a1"
    );
}

/// overlay switch-port default is allow-all (spec §4): GRE (a protocol the
/// process endpoint's host firewall blocks inbound by default) from b1 to
/// a1 crosses both hosts' switch ports and reaches a1's interface (seen by a
/// packet socket inside a1's namespace, which sees frames before the host
/// firewall), and is then dropped by a1's host firewall.
#[test]
fn overlay_switch_port_default_allows_all() {
    let Some(o) = overlay("ovsw") else {
        return;
    };
    let cap = Capture::open(&o.a1.ns);
    assert!(
        !raw_arrives(&o.b1.ns, None, &o.a1.ns, o.a1.ip, 47),
        "GRE is blocked by a1's host firewall (default profile)"
    );
    let seen = cap.ipv4();
    assert!(
        seen.iter()
            .any(|s| s.proto == 47 && s.src == o.b1.ip && s.dst == o.a1.ip),
        "GRE crossed the switch ports: {seen:?}"
    );
}

/// Spec §3 on a process endpoint `ep` that `client` reaches over TCP:
/// a host-type block and a switch-type block each stop the connection on
/// their own. The switch rule drops at the switch port, so nothing reaches
/// the endpoint's namespace (packet socket there sees no SYN); the host rule
/// drops inside it (the SYN is seen, no connection). Removing each rule
/// restores the connection.
fn both_points_block(h: &Harness, client: &std::path::Path, ep: &Ep, port: u16) {
    assert!(
        tcp_reaches(client, &ep.ns, port, ep.addr(port)).is_some(),
        "{}: reachable before any rule",
        ep.name
    );
    for (rule_type, reaches_namespace) in [("host", true), ("switch", false)] {
        let mut spec = rule("block", "in", "tcp", Some(&port.to_string()), None, 100);
        spec.rule_type = Some(rule_type.into());
        let id = h.acl(ep, spec);
        let cap = Capture::open(&ep.ns);
        assert_eq!(
            tcp_reaches(client, &ep.ns, port, ep.addr(port)),
            None,
            "{}: a {rule_type}-type block stops TCP {port} on its own",
            ep.name
        );
        let syn_seen = cap.ipv4().iter().any(|s| s.proto == 6 && s.dst == ep.ip);
        assert_eq!(
            syn_seen, reaches_namespace,
            "{}: the {rule_type} rule drops at its own point",
            ep.name
        );
        h.engine.remove_acl(&ep.name, &id).expect("remove acl");
        assert!(
            tcp_reaches(client, &ep.ns, port, ep.addr(port)).is_some(),
            "{}: reachable again without the {rule_type} rule",
            ep.name
        );
    }
}

/// Spec §3 for vm endpoints (TAP switch ports) of `network` (driver
/// `driver`): on l2bridge, l2tunnel and overlay a switch-type rule is
/// accepted and a host-type rule rejected; on nat and transparent every
/// custom ACL is rejected.
fn vm_matrix(h: &Harness, network: &str, driver: &str) {
    let vm = vm_endpoint(h, &format!("vm-{network}"), network);
    let switched = matches!(driver, "l2bridge" | "l2tunnel" | "overlay");
    for rule_type in ["switch", "host"] {
        let mut spec = rule("block", "in", "tcp", Some("22"), None, 100);
        spec.rule_type = Some(rule_type.into());
        let got = h.engine.add_acl(vm.name.as_str(), spec);
        let accepted = switched && rule_type == "switch";
        match got {
            Ok(_) => assert!(
                accepted,
                "{driver} vm: rule_type {rule_type} must be rejected"
            ),
            Err(e) => {
                assert!(
                    !accepted,
                    "{driver} vm: rule_type {rule_type} rejected: {e}"
                );
                assert!(
                    e.to_string().contains(driver),
                    "the error names {driver}: {e}"
                );
            }
        }
    }
}

/// The matrix on l2bridge and l2tunnel: the LAN peer connects to a process
/// endpoint; host-type and switch-type blocks each stop it (see
/// [`both_points_block`]); vm endpoints take switch rules only.
#[test]
fn matrix_l2bridge_and_l2tunnel_enforce_at_both_points() {
    for (driver, hairpin) in [("l2bridge", false), ("l2tunnel", true)] {
        let Some(h) = Harness::new(&format!("mx{driver}")) else {
            return;
        };
        let lan = Lan::attach(&h, driver, UPLINK, hairpin);
        l2_network(
            &h,
            "m1",
            driver,
            LAN_SUBNET,
            Some("198.51.100.254"),
            UPLINK,
            None,
        );
        let a = endpoint_at(&h, "a", "m1", "198.51.100.31");
        let b = endpoint_at(&h, "b", "m1", "198.51.100.32");
        both_points_block(&h, lan.peer.path(), &a, 100);
        both_points_block(&h, &a.ns, &b, 101);
        vm_matrix(&h, "m1", driver);
    }
}

/// The matrix on overlay (one host, two local endpoints on the bridge, so
/// the switch-port filter sees bridged traffic through br_netfilter), plus
/// anti-spoofing on a bridge port: a second address added inside a1's
/// namespace is dropped at the port.
#[test]
fn matrix_overlay_enforces_at_both_points_and_drops_spoofed_sources() {
    let Some(h) = Harness::new("mxov") else {
        return;
    };
    l2_network(
        &h,
        "o1",
        "overlay",
        "10.203.0.0/24",
        None,
        UPLINK_DEV,
        Some(4003),
    );
    let a = endpoint_at(&h, "a1", "o1", "10.203.0.10");
    let b = endpoint_at(&h, "b1", "o1", "10.203.0.11");
    both_points_block(&h, &a.ns, &b, 102);
    vm_matrix(&h, "o1", "overlay");
    assert!(udp_arrives(&a.ns, Some(a.ip), &b.ns, b.addr(53)));
    ip(&[
        "-n",
        &a.ns_name,
        "addr",
        "add",
        "10.203.0.200/24",
        "dev",
        "eth0",
    ]);
    assert!(
        !udp_arrives(
            &a.ns,
            Some(Ipv4Addr::new(10, 203, 0, 200)),
            &b.ns,
            b.addr(53)
        ),
        "a foreign source is dropped at the bridge port"
    );
}

/// The matrix on nat and transparent: vm endpoints reject every custom ACL;
/// a transparent process endpoint rejects switch-type rules.
#[test]
fn matrix_nat_and_transparent_vm_endpoints_reject_custom_acls() {
    let Some(h) = Harness::new("mxnt") else {
        return;
    };
    let _lan = Lan::attach(&h, "mxnt", UPLINK, false);
    h.nat_network("n1", "10.204.0.0/24", None);
    l2_network(
        &h,
        "t1",
        "transparent",
        LAN_SUBNET,
        Some("198.51.100.254"),
        UPLINK,
        None,
    );
    vm_matrix(&h, "n1", "nat");
    vm_matrix(&h, "t1", "transparent");
    let a = endpoint_at(&h, "a", "t1", "198.51.100.41");
    let mut spec = rule("block", "in", "tcp", Some("80"), None, 100);
    spec.rule_type = Some("switch".into());
    let e = h
        .engine
        .add_acl(&a.name, spec)
        .expect_err("switch rule on transparent");
    assert!(e.to_string().contains("transparent"), "{e}");
}

/// Teardown: for each driver, an endpoint and its network are created and
/// removed again. Expects no `bhp`/`bhn`/`bhv` link, no proxy or hairpin
/// neighbour entry on the uplink, no extra policy-routing rule, and the
/// uplink released from any bridge and still up.
#[test]
fn every_driver_tears_down_what_it_made() {
    let Some(h) = Harness::new("l2td") else {
        return;
    };
    let _lan = Lan::attach(&h, "l2td", UPLINK, false);
    let show = |args: &[&str]| {
        let mut all = vec!["-n", h.host_name()];
        all.extend_from_slice(args);
        let out = std::process::Command::new("ip")
            .args(&all)
            .output()
            .expect("ip");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let rules_before = show(&["rule", "show"]);
    // A fresh address per driver: the LAN router's ARP cache still holds
    // the previous endpoint's MAC for a reused one.
    for (driver, vni, addr) in [
        ("transparent", None, "198.51.100.51"),
        ("l2bridge", None, "198.51.100.52"),
        ("l2tunnel", None, "198.51.100.53"),
        ("overlay", Some(4100), "198.51.100.54"),
    ] {
        l2_network(
            &h,
            "n",
            driver,
            LAN_SUBNET,
            Some("198.51.100.254"),
            UPLINK,
            vni,
        );
        let a = endpoint_at(&h, "a", "n", addr);
        assert!(
            ping(&a.ns, LAN_ROUTER) || driver == "overlay",
            "{driver}: works"
        );
        h.engine.delete_endpoint("a").expect("delete endpoint");
        h.engine.delete_namespace("a").expect("delete namespace");
        h.engine.delete_network("n").expect("delete network");
        // Switch ports are destroyed in the background: wait for that queue.
        h.engine.settle();
        let links = show(&["-o", "link", "show"]);
        for prefix in [": bhp", ": bhn", ": bhv"] {
            assert!(!links.contains(prefix), "{driver}: {prefix} left: {links}");
        }
        let uplink = show(&["-o", "link", "show", UPLINK]);
        assert!(
            !uplink.contains("master") && uplink.contains("state UP"),
            "{driver}: uplink released and up: {uplink}"
        );
        let proxies = show(&["neigh", "show", "proxy"]);
        assert!(!proxies.contains(addr), "{driver}: {proxies}");
        let neigh = show(&["neigh", "show", "dev", UPLINK, "nud", "permanent"]);
        assert!(
            !neigh.contains(addr),
            "{driver}: hairpin neighbour left: {neigh}"
        );
        assert_eq!(show(&["rule", "show"]), rules_before, "{driver}: rules");
    }
}
