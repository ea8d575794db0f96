//! End-to-end tests of the nat driver: the engine on the real kernel
//! ([`bulkhead_dataplane::host::HostKernel`]) inside a throwaway host
//! namespace, with real packets between endpoint namespaces and an outside
//! peer behind a veth uplink (see `common/mod.rs` for the layout and the
//! safety rules). Each test is independent and needs root (loud skip
//! otherwise; fails under `CI=true`).

mod common;

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use bulkhead_dataplane::netns;
use bulkhead_dataplane::nft::NftSocket;
use bulkhead_engine::TraceSpec;
use bulkhead_policy::Verdict;
use common::*;

const P253: i32 = 253;

fn uplink(port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(UPLINK, port))
}

/// Spec §4/§6, profile `current`. Sends from A to B: TCP connect to :80,
/// a UDP datagram to :53, an ICMP echo, a raw IP protocol 253 packet; then
/// TCP from B to the outside peer. Expects: TCP, UDP, ICMP pass; 253 does
/// not arrive (and does once an allow rule names it, proving the probe);
/// the outside peer sees B's connection coming from the uplink address
/// (SNAT), and the reply comes back (the connection completes).
#[test]
fn current_profile_between_endpoints_and_outbound_snat() {
    let Some(h) = Harness::new("cur") else { return };
    h.nat_network("n1", "10.61.1.0/24", None);
    let a = h.endpoint("a", "n1", &[], None);
    let b = h.endpoint("b", "n1", &[], None);

    let peer = tcp_reaches(&a.ns, &b.ns, 80, b.addr(80));
    assert!(peer.is_some(), "TCP A->B:80 must connect");
    assert_eq!(
        peer.map(|p| p.ip()),
        Some(a.ip.into()),
        "B sees A's own address (no NAT inside a network)"
    );
    assert!(
        udp_arrives(&a.ns, None, &b.ns, b.addr(53)),
        "UDP A->B:53 must arrive"
    );
    assert!(ping(&a.ns, b.ip), "ICMP echo A->B must be answered");
    assert!(
        !raw_arrives(&a.ns, None, &b.ns, b.ip, P253),
        "IP protocol 253 A->B must be blocked (profile current)"
    );
    // Control: the probe itself works once a rule allows protocol 253 in.
    h.acl(&b, rule("allow", "in", "253", None, None, 100));
    assert!(
        raw_arrives(&a.ns, None, &b.ns, b.ip, P253),
        "IP protocol 253 A->B must arrive once allowed"
    );

    let seen = tcp_reaches(
        &b.ns,
        h.outside(),
        9000,
        SocketAddr::V4(SocketAddrV4::new(OUTSIDE, 9000)),
    );
    assert_eq!(
        seen.map(|p| p.ip()),
        Some(UPLINK.into()),
        "TCP B->outside must connect and be SNATed to the uplink address"
    );
}

/// Spec §4, profile `legacy`, B publishes 8080:80. Sends: A->B TCP :81,
/// A->B ICMP echo, outside->192.0.2.1:8080, A->B TCP :80. Expects: :81 and
/// ICMP blocked; the published port reachable both through the mapping and
/// directly (the profile allows the published container port).
#[test]
fn legacy_profile_blocks_inbound_except_published_port() {
    let Some(h) = Harness::new("leg") else { return };
    h.nat_network("n1", "10.61.2.0/24", Some("legacy"));
    let a = h.endpoint("a", "n1", &[], None);
    let b = h.endpoint("b", "n1", &["8080:80"], None);

    assert_eq!(
        tcp_reaches(&a.ns, &b.ns, 81, b.addr(81)),
        None,
        "TCP A->B:81 must be blocked (legacy)"
    );
    assert!(
        !ping(&a.ns, b.ip),
        "ICMP echo A->B must be blocked (legacy)"
    );
    assert!(
        tcp_reaches(h.outside(), &b.ns, 80, uplink(8080)).is_some(),
        "outside->192.0.2.1:8080 must reach B:80 through the mapping"
    );
    assert!(
        tcp_reaches(&a.ns, &b.ns, 80, b.addr(80)).is_some(),
        "A->B:80 (the published container port) is allowed"
    );
    // Outbound stays open under legacy.
    assert!(
        tcp_reaches(
            &b.ns,
            h.outside(),
            9000,
            SocketAddr::V4(SocketAddrV4::new(OUTSIDE, 9000))
        )
        .is_some(),
        "B->outside must connect (outbound allow all)"
    );
}

