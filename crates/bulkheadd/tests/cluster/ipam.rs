//! Cluster IPAM: no address is handed out twice, under concurrent creates
//! on all nodes and across a kill -9 and restart.

use std::net::Ipv4Addr;

use bulkhead_testkit::cli::endpoint;
use bulkhead_testkit::cluster::Host;

use crate::world::{all_endpoints, cluster, ip_of, network_everywhere, overlay, wait_for};

/// `n` endpoints `<tag><k>x` on each host of `hosts`, all created at once
/// (a thread per create); `(name, node, ip)` of each.
fn create_all(hosts: &[&Host], tag: &str, n: usize) -> Vec<(String, String, Ipv4Addr)> {
    std::thread::scope(|s| {
        let jobs: Vec<_> = hosts
            .iter()
            .flat_map(|h| {
                (0..n).map(move |k| {
                    let name = format!("{tag}{}{k}x", &h.node[5..]);
                    s.spawn(move || {
                        let v = endpoint(h, "ov", &name, &name);
                        (name, h.node.clone(), ip_of(&v))
                    })
                })
            })
            .collect();
        jobs.into_iter()
            .map(|j| j.join().expect("create"))
            .collect()
    })
}

fn assert_unique(all: &[(String, String, Ipv4Addr)]) {
    let mut ips: Vec<_> = all.iter().map(|e| e.2).collect();
    ips.sort();
    let n = ips.len();
    ips.dedup();
    assert_eq!(ips.len(), n, "an address handed out twice: {all:?}");
}

#[test]
#[ignore = "needs the cluster product of branch cluster"]
fn concurrent_creates_on_all_nodes_and_a_restart_never_duplicate_an_address() {
    let Some(mut c) = cluster(false) else { return };
    // A /25: the three nodes contend for its blocks.
    overlay(&c.hosts[2], "ov", "10.216.0.0/25", 4216);
    network_everywhere(&c, "ov");
    let hosts: Vec<&Host> = c.hosts.iter().collect();
    let mut all = create_all(&hosts, "p", 12);
    assert_unique(&all);

    // node-a crashes and comes back on its store: it keeps its blocks and
    // allocates from them; the others go on creating meanwhile.
    c.hosts[0].kill9();
    let during = create_all(&[&c.hosts[1], &c.hosts[2]], "q", 4);
    c.hosts[0].spawn();
    let after = create_all(&c.hosts.iter().collect::<Vec<_>>(), "r", 4);
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
