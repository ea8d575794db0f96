//! Cluster IPAM: no address is handed out twice, under concurrent creates
//! on all nodes and across a kill -9 and restart.

use std::net::Ipv4Addr;

use bulkhead_testkit::cluster::{Etcd, Host};
use serde_json::Value;

use crate::world::{all_endpoints, cluster, ip_of, network_everywhere, overlay, wait_for};

/// `n` endpoints `<tag><k>x` on each host of `hosts`, all created at once
/// (a thread per create); `(name, node, ip)` of each. A failed create
/// panics with the blocks etcd holds for the network.
fn create_all(
    etcd: &Etcd,
    hosts: &[&Host],
    tag: &str,
    n: usize,
) -> Vec<(String, String, Ipv4Addr)> {
    let results: Vec<Result<(String, String, Ipv4Addr), String>> = std::thread::scope(|s| {
        let jobs: Vec<_> = hosts
            .iter()
            .flat_map(|h| {
                (0..n).map(move |k| {
                    let name = format!("{tag}{}{k}x", &h.node[5..]);
                    s.spawn(move || {
                        h.ok(&["namespace", "create", &name]);
                        let out = h.run(&[
                            "--output",
                            "json",
                            "endpoint",
                            "create",
                            &name,
                            "--network",
                            "ov",
                            "--namespace",
                            &name,
                        ]);
                        if !out.status.success() {
                            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
                        }
                        let v: Value = serde_json::from_slice(&out.stdout).expect("json");
                        Ok((name, h.node.clone(), ip_of(&v)))
                    })
                })
            })
            .collect();
        jobs.into_iter()
            .map(|j| j.join().expect("create"))
            .collect()
    });
    let errors: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    if !errors.is_empty() {
        let blocks = etcd.ctl_ok(
            hosts[0].ns_name(),
            &["get", "--prefix", "/bulkhead/v1/blocks/ov/"],
        );
        panic!(
            "{} creates failed: {errors:?}\nblocks in etcd:\n{blocks}",
            errors.len()
        );
    }
    results.into_iter().map(Result::unwrap).collect()
}

fn assert_unique(all: &[(String, String, Ipv4Addr)]) {
    let mut ips: Vec<_> = all.iter().map(|e| e.2).collect();
    ips.sort();
    let n = ips.len();
    ips.dedup();
    assert_eq!(ips.len(), n, "an address handed out twice: {all:?}");
}

#[test]
fn concurrent_creates_on_all_nodes_and_a_restart_never_duplicate_an_address() {
    let Some(mut c) = cluster(false) else { return };
    // Three nodes claim blocks of one /24 at the same moment.
    overlay(&c.hosts[2], "ov", "10.216.0.0/24", 4216);
    network_everywhere(&c, "ov");
    let hosts: Vec<&Host> = c.hosts.iter().collect();
    let mut all = create_all(&c.etcd, &hosts, "p", 12);
    assert_unique(&all);

    // node-a crashes and comes back on its store: it keeps its blocks and
    // allocates from them; the others go on creating meanwhile.
    c.hosts[0].kill9();
    let during = create_all(&c.etcd, &[&c.hosts[1], &c.hosts[2]], "q", 4);
    c.hosts[0].spawn();
    let after = create_all(&c.etcd, &c.hosts.iter().collect::<Vec<_>>(), "r", 4);
    all.extend(during);
    all.extend(after);
    assert_unique(&all);
    all.sort();
    for h in &c.hosts {
        wait_for(
            &format!("all {} endpoints on {}", all.len(), h.node),
            15,
            || (all_endpoints(h) == all).then_some(()),
        );
    }
}