/// Spec §6 nat port mappings, B publishes 8080:80 (TCP) and 5353:53/udp.
/// Sends TCP from the outside peer to 192.0.2.1:8080 and UDP to
/// 192.0.2.1:5353. Expects both to arrive at B.
#[test]
fn port_mapping_from_outside() {
    let Some(h) = Harness::new("pmo") else { return };
    h.nat_network("n1", "10.61.3.0/24", None);
    let b = h.endpoint("b", "n1", &["8080:80", "5353:53/udp"], None);
    let seen = tcp_reaches(h.outside(), &b.ns, 80, uplink(8080));
    assert_eq!(
        seen.map(|p| p.ip()),
        Some(OUTSIDE.into()),
        "outside->192.0.2.1:8080 must reach B:80 (source kept)"
    );
    assert!(
        udp_via(h.outside(), &b, 5353, 53),
        "outside->192.0.2.1:5353/udp must reach B:53"
    );
    // Unpublished port on the host address: nothing listens there.
    assert_eq!(
        tcp_reaches(h.outside(), &b.ns, 80, uplink(8081)),
        None,
        "192.0.2.1:8081 is not published"
    );
}

/// UDP to a published port: the receiver listens on B's container port.
fn udp_via(from: &std::path::Path, b: &Ep, host_port: u16, container_port: u16) -> bool {
    udp_arrives_at(from, &b.ns, container_port, uplink(host_port))
}

/// Spec §6: a mapping works from the host itself. A thread in the host
/// namespace connects to the uplink address:8080 and to the gateway
/// (10.61.4.1):8080. Expects both to reach B:80.
#[test]
fn port_mapping_from_host() {
    let Some(h) = Harness::new("pmh") else { return };
    h.nat_network("n1", "10.61.4.0/24", None);
    let b = h.endpoint("b", "n1", &["8080:80"], None);
    assert!(
        tcp_reaches(h.host(), &b.ns, 80, uplink(8080)).is_some(),
        "host->192.0.2.1:8080 must reach B:80"
    );
    let gw = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(10, 61, 4, 1), 8080));
    assert!(
        tcp_reaches(h.host(), &b.ns, 80, gw).is_some(),
        "host->10.61.4.1:8080 (gateway) must reach B:80"
    );
}

/// Spec §6: hairpin. A connects to the host's uplink address:8080 and to
/// the gateway:8080. Expects both to reach B:80; B sees the connection from
/// the host (masqueraded), not from A, so the reply returns through the host.
#[test]
fn port_mapping_hairpin_from_endpoint() {
    let Some(h) = Harness::new("pmhp") else {
        return;
    };
    h.nat_network("n1", "10.61.5.0/24", None);
    let a = h.endpoint("a", "n1", &[], None);
    let b = h.endpoint("b", "n1", &["8080:80"], None);
    let seen = tcp_reaches(&a.ns, &b.ns, 80, uplink(8080));
    assert!(
        seen.is_some(),
        "A->192.0.2.1:8080 must reach B:80 (hairpin)"
    );
    assert_ne!(
        seen.map(|p| p.ip()),
        Some(a.ip.into()),
        "hairpin must be masqueraded"
    );
    let gw = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(10, 61, 5, 1), 8080));
    assert!(
        tcp_reaches(&a.ns, &b.ns, 80, gw).is_some(),
        "A->gateway:8080 must reach B:80 (hairpin)"
    );
}

/// Spec §5, layered: block in tcp 81-90 on B. Sends A->B TCP :85 and :80.
/// Expects :85 blocked, :80 still open, UDP :85 still open.
#[test]
fn acl_block_port_range_layered() {
    let Some(h) = Harness::new("aclr") else {
        return;
    };
    h.nat_network("n1", "10.61.6.0/24", None);
    let a = h.endpoint("a", "n1", &[], None);
    let b = h.endpoint("b", "n1", &[], None);
    assert!(
        tcp_reaches(&a.ns, &b.ns, 85, b.addr(85)).is_some(),
        "before: TCP A->B:85 open"
    );
    h.acl(&b, rule("block", "in", "tcp", Some("81-90"), None, 100));
    assert_eq!(
        tcp_reaches(&a.ns, &b.ns, 85, b.addr(85)),
        None,
        "TCP A->B:85 must be blocked"
    );
    assert_eq!(
        tcp_reaches(&a.ns, &b.ns, 81, b.addr(81)),
        None,
        "TCP A->B:81 must be blocked (range start)"
    );
    assert!(
        tcp_reaches(&a.ns, &b.ns, 80, b.addr(80)).is_some(),
        "TCP A->B:80 must still connect"
    );
    assert!(
        tcp_reaches(&a.ns, &b.ns, 91, b.addr(91)).is_some(),
        "TCP A->B:91 must still connect"
    );
    assert!(
        udp_arrives(&a.ns, None, &b.ns, b.addr(85)),
        "UDP A->B:85 is not named by the rule"
    );
}

