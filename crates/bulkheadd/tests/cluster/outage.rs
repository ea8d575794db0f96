//! etcd stopped and started again (spec §10, issue 15 item 5): existing
//! traffic flows; an operation that needs etcd fails naming the etcd
//! endpoints, or succeeds from a block the node holds and is published
//! when etcd returns; nothing duplicated, nothing lost.

use bulkhead_testkit::cli::endpoint;

use crate::world::{
    all_endpoints, cluster, ep, ip_of, listing, mesh, network_everywhere, overlay, remote_entries,
    wait_for, wait_state, Ep,
};

#[test]
fn etcd_outage_keeps_traffic_flowing_and_loses_nothing() {
    let Some(mut c) = cluster(false) else { return };
    overlay(&c.hosts[0], "ov", "10.214.0.0/24", 4214);
    network_everywhere(&c, "ov");
    // A second network where no node holds a block yet.
    overlay(&c.hosts[0], "ov3", "10.219.0.0/24", 4219);
    network_everywhere(&c, "ov3");
    let mut eps: Vec<Ep> = vec![
        ep(&c.hosts[0], "ov", "ea"),
        ep(&c.hosts[1], "ov", "eb"),
        ep(&c.hosts[2], "ov", "ec"),
    ];
    let failures = mesh(&eps, 7800, true);
    assert!(failures.is_empty(), "before: {failures:?}");
    let url = c.etcd.url();

    c.etcd.stop();
    let failures = mesh(&eps, 7810, false);
    assert!(failures.is_empty(), "etcd down: {failures:?}");

    // A new cluster network needs etcd: refused, naming the endpoints.
    let a = &c.hosts[0];
    let err = a.fails(&[
        "network",
        "create",
        "ov2",
        "--driver",
        "overlay",
        "--subnet",
        "10.215.0.0/24",
        "--uplink",
        bulkhead_testkit::cluster::UNDERLAY_DEV,
        "--vni",
        "4215",
    ]);
    assert!(err.contains(&url), "error names the etcd endpoints: {err}");
    assert!(
        !a.names("network").contains(&"ov2".to_owned()),
        "nothing stored"
    );

    // An endpoint: from a held block (published later), or refused naming
    // the endpoints with nothing stored.
    a.ok(&["namespace", "create", "ed"]);
    let out = a.run(&[
        "--output",
        "json",
        "endpoint",
        "create",
        "ed",
        "--network",
        "ov",
        "--namespace",
        "ed",
    ]);
    let created = out.status.success();
    if created {
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("endpoint json");
        eps.push(Ep {
            name: "ed".into(),
            node: a.node.clone(),
            ip: ip_of(&v),
            mac: v["mac_address"].as_str().unwrap_or_default().to_owned(),
            ns: format!("/run/netns/{}ed", a.prefix).into(),
        });
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&url), "error names the etcd endpoints: {err}");
        assert!(
            !a.names("endpoint").contains(&"ed".to_owned()),
            "nothing stored"
        );
    }
    eprintln!(
        "endpoint create while etcd was down: {}",
        if created {
            "from a held block"
        } else {
            "refused"
        }
    );

    // No held block of ov3 on node-b: a claim needs etcd, so refused,
    // naming the endpoints, nothing stored.
    let b = &c.hosts[1];
    b.ok(&["namespace", "create", "ef"]);
    let err = b.fails(&[
        "endpoint",
        "create",
        "ef",
        "--network",
        "ov3",
        "--namespace",
        "ef",
    ]);
    assert!(err.contains(&url), "error names the etcd endpoints: {err}");
    assert!(
        !b.names("endpoint").contains(&"ef".to_owned()),
        "nothing stored"
    );

    c.etcd.start();
    for h in &c.hosts {
        for n in ["node-a", "node-b", "node-c"] {
            wait_state(h, n, "ready", 15);
        }
    }
    // Published now, and reachable from every node; every endpoint is
    // listed once on every node, with one address each.
    let failures = mesh(&eps, 7830, true);
    assert!(failures.is_empty(), "after etcd returned: {failures:?}");
    let want = listing(&eps);
    for h in &c.hosts {
        wait_for(&format!("every endpoint on {}", h.node), 10, || {
            (all_endpoints(h) == want).then_some(())
        });
    }
    let mut ips: Vec<_> = want.iter().map(|w| w.2).collect();
    ips.dedup();
    assert_eq!(ips.len(), want.len(), "an address twice: {want:?}");
    // And what was refused works now.
    overlay(&c.hosts[1], "ov2", "10.215.0.0/24", 4215);
    network_everywhere(&c, "ov2");
    let e = endpoint(&c.hosts[2], "ov2", "ee", "ee");
    assert!(ip_of(&e).to_string().starts_with("10.215.0."), "{e}");
    let f = c.hosts[1].json(&[
        "endpoint",
        "create",
        "ef",
        "--network",
        "ov3",
        "--namespace",
        "ef",
    ]);
    assert!(ip_of(&f).to_string().starts_with("10.219.0."), "{f}");
}

