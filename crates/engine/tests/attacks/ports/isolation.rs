//! Attack: an endpoint reaches an endpoint of another network through the
//! host's routing (spec §9), over IPv4 and over IPv6.

use std::net::SocketAddr;
use std::path::Path;

use crate::common::Harness;

use super::probe::{all, endpoint_any, reaches, sysctl};
use crate::common::delete_rule;

/// TCP both ways between `x` and `y` (namespace, address), concurrently:
/// whether each direction connected.
fn both_ways(x: (&Path, SocketAddr), y: (&Path, SocketAddr)) -> Vec<bool> {
    all(vec![
        Box::new(move || reaches(x.0, y.0, y.1)),
        Box::new(move || reaches(y.0, x.0, x.1)),
    ])
}

/// Two nat networks of `family` ("ipv4"/"ipv6") with subnets `s1`, `s2`,
/// one endpoint each (A, B). A reaches the host at its gateway (the path
/// works); TCP between A and B is blocked both ways by bulkhead and
/// connects once the test deletes the one forward rule "networks are
/// isolated (`family`)" (the weakened setup).
fn isolated(tag: &str, family: &str, s1: &str, s2: &str) {
    let Some(h) = Harness::new(tag) else { return };
    // An operator who routes IPv6 (bulkhead does not turn it on itself).
    sysctl(h.host_name(), "net.ipv6.conf.all.forwarding=1");
    for (name, subnet) in [("n1", s1), ("n2", s2)] {
        h.engine
            .create_network(bulkhead_model::NetworkSpec {
                name: name.into(),
                driver: "nat".into(),
                subnets: vec![subnet.into()],
                ..Default::default()
            })
            .unwrap_or_else(|e| panic!("network {name}: {e}"));
    }
    let a = endpoint_any(&h, "a", "n1");
    let b = endpoint_any(&h, "b", "n2");
    let (x, y) = (
        (a.ns.as_path(), SocketAddr::new(a.ip, 7100)),
        (b.ns.as_path(), SocketAddr::new(b.ip, 7101)),
    );
    let gateway = h.engine.network("n1").ok().and_then(|n| n.gateway);
    let gateway = SocketAddr::new(gateway.expect("n1 has a gateway"), 7102);
    assert!(
        reaches(&a.ns, h.host(), gateway),
        "{family}: A reaches its gateway {gateway} (the path works)"
    );
    assert_eq!(
        both_ways(x, y),
        [false, false],
        "{family}: n1 <-> n2 blocked"
    );
    delete_rule(
        h.host_name(),
        "bulkhead_net",
        "forward",
        &format!("networks are isolated ({family})"),
    );
    assert_eq!(
        both_ways(x, y),
        [true, true],
        "weakened: {family} n1 <-> n2 connects"
    );
}

/// Spec §9 "reaches an endpoint of another network": IPv4.
#[test]
fn nat_networks_are_isolated_ipv4() {
    isolated("iso4", "ipv4", "10.64.5.0/24", "10.64.6.0/24");
}

/// The same over IPv6 (IPv6-only nat networks, the host forwarding IPv6).
#[test]
fn nat_networks_are_isolated_ipv6() {
    isolated("iso6", "ipv6", "fd64:5::/64", "fd64:6::/64");
}
