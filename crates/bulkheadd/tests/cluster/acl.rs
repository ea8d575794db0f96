//! ACLs at both points hold across hosts (spec §3, §10: remote addresses
//! of other nodes' endpoints work in rules like any address).
//!
//! A block of TCP from node-a's endpoint to node-b's, first host-type (the
//! endpoint's firewall on node-b), then switch-type (node-b's switch port):
//! each stops node-a's connection and leaves node-c's through (the rule is
//! about the remote address). Weakened: the point's `drop` deleted with
//! `nft` from its `drop_in` chain, the same connection gets through — the
//! probe can fail.

use bulkhead_testkit::cmd::nft;
use bulkhead_testkit::probe::tcp_echo;

use crate::world::{cluster, ep, mesh, network_everywhere, overlay, Ep};

/// Deletes the bare `drop` rule of chain `drop_in` of `inet table` in the
/// namespace `ns_name`: every block at that point then lets packets pass.
fn delete_drop(ns_name: &str, table: &str) {
    let list = nft(ns_name, &["-a", "list", "chain", "inet", table, "drop_in"]);
    let handle = list
        .lines()
        .find(|l| l.trim_start().starts_with("drop "))
        .and_then(|l| l.rsplit("# handle ").next())
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|| panic!("no drop in {table} drop_in of {ns_name}:\n{list}"));
    nft(
        ns_name,
        &[
            "delete", "rule", "inet", table, "drop_in", "handle", &handle,
        ],
    );
}

fn connects(from: &Ep, to: &Ep, port: u16) -> bool {
    tcp_echo(&from.ns, &to.ns, port, to.addr(port))
}

#[test]
#[ignore = "needs the cluster product of branch cluster"]
fn acls_hold_at_both_points_across_hosts() {
    let Some(c) = cluster(false) else { return };
    let [a, b, h3] = &c.hosts[..] else {
        unreachable!()
    };
    overlay(b, "ov", "10.211.0.0/24", 4211);
    network_everywhere(&c, "ov");
    let (ea, eb, ec) = (ep(a, "ov", "ea"), ep(b, "ov", "eb"), ep(h3, "ov", "ec"));
    let failures = mesh(&[ea.clone(), eb.clone(), ec.clone()], 7400, true);
    assert!(failures.is_empty(), "before any rule: {failures:?}");

    let eb_ns = eb
        .ns
        .file_name()
        .and_then(|n| n.to_str())
        .expect("ns name")
        .to_owned();
    for (rule_type, port, ns, table) in [
        ("host", 7501, eb_ns.as_str(), "bulkhead_fw"),
        ("switch", 7502, b.ns_name(), "bulkhead"),
    ] {
        let p = port.to_string();
        let remote = ea.ip.to_string();
        b.ok(&[
            "acl",
            "add",
            "eb",
            "--direction",
            "in",
            "--action",
            "block",
            "--protocol",
            "tcp",
            "--local-ports",
            &p,
            "--remote-addresses",
            &remote,
            "--priority",
            "100",
            "--rule-type",
            rule_type,
        ]);
        assert!(
            !connects(&ea, &eb, port),
            "{rule_type}: ea (node-a) -> eb:{port} blocked"
        );
        assert!(
            connects(&ec, &eb, port),
            "{rule_type}: ec (node-c) -> eb:{port} still allowed"
        );
        delete_drop(ns, table);
        assert!(
            connects(&ea, &eb, port),
            "weakened ({rule_type} drop deleted): ea -> eb:{port} connects"
        );
    }
}
