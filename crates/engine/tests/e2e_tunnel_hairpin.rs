//! End-to-end: an l2tunnel endpoint connects to a published port of a nat
//! endpoint (spec §6: port mappings DNAT host_ip:host_port to the endpoint,
//! also hairpin from another endpoint), on the real kernel.
//!
//! The l2tunnel network sits on a simulated LAN whose switch hairpins and
//! whose router routes the host's private subnets back to the host (the
//! fabric a DNATed packet would cross if the host sent it out). The
//! connection must work both ways: the reply has to meet the connection's
//! conntrack entry so the client sees the address it connected to.

mod common;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::path::Path;

use bulkhead_dataplane::netns;

use common::*;

const UPLINK_L2: &str = "bhtl0";

fn sock(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(ip, port))
}

/// An l2tunnel endpoint `name` at `ip` publishing `publish`.
fn tunnel_endpoint(h: &Harness, name: &str, ip: &str, publish: &[&str]) -> Ep {
    endpoint_publishing(h, name, "u1", ip, publish)
}

/// UDP request/response through a *connected* client socket: the answer
/// counts only when it comes from `to` itself, i.e. conntrack undid the
/// DNAT on the way back.
fn udp_answer_from(client_ns: &Path, server_ns: &Path, listen: u16, to: SocketAddr) -> bool {
    let srv = udp_listen(server_ns, listen);
    srv.set_read_timeout(Some(PROBE)).expect("timeout");
    let cli = netns::run_in(Some(client_ns), || UdpSocket::bind(("0.0.0.0", 0)))
        .expect("enter client ns")
        .expect("bind udp client");
    cli.connect(to).expect("connect udp");
    cli.set_read_timeout(Some(PROBE)).expect("timeout");
    let m = b"bht-tunnel-hairpin";
    if cli.send(m).is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    match srv.recv_from(&mut buf) {
        Ok((n, from)) if buf[..n] == m[..] => {
            if srv.send_to(&buf[..n], from).is_err() {
                return false;
            }
        }
        _ => return false,
    }
    matches!(cli.recv(&mut buf), Ok(n) if buf[..n] == m[..])
}

/// l2tunnel endpoint `t` (198.51.100.21) to nat endpoint `b` (10.62.1.0/24)
/// published as `8080:80` and `5353:53/udp`, at three host addresses: the
/// host's address on the l2tunnel LAN, the outside uplink's, and `b`'s
/// gateway; and to l2tunnel endpoint `t2` (198.51.100.22) published as
/// `9090:90`. Expects TCP request/response and UDP request/response (the
/// answer from the address `t` connected to) for each, `b` seeing the
/// host's address (masqueraded hairpin). Then the weakened setup: with the
/// rule that marks DNATed connections for `main` deleted, the same TCP
/// hairpin fails (the packet goes into the fabric masqueraded to
/// 198.51.100.1 and comes back a martian) — what the kernel did before.
#[test]
fn l2tunnel_endpoint_reaches_published_ports_by_hairpin() {
    let Some(h) = Harness::new("tlhp") else {
        return;
    };
    let lan = Lan::attach(&h, "tlhp", UPLINK_L2, true);
    route_via(lan.lan.name(), "198.51.100.1", &["10.62.0.0/16"]);
    l2_network(
        &h,
        "u1",
        "l2tunnel",
        LAN_SUBNET,
        Some("198.51.100.254"),
        UPLINK_L2,
        None,
    );
    h.nat_network("n1", "10.62.1.0/24", None);
    let t = endpoint_at(&h, "t", "u1", "198.51.100.21");
    let t2 = tunnel_endpoint(&h, "t2", "198.51.100.22", &["9090:90"]);
    let b = h.endpoint("b", "n1", &["8080:80", "5353:53/udp"], None);
    // Neighbours first: a probe waiting for ARP is not a verdict.
    assert!(ping(&t.ns, LAN_ROUTER), "t reaches its router");
    let gateway = Ipv4Addr::new(10, 62, 1, 1);
    // One listener port per protocol in `b`: the probes run one after
    // another (each is an answer within PROBE, never a wait for silence).
    for host in [LAN_HOST, UPLINK, gateway] {
        assert!(
            tcp_echo(&t.ns, &b.ns, 80, sock(host, 8080)),
            "t -> {host}:8080 (published, tcp) must reach b:80 and answer"
        );
        assert!(
            udp_answer_from(&t.ns, &b.ns, 53, sock(host, 5353)),
            "t -> {host}:5353 (published, udp) must reach b:53 and answer from {host}"
        );
        assert!(
            tcp_echo(&t.ns, &t2.ns, 90, sock(host, 9090)),
            "t -> {host}:9090 (published by l2tunnel t2) must reach t2:90 and answer"
        );
    }
    let seen = tcp_reaches(&t.ns, &b.ns, 80, sock(LAN_HOST, 8080)).map(|p| p.ip());
    assert!(
        seen.is_some_and(|ip| ip != std::net::IpAddr::from(t.ip)),
        "b sees the hairpin masqueraded to a host address, not t: {seen:?}"
    );
    delete_rule(
        h.host_name(),
        "bulkhead_net",
        "routing_mark",
        "published ports are delivered by the host",
    );
    assert!(
        !tcp_echo(&t.ns, &b.ns, 80, sock(LAN_HOST, 8080)),
        "weakened (DNATed connections not routed by main): the hairpin must fail"
    );
}