/// Sends `sig` (`STOP`, `CONT`) to host `h`'s daemon.
fn signal(h: &bulkhead_testkit::cluster::Host, sig: &str) {
    bulkhead_testkit::cmd::checked(
        std::process::Command::new("kill").args([&format!("-{sig}"), &h.pid().to_string()]),
        &format!("kill -{sig}"),
    );
}

/// A node that was frozen (SIGSTOP) across an etcd restart, while the
/// others created and removed endpoints and etcd compacted its history,
/// catches up when it runs again: it cannot resume its watch from where it
/// stopped (compacted), so it lists again — the new endpoint programmed,
/// the removed one withdrawn, `ready` again.
#[test]
fn a_node_that_missed_changes_and_a_compaction_catches_up() {
    let Some(mut c) = cluster(false) else { return };
    overlay(&c.hosts[0], "ov", "10.222.0.0/24", 4222);
    network_everywhere(&c, "ov");
    let ea = ep(&c.hosts[0], "ov", "ea");
    let eb = ep(&c.hosts[1], "ov", "eb");
    let ec = ep(&c.hosts[2], "ov", "ec");
    let failures = mesh(&[ea.clone(), eb.clone(), ec.clone()], 8000, true);
    assert!(failures.is_empty(), "before: {failures:?}");

    signal(&c.hosts[2], "STOP");
    c.etcd.stop();
    c.etcd.start();
    let ed = ep(&c.hosts[0], "ov", "ed");
    c.hosts[0].ok(&["endpoint", "rm", "ea"]);
    wait_for("node-b sees ed and not ea", 15, || {
        let l = all_endpoints(&c.hosts[1]);
        (l.iter().any(|e| e.0 == "ed") && !l.iter().any(|e| e.0 == "ea")).then_some(())
    });
    let ns = c.hosts[0].ns_name().to_owned();
    let status = c.etcd.ctl_ok(&ns, &["endpoint", "status", "-w", "json"]);
    let v: serde_json::Value = serde_json::from_str(&status).expect("status json");
    let rev = v[0]["Status"]["header"]["revision"]
        .as_i64()
        .expect("revision");
    c.etcd.ctl_ok(&ns, &["compact", &rev.to_string()]);
    wait_state(&c.hosts[0], "node-c", "lost", 15);

    signal(&c.hosts[2], "CONT");
    wait_state(&c.hosts[0], "node-c", "ready", 15);
    let want = all_endpoints(&c.hosts[1]);
    wait_for("node-c lists what node-b lists", 15, || {
        (all_endpoints(&c.hosts[2]) == want).then_some(())
    });
    let (neigh, fdb) = remote_entries(&c.hosts[2], ed.ip, &ed.mac);
    assert!(
        !neigh.is_empty() && !fdb.is_empty(),
        "ed programmed on node-c: {neigh:?} {fdb:?}"
    );
    let (neigh, fdb) = remote_entries(&c.hosts[2], ea.ip, &ea.mac);
    assert!(
        neigh.is_empty() && fdb.is_empty(),
        "ea withdrawn on node-c: {neigh:?} {fdb:?}"
    );
    let failures = mesh(&[eb, ec, ed], 8010, true);
    assert!(failures.is_empty(), "after: {failures:?}");
}
