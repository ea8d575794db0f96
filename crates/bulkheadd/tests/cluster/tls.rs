//! The cluster over TLS with client certificates (etcd `--client-cert-auth`,
//! certificates made by the test): three hosts work as over plain HTTP; a
//! node presenting a certificate of another CA never joins.

use crate::world::{cluster, ep, mesh, network_everywhere, nodes, overlay};
use bulkhead_testkit::cluster::{Host, UNDERLAY_DEV};

#[test]
fn a_tls_cluster_works_and_a_node_with_a_foreign_certificate_never_joins() {
    let Some(c) = cluster(true) else { return };
    assert!(c.etcd.url().starts_with("https://"));
    overlay(&c.hosts[1], "ov", "10.217.0.0/24", 4217);
    network_everywhere(&c, "ov");
    let eps: Vec<_> = c
        .hosts
        .iter()
        .zip(["ea", "eb", "ec"])
        .map(|(h, n)| ep(h, "ov", n))
        .collect();
    let failures = mesh(&eps, 7900, true);
    assert!(failures.is_empty(), "over TLS: {failures:?}");

    let tls = c.etcd.tls().expect("tls");
    let mut x = Host::new(&c.underlay, "node-x");
    x.extra_args = [
        "--etcd",
        &c.etcd.url(),
        "--etcd-cacert",
        &tls.ca.display().to_string(),
        "--etcd-cert",
        &tls.rogue_cert.display().to_string(),
        "--etcd-key",
        &tls.rogue_key.display().to_string(),
        "--node",
        "node-x",
        "--underlay-address",
        &x.addr.to_string(),
        "--node-ttl",
        crate::world::TTL,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    x.spawn();
    let err = x.fails(&[
        "network",
        "create",
        "ov9",
        "--driver",
        "overlay",
        "--subnet",
        "10.218.0.0/24",
        "--uplink",
        UNDERLAY_DEV,
        "--vni",
        "4218",
    ]);
    assert!(
        err.contains(&c.etcd.url()),
        "error names the etcd endpoints: {err}"
    );
    std::thread::sleep(std::time::Duration::from_secs(3));
    let listed: Vec<_> = nodes(&c.hosts[0])
        .iter()
        .map(|n| n["name"].clone())
        .collect();
    assert!(
        !listed.iter().any(|n| n == "node-x"),
        "node-x joined: {listed:?}"
    );
    assert_eq!(listed.len(), 3, "{listed:?}");
}