/// Spec §5: lower priority number wins. allow in tcp 85 @100 + block in tcp
/// 81-90 @200. Expects :85 open, :86 blocked. Then the reverse (allow @300):
/// the block @200 wins for :87.
#[test]
fn acl_priority_lower_number_wins() {
    let Some(h) = Harness::new("aclp") else {
        return;
    };
    h.nat_network("n1", "10.61.7.0/24", None);
    let a = h.endpoint("a", "n1", &[], None);
    let b = h.endpoint("b", "n1", &[], None);
    h.acl(&b, rule("allow", "in", "tcp", Some("85"), None, 100));
    h.acl(&b, rule("block", "in", "tcp", Some("81-90"), None, 200));
    h.acl(&b, rule("allow", "in", "tcp", Some("87"), None, 300));
    assert!(
        tcp_reaches(&a.ns, &b.ns, 85, b.addr(85)).is_some(),
        "allow @100 beats block @200"
    );
    assert_eq!(
        tcp_reaches(&a.ns, &b.ns, 86, b.addr(86)),
        None,
        "block @200 applies to :86"
    );
    assert_eq!(
        tcp_reaches(&a.ns, &b.ns, 87, b.addr(87)),
        None,
        "block @200 beats allow @300"
    );
}

/// Spec §5: at equal priority block wins. allow + block in tcp 85 @100.
/// Expects TCP A->B:85 blocked, whichever was added first.
#[test]
fn acl_equal_priority_block_wins() {
    let Some(h) = Harness::new("acle") else {
        return;
    };
    h.nat_network("n1", "10.61.8.0/24", None);
    let a = h.endpoint("a", "n1", &[], None);
    let b = h.endpoint("b", "n1", &[], None);
    h.acl(&b, rule("allow", "in", "tcp", Some("85"), None, 100));
    h.acl(&b, rule("block", "in", "tcp", Some("85"), None, 100));
    h.acl(&b, rule("block", "in", "tcp", Some("86"), None, 100));
    h.acl(&b, rule("allow", "in", "tcp", Some("86"), None, 100));
    assert_eq!(
        tcp_reaches(&a.ns, &b.ns, 85, b.addr(85)),
        None,
        "equal priority: block wins (allow added first)"
    );
    assert_eq!(
        tcp_reaches(&a.ns, &b.ns, 86, b.addr(86)),
        None,
        "equal priority: block wins (block added first)"
    );
}

/// Spec §5, replace: B (acl_mode replace) gets one rule, allow in tcp 80.
/// Sends A->B TCP :80, :81, UDP :53, ICMP echo. Expects only :80 to pass;
/// before the rule, the default profile applies (:81 open).
#[test]
fn acl_replace_mode_single_allow() {
    let Some(h) = Harness::new("aclx") else {
        return;
    };
    h.nat_network("n1", "10.61.9.0/24", None);
    let a = h.endpoint("a", "n1", &[], None);
    let b = h.endpoint("b", "n1", &[], Some("replace"));
    assert!(
        tcp_reaches(&a.ns, &b.ns, 81, b.addr(81)).is_some(),
        "no custom rule yet: default profile"
    );
    h.acl(&b, rule("allow", "in", "tcp", Some("80"), None, 100));
    assert!(
        tcp_reaches(&a.ns, &b.ns, 80, b.addr(80)).is_some(),
        "TCP A->B:80 allowed by the rule"
    );
    assert_eq!(
        tcp_reaches(&a.ns, &b.ns, 81, b.addr(81)),
        None,
        "TCP A->B:81 blocked (replace)"
    );
    assert!(
        !udp_arrives(&a.ns, None, &b.ns, b.addr(53)),
        "UDP A->B:53 blocked (replace)"
    );
    assert!(!ping(&a.ns, b.ip), "ICMP A->B blocked (replace)");
}

