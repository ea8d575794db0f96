//! End-to-end tests of per-rule counters (spec §12: every rule of every
//! point counts packets and bytes; `acl ls --stats`), on the real kernel.
//!
//! Endpoint `a` sends controlled probes to endpoint `b`, which carries
//! custom rules: N UDP datagrams that a custom allow decides, M that a
//! custom block decides, K GRE packets that the default profile's
//! `current:in:block-other` decides (nothing else in the test sends GRE),
//! each UDP datagram from a fresh socket (a new flow: never the `stateful`
//! rule). On l2bridge both of `b`'s points are checked (switch port and
//! host firewall), on nat the host firewall alone. Counters are the
//! engine's [`Engine::acl_counters`], read over netlink from the kernel;
//! they must equal the packets sent, and bytes must be the packets' IP
//! lengths. Then a rule is added to another list and the counts must stay.

mod common;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use bulkhead_dataplane::netns;
use bulkhead_engine::RuleCounters;
use bulkhead_model::AclRuleSpec;
use common::*;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

const UPLINK_L2: &str = "bhtc0";
/// UDP payload bytes of a probe (IP length 20 + 8 + this).
const PAYLOAD: usize = 32;
const GRE: i32 = 47;

/// `n` UDP datagrams from `from_ns` to `to`, each from its own socket (its
/// own source port: a new flow).
fn send_udp(from_ns: &Path, to: SocketAddr, n: usize) {
    netns::run_in(Some(from_ns), || {
        for _ in 0..n {
            let s = UdpSocket::bind(("0.0.0.0", 0)).expect("bind udp");
            s.send_to(&[7u8; PAYLOAD], to).expect("send udp");
        }
    })
    .expect("enter namespace");
}

/// `n` raw GRE packets (an empty GRE header) from `from_ns` to `to`.
fn send_gre(from_ns: &Path, to: Ipv4Addr, n: usize) {
    netns::run_in(Some(from_ns), || {
        let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(GRE))).expect("raw");
        for _ in 0..n {
            s.send_to(
                &[0u8, 0, 0x08, 0],
                &SockAddr::from(SocketAddrV4::new(to, 0)),
            )
            .expect("send gre");
        }
    })
    .expect("enter namespace");
}

/// `(packets, bytes)` of one row.
fn row(rows: &[RuleCounters], point: &str, rule: &str) -> (u64, u64) {
    rows.iter()
        .find(|r| format!("{:?}", r.point) == point && r.rule == rule)
        .map_or((u64::MAX, 0), |r| (r.packets, r.bytes))
}

