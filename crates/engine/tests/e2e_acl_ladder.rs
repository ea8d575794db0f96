//! End-to-end test of an ACL ladder mixing remote addresses, protocols,
//! single ports, port lists and ranges at several priorities — the shape
//! the two-level encoding (address map → region chains, see
//! `docs/nftables.md`) compiles — with rules added and removed: the engine
//! on the real kernel inside a throwaway host namespace, real TCP/UDP
//! between endpoint namespaces. Needs root (loud skip otherwise; fails
//! under `CI=true`).

mod common;

use common::*;

/// Three endpoints A, C (clients) and B (server) on one nat network. B's
/// inbound ACL mixes remote addresses, protocols, single ports and ranges
/// at different priorities:
///
/// | prio | action | proto | remote | local ports |
/// |--:|:--|:--|:--|:--|
/// | 100 | allow | tcp | A/32 | 85 |
/// | 200 | block | tcp | A/32 | 81-90 |
/// | 300 | block | udp | subnet/24 | 53 |
/// | 400 | block | tcp | C/32 | 80,443 |
/// | 500 | allow | any | A/32 | — |
///
/// Expects, from A: tcp 85 arrives (allow beats the range below it), tcp 86
/// does not (range), tcp 91 arrives, udp 53 does not (the /24 rule covers A
/// too), udp 54 arrives. From C: tcp 80 does not, tcp 85 arrives (A's rules
/// are not C's), udp 53 does not. Then the A/32 range rule is removed:
/// tcp 86 from A arrives, C's rules are untouched (tcp 80 still blocked);
/// and a block on A/32 for all tcp added at priority 50 stops tcp 85 too.
/// Throughout, `nft list ruleset` (the operator's view) reads B's
/// namespace without error.
#[test]
fn address_protocol_port_ladder_on_the_real_kernel() {
    let Some(h) = Harness::new("ladder") else {
        return;
    };
    h.nat_network("n1", "10.61.21.0/24", None);
    let a = h.endpoint("a", "n1", &[], None);
    let c = h.endpoint("c", "n1", &[], None);
    let b = h.endpoint("b", "n1", &[], None);
    let a32 = format!("{}/32", a.ip);
    let c32 = format!("{}/32", c.ip);
    h.acl(&b, rule("allow", "in", "tcp", Some("85"), Some(&a32), 100));
    let range = h.acl(
        &b,
        rule("block", "in", "tcp", Some("81-90"), Some(&a32), 200),
    );
    h.acl(
        &b,
        rule("block", "in", "udp", Some("53"), Some("10.61.21.0/24"), 300),
    );
    h.acl(
        &b,
        rule("block", "in", "tcp", Some("80,443"), Some(&c32), 400),
    );
    h.acl(&b, rule("allow", "in", "any", None, Some(&a32), 500));

    let tcp = |from: &Ep, port: u16| tcp_reaches(&from.ns, &b.ns, port, b.addr(port)).is_some();
    let udp = |from: &Ep, port: u16| udp_arrives(&from.ns, None, &b.ns, b.addr(port));
    assert!(tcp(&a, 85), "A tcp 85: allow @100 beats the range @200");
    assert!(!tcp(&a, 86), "A tcp 86: blocked by the range @200");
    assert!(tcp(&a, 91), "A tcp 91: outside the range");
    assert!(!udp(&a, 53), "A udp 53: blocked by the /24 rule @300");
    assert!(udp(&a, 54), "A udp 54: no rule");
    assert!(!tcp(&c, 80), "C tcp 80: blocked @400");
    assert!(tcp(&c, 85), "C tcp 85: A's rules are not C's");
    assert!(!udp(&c, 53), "C udp 53: blocked by the /24 rule");

    nft_lists(&b);

    h.engine.remove_acl(&b.name, &range).expect("remove_acl");
    assert!(tcp(&a, 86), "A tcp 86 after the range rule is gone");
    assert!(!tcp(&c, 80), "C tcp 80 still blocked");

    h.acl(&b, rule("block", "in", "tcp", None, Some(&a32), 50));
    assert!(!tcp(&a, 85), "A tcp 85 after a block on all tcp @50");
    assert!(tcp(&c, 85), "C unaffected");
    nft_lists(&b);
}

/// `nft list ruleset` in the endpoint's namespace succeeds and shows the
/// host firewall table.
fn nft_lists(ep: &Ep) {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &ep.ns_name, "nft", "list", "ruleset"])
        .output()
        .expect("run nft (the nftables package)");
    assert!(
        out.status.success(),
        "nft list ruleset in {}: {}",
        ep.ns_name,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("table inet bulkhead_fw"));
}