/// Spec §3: rule_type switch on a nat network is rejected with the table's
/// message; nothing changes (TCP A->B:80 still open).
#[test]
fn acl_switch_rule_rejected_on_nat() {
    let Some(h) = Harness::new("acls") else {
        return;
    };
    h.nat_network("n1", "10.61.10.0/24", None);
    let a = h.endpoint("a", "n1", &[], None);
    let b = h.endpoint("b", "n1", &[], None);
    let mut spec = rule("block", "in", "tcp", Some("80"), None, 100);
    spec.rule_type = Some("switch".into());
    let err = h
        .engine
        .add_acl(&b.name, spec)
        .expect_err("switch rule on nat must be rejected");
    let msg = err.to_string();
    assert!(
        msg.contains("rule_type switch is not available on a nat network; use rule_type host"),
        "unexpected message: {msg}"
    );
    assert!(
        h.engine.acls(&b.name).unwrap().is_empty(),
        "the rejected rule must not be stored"
    );
    assert!(
        tcp_reaches(&a.ns, &b.ns, 80, b.addr(80)).is_some(),
        "TCP A->B:80 unchanged"
    );
}

/// Spec §5: removing a rule restores traffic. block in tcp 80 on B, then
/// remove it. Expects TCP A->B:80 blocked, then open again.
#[test]
fn acl_remove_restores_traffic() {
    let Some(h) = Harness::new("aclrm") else {
        return;
    };
    h.nat_network("n1", "10.61.11.0/24", None);
    let a = h.endpoint("a", "n1", &[], None);
    let b = h.endpoint("b", "n1", &[], None);
    let id = h.acl(&b, rule("block", "in", "tcp", Some("80"), None, 100));
    assert_eq!(
        tcp_reaches(&a.ns, &b.ns, 80, b.addr(80)),
        None,
        "blocked by the rule"
    );
    h.engine.remove_acl(&b.name, &id).expect("remove_acl");
    assert!(
        tcp_reaches(&a.ns, &b.ns, 80, b.addr(80)).is_some(),
        "open again after removal"
    );
}

/// Spec §6: two nat networks are isolated. A1, B1 on n1; A2 on n2. Expects
/// TCP A1->B1 and UDP, ICMP within n1 to pass; TCP, ICMP A1->A2 and
/// A2->B1 to fail; both still reach the outside.
#[test]
fn nat_networks_are_isolated() {
    let Some(h) = Harness::new("iso") else { return };
    h.nat_network("n1", "10.61.12.0/24", None);
    h.nat_network("n2", "10.62.13.0/24", None);
    let a1 = h.endpoint("a1", "n1", &[], None);
    let b1 = h.endpoint("b1", "n1", &[], None);
    let a2 = h.endpoint("a2", "n2", &[], None);
    let b2 = h.endpoint("b2", "n2", &[], None);
    assert!(
        tcp_reaches(&a1.ns, &b1.ns, 80, b1.addr(80)).is_some(),
        "n1: A1->B1 TCP"
    );
    assert!(
        tcp_reaches(&a2.ns, &b2.ns, 80, b2.addr(80)).is_some(),
        "n2: A2->B2 TCP"
    );
    assert_eq!(
        tcp_reaches(&a1.ns, &a2.ns, 80, a2.addr(80)),
        None,
        "n1->n2 TCP must fail"
    );
    assert_eq!(
        tcp_reaches(&a2.ns, &b1.ns, 80, b1.addr(80)),
        None,
        "n2->n1 TCP must fail"
    );
    assert!(!ping(&a1.ns, a2.ip), "n1->n2 ICMP must fail");
    assert!(
        !udp_arrives(&a2.ns, None, &a1.ns, a1.addr(53)),
        "n2->n1 UDP must fail"
    );
    let out = SocketAddr::V4(SocketAddrV4::new(OUTSIDE, 9000));
    assert!(
        tcp_reaches(&a1.ns, h.outside(), 9000, out).is_some(),
        "n1 reaches the outside"
    );
    assert!(
        tcp_reaches(&a2.ns, h.outside(), 9000, out).is_some(),
        "n2 reaches the outside"
    );
}

