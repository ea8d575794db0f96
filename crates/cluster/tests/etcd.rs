//! The cluster control plane against a real etcd (started by each case in
//! a namespace of its own on a test underlay), with engines on the
//! recording fake kernel: what reaches etcd, what the watch programs, who
//! may allocate which address, and what happens when nodes or etcd go.
//! Each case is its own `#[test]` (cargo runs them concurrently), with
//! its own underlay and etcd.

mod kit;

use std::collections::BTreeSet;
use std::net::IpAddr;

use kit::{overlay, wait, with_etcd, Node};

/// A network created on one node appears on the others; endpoints of each
/// node are programmed (FDB + neighbour: `set_remotes`) on the others and
/// never on their own node; deleting one withdraws it everywhere.
#[test]
fn networks_and_endpoints_spread_to_every_node() {
    with_etcd(false, |etcd| {
        let a = Node::join(etcd, "node-a", "10.98.0.201");
        let b = Node::join(etcd, "node-b", "10.98.0.202");
        a.cluster()
            .create_network(overlay("ov", "10.60.0.0/24", 60))
            .expect("create on a");
        wait(10, "b creates ov from the watch", || {
            b.engine.network("ov").is_ok()
        });
        let err = b
            .cluster()
            .create_network(overlay("ov", "10.61.0.0/24", 61))
            .expect_err("same name twice in the cluster");
        assert!(err.to_string().contains("already exists"), "{err}");
        let ia = a.endpoint("ea", "ov");
        let ib = b.endpoint("eb", "ov");
        assert_ne!(ia, ib);
        wait(10, "a programs eb", || a.remote_ips() == vec![ib]);
        wait(10, "b programs ea", || b.remote_ips() == vec![ia]);
        // An address of a's block is not b's to take, even when asked for.
        let err = b
            .engine
            .create_endpoint(bulkhead_model::EndpointSpec {
                name: "steal".into(),
                network: "ov".into(),
                namespace: "x".into(),
                ip: Some(bulkhead_model::Cidr::new(ia, 26).last().to_string()),
                ..Default::default()
            })
            .expect_err("another node's block");
        assert!(
            matches!(err, bulkhead_engine::EngineError::Conflict(_))
                && err.to_string().contains("held by another node"),
            "{err}"
        );
        let remote = a.kernel.remotes();
        let host: IpAddr = "10.98.0.202".parse().expect("ip");
        assert!(remote.iter().all(|r| r.host == host), "{remote:?}");
        // The network cannot go while a node has endpoints on it.
        let err = a.cluster().delete_network("ov").expect_err("in use");
        assert!(
            err.to_string().contains("node-a") || err.to_string().contains("node-b"),
            "{err}"
        );
        let nodes = a.cluster().nodes().expect("node ls");
        let states: Vec<(&str, &str, usize)> = nodes
            .iter()
            .map(|n| (n.name.as_str(), n.state, n.endpoints))
            .collect();
        assert_eq!(states, vec![("node-a", "ready", 1), ("node-b", "ready", 1)]);
        b.engine.delete_endpoint("eb").expect("delete eb");
        wait(10, "a withdraws eb", || a.remote_ips().is_empty());
        a.engine.delete_endpoint("ea").expect("delete ea");
        wait(10, "ea unpublished", || {
            a.cluster()
                .nodes()
                .expect("ls")
                .iter()
                .all(|n| n.endpoints == 0)
        });
        a.cluster().delete_network("ov").expect("delete ov");
        wait(10, "b removes ov from the watch", || {
            b.engine.network("ov").is_err()
        });
    });
}