/// Polls the counters until `want` holds or 3 s pass (packets cross veths
/// asynchronously); returns the last reading.
fn counters_when(
    h: &Harness,
    ep: &str,
    want: impl Fn(&[RuleCounters]) -> bool,
) -> Vec<RuleCounters> {
    let until = Instant::now() + Duration::from_secs(3);
    loop {
        let rows = h.engine.acl_counters(ep).expect("acl_counters");
        if want(&rows) || Instant::now() > until {
            return rows;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

const UDP_LEN: u64 = 20 + 8 + PAYLOAD as u64;
const GRE_LEN: u64 = 20 + 4;

/// One probe kind: what `from` sends, and the rows it must land in.
struct Probe<'a> {
    from: &'a Ep,
    /// UDP to this port, or GRE when `None`.
    port: Option<u16>,
    count: u64,
    /// `(point, rule)` rows that count these packets exactly.
    rows: &'a [(&'a str, &'a str)],
}

/// Sends every probe to `b`, waits until `b`'s counters reach what was
/// sent, and checks that they are exactly the packets and bytes sent.
/// Then adds an outbound rule and checks that these counters stay.
fn probe_and_check(h: &Harness, b: &Ep, probes: &[Probe<'_>]) {
    let mut want: std::collections::BTreeMap<(&str, &str), (u64, u64)> = Default::default();
    for p in probes {
        let len = if p.port.is_some() { UDP_LEN } else { GRE_LEN };
        for r in p.rows {
            let e = want.entry(*r).or_default();
            e.0 += p.count;
            e.1 += p.count * len;
        }
    }
    let before = h.engine.acl_counters(&b.name).expect("acl_counters");
    for (point, rule) in want.keys() {
        assert_eq!(row(&before, point, rule), (0, 0), "{before:#?}");
    }
    for p in probes {
        match p.port {
            Some(port) => send_udp(&p.from.ns, b.addr(port), p.count as usize),
            None => send_gre(&p.from.ns, b.ip, p.count as usize),
        }
    }
    let rows = counters_when(h, &b.name, |rows| {
        want.iter().all(|((p, r), (n, _))| row(rows, p, r).0 >= *n)
    });
    for ((point, rule), expected) in &want {
        assert_eq!(
            row(&rows, point, rule),
            *expected,
            "{point} {rule}: {rows:#?}"
        );
    }
    // An update elsewhere (an outbound rule) leaves these counters alone.
    h.acl(b, rule("block", "out", "udp", Some("7999"), None, 300));
    let after = h.engine.acl_counters(&b.name).expect("acl_counters");
    for (point, rule) in want.keys() {
        assert_eq!(
            row(&after, point, rule),
            row(&rows, point, rule),
            "{after:#?}"
        );
    }
}

/// Adds rule `id` to `b`: `action` at `rule_type`, inbound, UDP to `port`
/// (any protocol when `None`), from `remote` (anywhere when `None`).
fn add(
    h: &Harness,
    b: &Ep,
    id: &str,
    (action, rule_type, priority): (&str, &str, u16),
    port: Option<u16>,
    remote: Option<Ipv4Addr>,
) {
    h.acl(
        b,
        AclRuleSpec {
            id: Some(id.into()),
            action: action.into(),
            direction: "in".into(),
            protocol: port.map(|_| "udp".into()),
            local_ports: port.map(|p| p.to_string()),
            remote_addresses: remote.map(|r| format!("{r}/32")),
            rule_type: Some(rule_type.into()),
            priority: Some(priority.to_string()),
            ..Default::default()
        },
    );
}

/// l2bridge: at `b`'s switch port, rules without addresses (one
/// concatenated map: element counters); in its host firewall, rules on
/// `a`'s address (two-level: region-chain rule counters); GRE meets the
/// default profile's block-other in the host firewall. Each point counts
/// exactly what crossed it (the switch's block stops port 7002 before the
/// host firewall).
#[test]
fn l2bridge_counters_equal_the_packets_at_both_points() {
    let Some(h) = Harness::new("cnl2") else {
        return;
    };
    let _lan = Lan::attach(&h, "cnl2", UPLINK_L2, false);
    l2_network(
        &h,
        "b1",
        "l2bridge",
        LAN_SUBNET,
        Some("198.51.100.254"),
        UPLINK_L2,
        None,
    );
    let a = endpoint_at(&h, "a", "b1", "198.51.100.11");
    let b = endpoint_at(&h, "b", "b1", "198.51.100.12");
    add(
        &h,
        &b,
        "sw-allow",
        ("allow", "switch", 200),
        Some(7001),
        None,
    );
    add(
        &h,
        &b,
        "sw-block",
        ("block", "switch", 100),
        Some(7002),
        None,
    );
    add(
        &h,
        &b,
        "fw-allow",
        ("allow", "host", 200),
        Some(7001),
        Some(a.ip),
    );
    add(&h, &b, "fw-block", ("block", "host", 100), Some(7003), None);
    let rx = udp_listen(&b.ns, 7001);
    probe_and_check(
        &h,
        &b,
        &[
            Probe {
                from: &a,
                port: Some(7001),
                count: 5,
                rows: &[("SwitchPort", "sw-allow"), ("HostFirewall", "fw-allow")],
            },
            Probe {
                from: &a,
                port: Some(7002),
                count: 4,
                rows: &[("SwitchPort", "sw-block")],
            },
            Probe {
                from: &a,
                port: Some(7003),
                count: 2,
                rows: &[("HostFirewall", "fw-block")],
            },
            Probe {
                from: &a,
                port: None,
                count: 3,
                rows: &[("HostFirewall", "current:in:block-other")],
            },
        ],
    );
    assert_eq!(received(&rx), 5, "the allowed datagrams arrived");
    let rows = h.engine.acl_counters(&b.name).expect("acl_counters");
    // What no switch rule decides meets the switch's default (GRE and port
    // 7003 at least; link-local IPv6 traffic may add more).
    assert!(
        row(&rows, "SwitchPort", "port:in:allow-all").0 >= 5,
        "{rows:#?}"
    );
}

/// nat: the host firewall is the only point. A rule on `a`'s address alone
/// (any protocol) decides in the lead map itself (an element counter);
/// GRE from a third endpoint meets the default block-other.
#[test]
fn nat_counters_equal_the_packets_at_the_host_firewall() {
    let Some(h) = Harness::new("cnnat") else {
        return;
    };
    h.nat_network("n1", "10.213.0.0/24", None);
    let a = h.endpoint("a", "n1", &[], None);
    let b = h.endpoint("b", "n1", &[], None);
    let c = h.endpoint("c", "n1", &[], None);
    add(
        &h,
        &b,
        "fw-allow",
        ("allow", "host", 200),
        Some(7001),
        Some(a.ip),
    );
    add(&h, &b, "fw-block", ("block", "host", 100), Some(7002), None);
    add(&h, &b, "fw-any-a", ("block", "host", 300), None, Some(a.ip));
    let rx = udp_listen(&b.ns, 7001);
    probe_and_check(
        &h,
        &b,
        &[
            Probe {
                from: &a,
                port: Some(7001),
                count: 5,
                rows: &[("HostFirewall", "fw-allow")],
            },
            Probe {
                from: &a,
                port: Some(7002),
                count: 4,
                rows: &[("HostFirewall", "fw-block")],
            },
            Probe {
                from: &a,
                port: None,
                count: 3,
                rows: &[("HostFirewall", "fw-any-a")],
            },
            Probe {
                from: &c,
                port: None,
                count: 2,
                rows: &[("HostFirewall", "current:in:block-other")],
            },
        ],
    );
    assert_eq!(received(&rx), 5, "the allowed datagrams arrived");
    let rows = h.engine.acl_counters(&b.name).expect("acl_counters");
    assert!(
        rows.iter()
            .all(|r| format!("{:?}", r.point) == "HostFirewall"),
        "{rows:#?}"
    );
}

/// Datagrams waiting on `rx`.
fn received(rx: &UdpSocket) -> usize {
    rx.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let mut buf = [0u8; 64];
    let mut n = 0;
    while rx.recv_from(&mut buf).is_ok() {
        n += 1;
    }
    n
}
