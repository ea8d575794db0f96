//! ACLs at both points hold across hosts (spec §3, §10: remote addresses
//! of other nodes' endpoints work in rules like any address).
//!
//! Two blocks of TCP from node-a's endpoint to node-b's, one host-type (the
//! endpoint's firewall on node-b), one switch-type (node-b's switch port),
//! each on its own port: each stops node-a's connection and lets node-c's
//! through (the rule is about the remote address). Weakened: with node-b's
//! bulkheadd killed (it puts a tampered host firewall back at once; the
//! rules hold without it), the point's `drop` is deleted with `nft` from
//! its `drop_in` chain, and that point's connection gets through while the
//! other point still holds — each probe can fail.

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
fn acls_hold_at_both_points_across_hosts() {
    let Some(mut c) = cluster(false) else { return };
    overlay(&c.hosts[1], "ov", "10.211.0.0/24", 4211);
    network_everywhere(&c, "ov");
    let ea = ep(&c.hosts[0], "ov", "ea");
    let eb = ep(&c.hosts[1], "ov", "eb");
    let ec = ep(&c.hosts[2], "ov", "ec");
    let failures = mesh(&[ea.clone(), eb.clone(), ec.clone()], 7400, true);
    assert!(failures.is_empty(), "before any rule: {failures:?}");

    let eb_ns = eb
        .ns
        .file_name()
        .and_then(|n| n.to_str())
        .expect("ns name")
        .to_owned();
    let b_ns = c.hosts[1].ns_name().to_owned();
    // (rule type, port, where its drop is: namespace, table)
    let points = [
        ("host", 7501, eb_ns.as_str(), "bulkhead_fw"),
        ("switch", 7502, b_ns.as_str(), "bulkhead"),
    ];
    let remote = ea.ip.to_string();
    for (rule_type, port, _, _) in points {
        let p = port.to_string();
        c.hosts[1].ok(&[
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
    }
    for (rule_type, port, _, _) in points {
        assert!(
            !connects(&ea, &eb, port),
            "{rule_type}: ea (node-a) -> eb:{port} blocked"
        );
        assert!(
            connects(&ec, &eb, port),
            "{rule_type}: ec (node-c) -> eb:{port} allowed"
        );
    }
    // Weakened, one point at a time. bulkheadd puts a tampered host
    // firewall back at once, so node-b's daemon is killed first: the rules
    // hold without it (a crash opens nothing), and a deleted drop opens
    // its own point only.
    c.hosts[1].kill9();
    for (rule_type, port, _, _) in points {
        assert!(
            !connects(&ea, &eb, port),
            "{rule_type}: blocked, node-b's daemon down"
        );
    }
    let [(host, host_port, host_ns, host_table), (sw, sw_port, sw_ns, sw_table)] = points;
    delete_drop(host_ns, host_table);
    assert!(
        connects(&ea, &eb, host_port),
        "weakened ({host} drop deleted): eb:{host_port}"
    );
    assert!(
        !connects(&ea, &eb, sw_port),
        "the {sw} point holds alone: eb:{sw_port}"
    );
    delete_drop(sw_ns, sw_table);
    assert!(
        connects(&ea, &eb, sw_port),
        "weakened ({sw} drop deleted): eb:{sw_port}"
    );
}
