//! Attacks: ports (see `docs/security.md`, spec §9).
//!
//! A tenant that may publish ports (a pod author through CNI
//! `portMappings.hostIP`, an API user through `--publish`) tries to capture
//! traffic to an address that is not the host's: another endpoint's, or the
//! cloud metadata service's `169.254.169.254`. bulkhead stops it twice: the
//! engine refuses the mapping (`publish[i].host_ip`), and the DNAT dispatch
//! only ever matches local destinations (`fib daddr type local`), so even a
//! mapping element for a foreign address in the table captures nothing.
//! Each test first shows the capture working with the dispatch rule built
//! as before (added by the test with `nft`), then stopped.
//!
//! `reach` (a nat endpoint reaches the host only at its gateway) and
//! `isolation` (networks cannot reach each other, IPv4 and IPv6) follow.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use crate::common::{ip, Ep, Harness};

mod isolation;
mod probe;
mod reach;

use crate::common::nft;
use probe::lands;

/// The engine refuses publishing `mapping` on a new endpoint; the error
/// names the field and `value`, and nothing of it reaches the table.
fn refused(h: &Harness, ns: &str, mapping: &str, value: &str) {
    let err = h
        .engine
        .create_endpoint(bulkhead_model::EndpointSpec {
            name: "evil".into(),
            network: "n1".into(),
            namespace: ns.into(),
            publish: vec![mapping.into()],
            ..Default::default()
        })
        .expect_err("a mapping to an address that is not the host's must be refused");
    let line = err.to_string();
    assert!(
        line.starts_with(&format!(
            "invalid publish[0].host_ip \"{value}\": an address of this host"
        )),
        "{line}"
    );
    assert!(h.engine.endpoint("evil").is_err(), "nothing stored");
    let table = nft(h.host_name(), &["list", "table", "inet", "bulkhead_net"]);
    assert!(
        !table.contains(&format!("{value} . tcp")),
        "nothing programmed: {table}"
    );
}

/// Puts a mapping element for `addr:port` to `ep`'s first mapping's chain
/// into `ports_ip4`, as if it had been accepted (or its address had left
/// the host since).
fn inject(h: &Harness, ep: &Ep, addr: Ipv4Addr, port: u16) {
    let id = h.engine.endpoint(&ep.name).expect("endpoint").id;
    let elem = format!(
        "{{ {addr} . tcp . {port} : jump pm_{}_0 }}",
        id.short_hex(12)
    );
    nft(
        h.host_name(),
        &["add", "element", "inet", "bulkhead_net", "ports_ip4", &elem],
    );
}

/// The weakened setup: the `ports_ip4` dispatch as it was before, without
/// `fib daddr type local`, in prerouting and output.
fn weaken(h: &Harness) {
    for chain in ["prerouting", "output"] {
        nft(
            h.host_name(),
            &[
                "add",
                "rule",
                "inet",
                "bulkhead_net",
                chain,
                "meta",
                "l4proto",
                "{",
                "tcp,",
                "udp",
                "}",
                "ip",
                "daddr",
                ".",
                "meta",
                "l4proto",
                ".",
                "th",
                "dport",
                "vmap",
                "@ports_ip4",
            ],
        );
    }
}

/// From each of `clients`, a connection to `to` lands at `expect` (0: the
/// attacker's listener `attacker`, 1: the real destination `real`).
fn assert_lands(
    clients: &[(&str, &Path)],
    to: SocketAddr,
    attacker: (&Path, u16),
    real: (&Path, u16),
    expect: usize,
    when: &str,
) {
    for (who, ns) in clients {
        let got = lands(ns, to, &[attacker, real]);
        let want = ["the attacker", "the real destination"][expect];
        assert_eq!(
            got,
            Some(expect),
            "{when}: {who} -> {to} must land at {want}"
        );
    }
}

