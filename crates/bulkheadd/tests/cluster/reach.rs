//! Endpoints on three hosts reach each other over VXLAN; the overlay
//! network is a cluster object.

use crate::world::{
    all_endpoints, cluster, ep, listing, mesh, network_everywhere, overlay, remote_entries,
    wait_for,
};

#[test]
fn endpoints_on_three_hosts_reach_each_other_over_vxlan() {
    let Some(c) = cluster(false) else { return };
    let [a, b, h3] = &c.hosts[..] else {
        unreachable!()
    };
    // Made on node-a, listed and usable on every node.
    overlay(a, "ov", "10.210.0.0/24", 4210);
    network_everywhere(&c, "ov");
    let eps = vec![
        ep(a, "ov", "ea"),
        ep(a, "ov", "eb"),
        ep(b, "ov", "ec"),
        ep(h3, "ov", "ed"),
    ];
    let mut ips: Vec<_> = eps.iter().map(|e| e.ip).collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), eps.len(), "an address twice: {eps:?}");

    let failures = mesh(&eps, 7300, true);
    assert!(failures.is_empty(), "unreachable pairs: {failures:?}");

    // Every node lists every endpoint with its node.
    let want = listing(&eps);
    for h in &c.hosts {
        assert_eq!(
            all_endpoints(h),
            want,
            "endpoint ls --all-nodes on {}",
            h.node
        );
    }

    // The remote entries are programmed, not learned: node-a has a
    // permanent neighbour and an FDB entry to node-b's underlay address
    // for ec.
    let ec = &eps[2];
    let (neigh, fdb) = remote_entries(a, ec.ip, &ec.mac);
    assert!(
        neigh
            .iter()
            .any(|l| l.contains(&ec.mac) && l.contains("PERMANENT")),
        "{neigh:?}"
    );
    let vtep = format!("dst {}", b.addr);
    assert!(
        fdb.iter().any(|l| l.contains(&vtep)),
        "fdb of ec on node-a: {fdb:?}"
    );

    // Refused on node-c while node-a and node-b have endpoints on it,
    // though node-c has none left.
    h3.ok(&["endpoint", "rm", "ed"]);
    let err = h3.fails(&["network", "rm", "ov"]);
    assert!(err.contains("ov"), "{err}");
    assert!(h3.names("network").contains(&"ov".to_owned()));
    // Once the last endpoint is gone it goes, on every node.
    for (h, e) in [(a, "ea"), (a, "eb"), (b, "ec")] {
        h.ok(&["endpoint", "rm", e]);
    }
    wait_for("ov removable on node-c", 10, || {
        h3.run(&["network", "rm", "ov"])
            .status
            .success()
            .then_some(())
    });
    for h in &c.hosts {
        wait_for(&format!("ov gone from {}", h.node), 10, || {
            (!h.names("network").contains(&"ov".to_owned())).then_some(())
        });
    }
}