/// Spec §5 (atomic update + stateful): an established TCP connection A->B:80
/// carries data; then add_acl(B, block in tcp from A/32). Expects the next
/// bytes A writes never to reach B (B's conntrack entry was cut, so the
/// packet is judged as new and blocked), and no echo comes back to A.
#[test]
fn established_connection_cut_by_new_block_rule() {
    let Some(h) = Harness::new("cut") else { return };
    h.nat_network("n1", "10.61.14.0/24", None);
    let a = h.endpoint("a", "n1", &[], None);
    let b = h.endpoint("b", "n1", &[], None);
    let l = tcp_listen(&b.ns, 80);
    let mut client = tcp_connect(&a.ns, b.addr(80)).expect("connect A->B:80");
    let (mut server, _) = accept(&l, PROBE).expect("B accepts");
    client.write_all(b"one").unwrap();
    assert_eq!(
        read_some(&mut server, PROBE).as_deref(),
        Some(&b"one"[..]),
        "data before the rule"
    );
    server.write_all(b"ONE").unwrap();
    assert_eq!(
        read_some(&mut client, PROBE).as_deref(),
        Some(&b"ONE"[..]),
        "reply before the rule"
    );

    h.acl(
        &b,
        rule(
            "block",
            "in",
            "tcp",
            None,
            Some(&format!("{}/32", a.ip)),
            100,
        ),
    );
    let _ = client.write_all(b"two");
    assert_eq!(
        read_some(&mut server, Duration::from_millis(800)),
        None,
        "data after the rule must not arrive at B"
    );
    assert_eq!(
        read_some(&mut client, Duration::from_millis(300)),
        None,
        "no echo reaches A"
    );
    // And a new connection is refused too.
    drop(l);
    assert_eq!(
        tcp_reaches(&a.ns, &b.ns, 81, b.addr(81)),
        None,
        "new TCP A->B blocked"
    );
}

/// After a block rule cut A->B, B (whose outbound is open) writes on the
/// dead socket; B's conntrack picks the flow up again mid-stream as B->A.
/// Then A writes. Expects A's bytes still not to reach B: the rule blocks
/// inbound TCP from A, and a connection B never accepted anew must not be
/// revived by B's own reply.
#[test]
fn cut_connection_is_not_revived_by_endpoint_reply() {
    let Some(h) = Harness::new("revive") else {
        return;
    };
    h.nat_network("n1", "10.61.20.0/24", None);
    let a = h.endpoint("a", "n1", &[], None);
    let b = h.endpoint("b", "n1", &[], None);
    let l = tcp_listen(&b.ns, 80);
    let mut client = tcp_connect(&a.ns, b.addr(80)).expect("connect A->B:80");
    let (mut server, _) = accept(&l, PROBE).expect("B accepts");
    client.write_all(b"one").unwrap();
    assert_eq!(
        read_some(&mut server, PROBE).as_deref(),
        Some(&b"one"[..]),
        "data before the rule"
    );
    h.acl(
        &b,
        rule(
            "block",
            "in",
            "tcp",
            None,
            Some(&format!("{}/32", a.ip)),
            100,
        ),
    );
    server.write_all(b"TWO").unwrap();
    let _ = read_some(&mut client, Duration::from_millis(300));
    let _ = client.write_all(b"three");
    assert_eq!(
        read_some(&mut server, Duration::from_millis(800)),
        None,
        "A->B data must stay blocked after B wrote on the cut connection"
    );
}

/// Spec §6: two nat networks whose subnets are adjacent and together an
/// aligned /23 (10.61.22.0/24, 10.61.23.0/24) can both be created and stay
/// isolated.
#[test]
fn nat_networks_with_adjacent_subnets() {
    let Some(h) = Harness::new("adj") else { return };
    h.nat_network("n1", "10.61.12.0/24", None);
    h.nat_network("n2", "10.61.13.0/24", None);
    let a1 = h.endpoint("a1", "n1", &[], None);
    let a2 = h.endpoint("a2", "n2", &[], None);
    assert_eq!(
        tcp_reaches(&a1.ns, &a2.ns, 80, a2.addr(80)),
        None,
        "n1->n2 TCP must fail"
    );
}

/// Spec §3 anti-spoofing: inside A's namespace, a second address of the
/// subnet (10.61.15.200) is added to eth0; UDP and TCP are sent from it to
/// B. Expects B to receive nothing, while UDP from A's own address arrives.
#[test]
fn anti_spoofing_drops_foreign_source() {
    let Some(h) = Harness::new("spoof") else {
        return;
    };
    h.nat_network("n1", "10.61.15.0/24", None);
    let a = h.endpoint("a", "n1", &[], None);
    let b = h.endpoint("b", "n1", &[], None);
    assert!(
        udp_arrives(&a.ns, Some(a.ip), &b.ns, b.addr(53)),
        "UDP from A's own address arrives"
    );
    ip(&[
        "-n",
        &a.ns_name,
        "addr",
        "add",
        "10.61.15.200/24",
        "dev",
        "eth0",
    ]);
    let spoofed = Ipv4Addr::new(10, 61, 15, 200);
    assert!(
        !udp_arrives(&a.ns, Some(spoofed), &b.ns, b.addr(53)),
        "UDP from a foreign source must be dropped"
    );
    assert_eq!(
        tcp_reaches_from(&a.ns, spoofed, &b.ns, 80, b.addr(80)),
        None,
        "TCP from a foreign source must be dropped"
    );
}