/// Spec §9 "published ports only ever capture traffic to the host's own
/// addresses". EB (the attacker) publishes 8080:80 legitimately and asks
/// for `V:18080:80`, V being another endpoint. Expects the engine to refuse
/// it (`publish[0].host_ip`); with the element forced into the table,
/// connections to V:18080 from a container, the host and the outside still
/// reach V; with the dispatch rule as before (no local-destination check)
/// they land in EB: the attack the check stops.
#[test]
fn published_port_cannot_capture_another_address() {
    let Some(h) = Harness::new("pcap") else {
        return;
    };
    h.nat_network("n1", "10.64.1.0/24", None);
    let v = h.endpoint("v", "n1", &[], None);
    let c = h.endpoint("c", "n1", &[], None);
    let eb = h.endpoint("eb", "n1", &["8080:80"], None);
    refused(&h, "eb", &format!("{}:18080:80", v.ip), &v.ip.to_string());

    inject(&h, &eb, v.ip, 18080);
    let clients = [
        ("a container", c.ns.as_path()),
        ("the host", h.host()),
        ("the outside", h.outside()),
    ];
    let to = SocketAddr::from((v.ip, 18080));
    let (attacker, real) = ((eb.ns.as_path(), 80), (v.ns.as_path(), 18080));
    assert_lands(&clients, to, attacker, real, 1, "bulkhead");
    weaken(&h);
    assert_lands(&clients, to, attacker, real, 0, "weakened");
}

/// Spec §9, the metadata service: the outside peer holds 169.254.169.254
/// (routed there by the host, as a cloud's would be). EB asks to publish
/// `169.254.169.254:80:80`. Expects the engine to refuse it; with the
/// element forced in, a container's and the host's requests to
/// 169.254.169.254:80 still reach the service; with the dispatch rule as
/// before, they land in EB.
#[test]
fn published_port_cannot_capture_the_metadata_service() {
    let Some(h) = Harness::new("pmeta") else {
        return;
    };
    h.nat_network("n1", "10.64.2.0/24", None);
    let v = h.endpoint("v", "n1", &[], None);
    let eb = h.endpoint("eb", "n1", &["8080:80"], None);
    let md = Ipv4Addr::new(169, 254, 169, 254);
    let out = h
        .outside()
        .file_name()
        .and_then(|n| n.to_str())
        .expect("name");
    ip(&["-n", out, "addr", "add", "169.254.169.254/32", "dev", "lo"]);
    ip(&[
        "-n",
        h.host_name(),
        "route",
        "add",
        "169.254.169.254/32",
        "via",
        "192.0.2.2",
    ]);
    refused(&h, "eb", "169.254.169.254:80:80", "169.254.169.254");

    inject(&h, &eb, md, 80);
    let clients = [("a container", v.ns.as_path()), ("the host", h.host())];
    let to = SocketAddr::from((md, 80));
    let (attacker, real) = ((eb.ns.as_path(), 80), (h.outside(), 80));
    assert_lands(&clients, to, attacker, real, 1, "bulkhead");
    weaken(&h);
    assert_lands(&clients, to, attacker, real, 0, "weakened");
}

/// The check keeps what is allowed working: a mapping bound to a host
/// address (the uplink's, found by the real address dump) and one bound
/// to `0.0.0.0` (every host address) both carry the outside peer's
/// connections to A.
#[test]
fn published_port_on_a_host_address_works() {
    let Some(h) = Harness::new("phost") else {
        return;
    };
    h.nat_network("n1", "10.64.7.0/24", None);
    let a = h.endpoint("a", "n1", &["192.0.2.1:8080:80", "0.0.0.0:8081:81"], None);
    let uplink = |port| SocketAddr::from((IpAddr::from([192, 0, 2, 1]), port));
    for port in [8080, 8081] {
        let cport = port - 8000;
        assert_eq!(
            lands(h.outside(), uplink(port), &[(a.ns.as_path(), cport)]),
            Some(0),
            "outside -> 192.0.2.1:{port} reaches A:{cport}"
        );
    }
}
