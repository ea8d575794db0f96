//! A daemon crash never cuts containers off; `node rm` is what withdraws a
//! node's endpoints.

use std::time::{Duration, Instant};

use bulkhead_testkit::probe::{arrives, ProbeKind};

use crate::world::{
    all_endpoints, cluster, ep, listing, mesh, network_everywhere, overlay, remote_entries,
    state_of, wait_for, wait_state, wait_until, TTL,
};

/// The probes of a "still forwarding" check, one all-pairs round.
fn forwarding(eps: &[crate::world::Ep], port: u16) {
    let failures = mesh(eps, port, false);
    assert!(failures.is_empty(), "{failures:?}");
}

#[test]
fn kill_9_keeps_forwarding_until_lost_and_after_and_restart_is_ready_again() {
    let Some(mut c) = cluster(false) else { return };
    overlay(&c.hosts[0], "ov", "10.212.0.0/24", 4212);
    network_everywhere(&c, "ov");
    let mut eps = vec![
        ep(&c.hosts[0], "ov", "ea"),
        ep(&c.hosts[1], "ov", "eb"),
        ep(&c.hosts[2], "ov", "ec"),
    ];
    let failures = mesh(&eps, 7600, true);
    assert!(failures.is_empty(), "before the crash: {failures:?}");
    // A ready node cannot be removed.
    let err = c.hosts[0].fails(&["node", "rm", "node-b"]);
    assert!(err.contains("node-b") && err.contains("ready"), "{err}");

    c.hosts[1].kill9();
    let crashed = Instant::now();
    forwarding(&eps, 7610);
    assert!(
        crashed.elapsed() < Duration::from_secs(2),
        "probes took the whole TTL {TTL}"
    );
    for h in [&c.hosts[0], &c.hosts[2]] {
        wait_state(h, "node-b", "lost", 15);
    }
    let lost = c.hosts[0].log() + &c.hosts[2].log();
    assert!(
        lost.contains("node-b") && lost.contains("lost"),
        "no log of the loss: {lost}"
    );
    // Lost, not removed: its endpoint stays programmed everywhere.
    forwarding(&eps, 7620);
    assert!(all_endpoints(&c.hosts[0]).iter().any(|e| e.0 == "eb"));

    // Restart on the same state dir: ready again, everything back, and
    // what changed while it was down (a new endpoint) is published.
    c.hosts[1].spawn();
    for h in &c.hosts {
        wait_state(h, "node-b", "ready", 15);
    }
    eps.push(ep(&c.hosts[1], "ov", "ed"));
    let failures = mesh(&eps, 7630, true);
    assert!(failures.is_empty(), "after the restart: {failures:?}");
    let want = listing(&eps);
    for h in &c.hosts {
        assert_eq!(all_endpoints(h), want, "on {}", h.node);
    }
}

#[test]
fn node_rm_of_a_stopped_node_withdraws_its_endpoints_everywhere() {
    let Some(mut c) = cluster(false) else { return };
    overlay(&c.hosts[0], "ov", "10.213.0.0/24", 4213);
    network_everywhere(&c, "ov");
    let eps = vec![
        ep(&c.hosts[0], "ov", "ea"),
        ep(&c.hosts[1], "ov", "eb"),
        ep(&c.hosts[2], "ov", "ec"),
    ];
    let failures = mesh(&eps, 7700, true);
    assert!(failures.is_empty(), "before: {failures:?}");
    let ec = eps[2].clone();
    for h in &c.hosts[..2] {
        let (neigh, fdb) = remote_entries(h, ec.ip, &ec.mac);
        assert!(
            !neigh.is_empty() && !fdb.is_empty(),
            "ec programmed on {}",
            h.node
        );
    }

    c.hosts[2].kill9();
    wait_state(&c.hosts[0], "node-c", "lost", 15);
    c.hosts[0].ok(&["node", "rm", "node-c"]);
    for h in &c.hosts[..2] {
        wait_for(&format!("node-c gone on {}", h.node), 10, || {
            state_of(h, "node-c").is_none().then_some(())
        });
        let gone = wait_until(10, || {
            let (neigh, fdb) = remote_entries(h, ec.ip, &ec.mac);
            neigh.is_empty() && fdb.is_empty()
        });
        assert!(
            gone,
            "ec withdrawn on {}: {:?}",
            h.node,
            remote_entries(h, ec.ip, &ec.mac)
        );
        assert!(!all_endpoints(h).iter().any(|e| e.0 == "ec"), "{}", h.node);
    }
    // Its endpoints' keys and address blocks are gone from etcd.
    let ns = c.hosts[0].ns_name().to_owned();
    let left = c.etcd.ctl_ok(
        &ns,
        &[
            "get",
            "--prefix",
            "--keys-only",
            "/bulkhead/v1/endpoints/node-c/",
        ],
    );
    assert!(left.trim().is_empty(), "{left}");
    let blocks = c
        .etcd
        .ctl_ok(&ns, &["get", "--prefix", "/bulkhead/v1/blocks/ov/"]);
    assert!(
        !blocks.contains("\"node-c\""),
        "node-c still holds blocks: {blocks}"
    );
    // The survivors still talk; node-c's endpoint (its data plane still
    // up on node-c) is out of their reach.
    forwarding(&eps[..2], 7710);
    for e in &eps[..2] {
        let got = arrives(&e.ns, &ec.ns, ec.ip, ProbeKind::Icmp).expect("probe");
        assert!(!got, "{} still reaches the removed node's ec", e.name);
    }
}