/// TCP connect from `src` (bound) inside `ns`.
fn tcp_reaches_from(
    ns: &std::path::Path,
    src: Ipv4Addr,
    server_ns: &std::path::Path,
    port: u16,
    to: SocketAddr,
) -> Option<SocketAddr> {
    use socket2::{Domain, SockAddr, Socket, Type};
    let l = tcp_listen(server_ns, port);
    let s = netns::run_in(Some(ns), || Socket::new(Domain::IPV4, Type::STREAM, None))
        .unwrap()
        .unwrap();
    s.bind(&SockAddr::from(SocketAddrV4::new(src, 0))).unwrap();
    s.connect_timeout(&SockAddr::from(to), PROBE).ok()?;
    accept(&l, PROBE).map(|(_, p)| p)
}

/// Spec §7/§8 teardown: after deleting endpoints, namespaces and networks,
/// no namespace with the test's prefix is pinned, no `bhp*`/`bhn*` link
/// remains in the host namespace, and the host namespace holds no
/// `bulkhead*` table but the engine's two host tables (`bulkhead`,
/// `bulkhead_net`), which stay while the engine lives.
#[test]
fn teardown_leaves_nothing() {
    let Some(h) = Harness::new("down") else {
        return;
    };
    h.nat_network("n1", "10.61.16.0/24", None);
    h.nat_network("n2", "10.62.17.0/24", None);
    let a = h.endpoint("a", "n1", &["8080:80"], None);
    let b = h.endpoint("b", "n2", &[], None);
    h.acl(&b, rule("block", "in", "tcp", Some("81"), None, 100));
    assert_eq!(
        netns::list(&h.prefix).unwrap().len(),
        2,
        "two endpoint namespaces pinned"
    );
    for e in [&a, &b] {
        h.engine.delete_endpoint(&e.name).expect("delete endpoint");
        h.engine
            .delete_namespace(&e.name)
            .expect("delete namespace");
    }
    h.engine.delete_network("n1").expect("delete n1");
    h.engine.delete_network("n2").expect("delete n2");
    // Switch ports are destroyed in the background: wait for that queue.
    h.engine.settle();

    assert_eq!(
        netns::list(&h.prefix).unwrap(),
        Vec::<String>::new(),
        "no namespace pinned with the prefix"
    );
    assert!(
        !a.ns.exists() && !b.ns.exists(),
        "endpoint namespace pins are gone"
    );
    use bulkhead_dataplane::kernel::Kernel;
    let mut links = h.kernel.link_names("bhp").unwrap();
    links.extend(h.kernel.link_names("bhn").unwrap());
    assert_eq!(
        links,
        Vec::<String>::new(),
        "no bhp*/bhn* link left in the host namespace"
    );
    let tables = NftSocket::open(Some(h.host()))
        .unwrap()
        .list_tables(None)
        .unwrap();
    let ours: Vec<String> = tables
        .iter()
        .filter(|t| t.name.starts_with("bulkhead"))
        .map(|t| t.name.clone())
        .collect();
    for t in &ours {
        assert!(
            ["bulkhead", "bulkhead_net", "bulkhead_nat", "bulkhead_l2"].contains(&t.as_str()),
            "unexpected table {t} in the host namespace: {ours:?}"
        );
    }
    // The uplink is ours (the test's), untouched.
    assert!(h
        .kernel
        .link_names("bhtup")
        .unwrap()
        .contains(&UPLINK_DEV.to_owned()));
    // And the outside peer no longer reaches a port mapping.
    assert!(
        tcp_reaches(h.outside(), h.host(), 8080, uplink(8080)).is_some(),
        "8080 is a plain host port again"
    );
}

/// The state of the host link `name`: `None` when absent, else whether it
/// is up and its interface group.
fn host_link(h: &Harness, name: &str) -> Option<(bool, u32)> {
    let mut r = bulkhead_dataplane::rtnl::Rtnl::in_netns(h.host()).expect("rtnl");
    r.link(name).expect("link").map(|l| (l.up, l.group))
}