/// Three nodes create endpoints at once in one small subnet: every address
/// is handed out once in the cluster, and each node allocates only from
/// blocks it holds.
#[test]
fn no_address_twice_under_concurrent_creates() {
    with_etcd(false, |etcd| {
        let nodes: Vec<Node> = ["node-a", "node-b", "node-c"]
            .iter()
            .enumerate()
            .map(|(i, n)| Node::join(etcd, n, &format!("10.98.0.{}", 211 + i)))
            .collect();
        nodes[0]
            .cluster()
            .create_network(overlay("ov", "10.62.0.0/24", 62))
            .expect("create");
        for n in &nodes {
            wait(10, "ov everywhere", || n.engine.network("ov").is_ok());
        }
        // 3 × 40 = 120 of the /24's 253 usable addresses in four /26
        // blocks: each node needs one, claimed while the others claim
        // theirs, by four creators at once on each node (which must not
        // each claim a block of their own: there are not enough).
        let ips: Vec<Vec<IpAddr>> = std::thread::scope(|s| {
            let hs: Vec<_> = nodes
                .iter()
                .map(|n| {
                    s.spawn(move || {
                        std::thread::scope(|s2| {
                            let ws: Vec<_> = (0..4)
                                .map(|w| {
                                    s2.spawn(move || {
                                        (0..10)
                                            .map(|i| n.endpoint(&format!("e{w}x{i}"), "ov"))
                                            .collect::<Vec<_>>()
                                    })
                                })
                                .collect();
                            ws.into_iter()
                                .flat_map(|h| h.join().expect("creator"))
                                .collect::<Vec<_>>()
                        })
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().expect("node")).collect()
        });
        let all: Vec<IpAddr> = ips.iter().flatten().copied().collect();
        let unique: BTreeSet<IpAddr> = all.iter().copied().collect();
        assert_eq!(unique.len(), 120, "duplicates among {all:?}");
        // Each node's addresses lie in blocks held by that node only.
        for (n, mine) in nodes.iter().zip(&ips) {
            let others: BTreeSet<IpAddr> = ips
                .iter()
                .filter(|v| !std::ptr::eq(*v, mine))
                .flatten()
                .copied()
                .collect();
            for ip in mine {
                let block = bulkhead_model::Cidr::new(*ip, 26);
                assert!(
                    !others.iter().any(|o| block.contains(*o)),
                    "{}: block {block} shared",
                    n.name
                );
            }
        }
        for n in &nodes {
            wait(15, "all remotes programmed", || n.remote_ips().len() == 80);
        }
    });
}

/// etcd down: programmed entries stay; a network create fails naming the
/// etcd endpoint; an endpoint from a held block is created and published
/// once etcd is back; an endpoint that needs a new block fails naming etcd.
#[test]
fn etcd_outage_keeps_traffic_state_and_publishes_later() {
    with_etcd(false, |etcd| {
        let a = Node::join(etcd, "node-a", "10.98.0.231");
        let b = Node::join(etcd, "node-b", "10.98.0.232");
        a.cluster()
            .create_network(overlay("ov", "10.64.0.0/25", 64))
            .expect("create");
        wait(10, "ov on b", || b.engine.network("ov").is_ok());
        let ia = a.endpoint("ea", "ov");
        wait(10, "b programs ea", || b.remote_ips() == vec![ia]);
        etcd.stop();
        let err = a
            .cluster()
            .create_network(overlay("ov2", "10.65.0.0/24", 65))
            .expect_err("etcd down");
        let line = err.to_string();
        assert!(line.contains(&etcd.url()), "{line}");
        assert!(a.engine.network("ov2").is_err(), "undone locally");
        // a holds one of the /25's two blocks: it goes on from it.
        let ia2 = a.endpoint("ea2", "ov");
        // b holds none and cannot claim the free one now.
        let err = b
            .engine
            .create_endpoint(bulkhead_model::EndpointSpec {
                name: "eb".into(),
                network: "ov".into(),
                namespace: "x".into(),
                ..Default::default()
            })
            .expect_err("no block for b");
        let line = err.to_string();
        assert!(line.starts_with(&format!("etcd {}:", etcd.url())), "{line}");
        assert!(
            matches!(err, bulkhead_engine::EngineError::Unavailable(_)),
            "{line}"
        );
        assert!(b.engine.endpoint("eb").is_err(), "nothing half-made");
        assert_eq!(b.remote_ips(), vec![ia], "what was programmed stays");
        etcd.start();
        let mut want = vec![ia, ia2];
        want.sort();
        wait(20, "ea2 published after the outage", || {
            let mut got = b.remote_ips();
            got.sort();
            got == want
        });
    });
}

/// TLS: a node with the CA and a client certificate joins; etcd refuses a
/// client without a certificate (its requests fail naming the endpoint).
#[test]
fn tls_needs_the_client_certificate() {
    with_etcd(true, |etcd| {
        let a = Node::join(etcd, "node-a", "10.98.0.241");
        a.cluster()
            .create_network(overlay("ov", "10.66.0.0/24", 66))
            .expect("create over TLS");
        let mut anon = kit::config(etcd, "node-x", "10.98.0.242", std::path::Path::new("/tmp"));
        anon.cert = None;
        anon.key = None;
        let dir = tempfile::tempdir().expect("dir");
        anon.state_dir = dir.path().to_path_buf();
        let mut x = Node::join_later("node-x");
        x.start(anon);
        let err = x.cluster().nodes().expect_err("no client certificate");
        assert!(err.to_string().contains(&etcd.url()), "{err}");
        let names: Vec<String> = a
            .cluster()
            .nodes()
            .expect("ls")
            .into_iter()
            .map(|n| n.name)
            .collect();
        assert_eq!(names, vec!["node-a".to_owned()]);
    });
}