fn host_routes_to(h: &Harness, ip: Ipv4Addr) -> String {
    let out = std::process::Command::new("ip")
        .args(["-n", h.host_name(), "route", "show", &format!("{ip}/32")])
        .output()
        .expect("ip route");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Endpoint `name` of network `n1` at `ip`, in the existing namespace `ns`.
fn in_namespace(name: &str, ns: &str, ip: Ipv4Addr) -> bulkhead_model::EndpointSpec {
    bulkhead_model::EndpointSpec {
        name: name.into(),
        network: "n1".into(),
        namespace: ns.into(),
        ip: Some(ip.to_string()),
        ..Default::default()
    }
}

/// The address-reuse tests' world: nat network `n1` on `subnet` with
/// endpoint `c`, empty namespaces `x` and `y`, and endpoint `a` at `ip` in
/// `x`, up and answering `c` over TCP on `port`. Returns `c`, `a` and
/// `x`'s pin.
fn reuse_world(
    h: &Harness,
    subnet: &str,
    ip: Ipv4Addr,
    port: u16,
) -> (Ep, bulkhead_model::Endpoint, std::path::PathBuf) {
    h.nat_network("n1", subnet, None);
    let c = h.endpoint("c", "n1", &[], None);
    for ns in ["x", "y"] {
        h.engine
            .create_namespace(bulkhead_model::NamespaceSpec {
                name: ns.into(),
                isolation: None,
                ..Default::default()
            })
            .expect("namespace");
    }
    let a = h
        .engine
        .create_endpoint(in_namespace("a", "x", ip))
        .expect("a");
    wait_up(&format!("{}x", h.prefix), a.ifname.as_str());
    wait_up(h.host_name(), a.switch_port.as_str());
    let x = h
        .engine
        .namespace("x")
        .expect("x")
        .netns_path
        .expect("x path");
    assert!(
        tcp_echo(&c.ns, &x, port, SocketAddr::from((ip, port))),
        "a works"
    );
    (c, a, x)
}

/// Deleting an endpoint returns before its veth is destroyed (that runs in
/// the background), but the endpoint is already out of service and its
/// address reusable at once: no host route, the port down (or gone), and a
/// new endpoint with the same address, in another namespace or in the same
/// one under the same interface name, works immediately. `settle` then
/// leaves no switch port behind.
#[test]
fn deleted_endpoint_is_out_of_service_and_its_address_reusable_at_once() {
    let Some(h) = Harness::new("reuse") else {
        return;
    };
    let ip = Ipv4Addr::new(10, 63, 18, 50);
    let (c, a, x) = reuse_world(&h, "10.63.18.0/24", ip, 7001);
    let spec = |name: &str, ns: &str| in_namespace(name, ns, ip);

    // Delete, then at once (no settle): out of service, address free.
    h.engine.delete_endpoint("a").expect("delete a");
    if let Some((up, group)) = host_link(&h, a.switch_port.as_str()) {
        assert!(!up, "a retired port is down");
        assert_eq!(group, bulkhead_dataplane::kernel::RETIRED_GROUP);
    }
    assert_eq!(host_routes_to(&h, ip), "", "no host route to a's address");
    assert!(!ping(&c.ns, ip), "a no longer answers");
    // The tenant keeps a's interface until the retired port is destroyed
    // (at the next quiet moment): nothing it sends crosses it.
    assert!(
        !udp_arrives(&x, None, &c.ns, c.addr(7009)),
        "a's namespace still reaches c through its retired port"
    );

    // Same address, another namespace: at once.
    let b = h.engine.create_endpoint(spec("b", "y")).expect("b");
    wait_up(&format!("{}y", h.prefix), b.ifname.as_str());
    wait_up(h.host_name(), b.switch_port.as_str());
    let y = h
        .engine
        .namespace("y")
        .expect("y")
        .netns_path
        .expect("y path");
    assert!(
        tcp_echo(&c.ns, &y, 7002, SocketAddr::from((ip, 7002))),
        "b works"
    );
    h.engine.delete_endpoint("b").expect("delete b");

    // Same address, same namespace and interface name as a: the create
    // waits for a's veth side to go, then works.
    let a2 = h.engine.create_endpoint(spec("a2", "x")).expect("a2");
    assert_eq!(a2.ifname, a.ifname);
    assert_eq!(
        host_link(&h, a.switch_port.as_str()),
        None,
        "a's port was destroyed before a2's was made"
    );
    wait_up(&format!("{}x", h.prefix), a2.ifname.as_str());
    wait_up(h.host_name(), a2.switch_port.as_str());
    assert!(
        tcp_echo(&c.ns, &x, 7003, SocketAddr::from((ip, 7003))),
        "a2 works"
    );

    for e in ["a2", "c"] {
        h.engine.delete_endpoint(e).expect("delete");
    }
    h.engine.settle();
    use bulkhead_dataplane::kernel::Kernel;
    assert_eq!(h.kernel.link_names("bhp").unwrap(), Vec::<String>::new());
}

/// An address given to a new endpoint right after its endpoint is deleted
/// inherits none of the old one's host connections: the delete's host
/// conntrack clean-up is gathered and runs later (a burst of deletes costs
/// one walk of the kernel's table), but a create given that address makes
/// it run first. Leftover entries would let the old peers' packets through
/// the new endpoint's switch port as `established`. Attacked first: with
/// the create's wait removed, the old flow's entry is still in the host's
/// table when the new endpoint is up.
#[test]
fn a_reused_address_inherits_no_host_connection() {
    let Some(h) = Harness::new("inherit") else {
        return;
    };
    let ip = Ipv4Addr::new(10, 63, 19, 60);
    let (_c, _a, _x) = reuse_world(&h, "10.63.19.0/24", ip, 7011);
    let mut host_ct =
        bulkhead_dataplane::conntrack::Conntrack::open(Some(h.host())).expect("host conntrack");
    let involving = |ct: &mut bulkhead_dataplane::conntrack::Conntrack| {
        ct.involving(std::net::IpAddr::V4(ip)).expect("dump")
    };
    assert!(
        !involving(&mut host_ct).is_empty(),
        "c's connection to a is tracked in the host"
    );

    h.engine.delete_endpoint("a").expect("delete a");
    h.engine
        .create_endpoint(in_namespace("b", "y", ip))
        .expect("b");
    let left = involving(&mut host_ct);
    assert!(left.is_empty(), "b inherits a's host connections: {left:?}");

    for e in ["b", "c"] {
        h.engine.delete_endpoint(e).expect("delete");
    }
    h.engine.settle();
}

/// Spec §5: `trace` agrees with the kernel. For each (from, to, protocol,
/// port) the packet is sent for real and the outcome (arrived or not) is
/// compared with the trace's verdict. B has a custom block in tcp 85.
#[test]
fn trace_agrees_with_kernel() {
    let Some(h) = Harness::new("trace") else {
        return;
    };
    h.nat_network("n1", "10.61.18.0/24", None);
    h.nat_network("n2", "10.62.19.0/24", Some("legacy"));
    let a = h.endpoint("a", "n1", &[], None);
    let b = h.endpoint("b", "n1", &[], None);
    let c = h.endpoint("c", "n2", &["8081:80"], None);
    let d = h.endpoint("d", "n2", &[], None);
    h.acl(&b, rule("block", "in", "tcp", Some("85"), None, 100));

    type Probe<'a> = Box<dyn Fn() -> bool + 'a>;
    let cases: Vec<(&Ep, &Ep, &str, Option<u16>, Probe)> = vec![
        (
            &a,
            &b,
            "tcp",
            Some(80),
            Box::new(|| tcp_reaches(&a.ns, &b.ns, 80, b.addr(80)).is_some()),
        ),
        (
            &a,
            &b,
            "tcp",
            Some(85),
            Box::new(|| tcp_reaches(&a.ns, &b.ns, 85, b.addr(85)).is_some()),
        ),
        (
            &a,
            &b,
            "udp",
            Some(53),
            Box::new(|| udp_arrives(&a.ns, None, &b.ns, b.addr(53))),
        ),
        (&a, &b, "icmp", None, Box::new(|| ping(&a.ns, b.ip))),
        (
            &a,
            &b,
            "253",
            None,
            Box::new(|| raw_arrives(&a.ns, None, &b.ns, b.ip, P253)),
        ),
        (
            &d,
            &c,
            "tcp",
            Some(81),
            Box::new(|| tcp_reaches(&d.ns, &c.ns, 81, c.addr(81)).is_some()),
        ),
        (
            &d,
            &c,
            "tcp",
            Some(80),
            Box::new(|| tcp_reaches(&d.ns, &c.ns, 80, c.addr(80)).is_some()),
        ),
        (&d, &c, "icmp", None, Box::new(|| ping(&d.ns, c.ip))),
    ];
    let mut mismatches = Vec::new();
    for (from, to, proto, port, probe) in &cases {
        let port_s = port.map(|p| p.to_string());
        let report = h
            .engine
            .trace(&TraceSpec::new(
                &from.name,
                &to.name,
                proto,
                port_s.as_deref(),
            ))
            .expect("trace");
        let observed = if probe() {
            Verdict::Allow
        } else {
            Verdict::Block
        };
        if report.verdict != observed {
            mismatches.push(format!(
                "{}->{} {proto} {port:?}: trace {:?} ({:?}), kernel {observed:?}",
                from.name, to.name, report.verdict, report.steps
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "trace and kernel disagree:\n{}",
        mismatches.join("\n")
    );
}
