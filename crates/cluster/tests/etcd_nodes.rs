//! Nodes coming and going, against a real etcd per case (in-process
//! nodes on the recording fake kernel, as in `etcd.rs`): a lost node is
//! kept until it is removed (`node rm`, `--lost-node-grace`), and a node
//! that restarts reconciles with what changed while it was down.

mod kit;

use std::time::Duration;

use kit::{overlay, wait, with_etcd, Node};

/// A node whose control plane stops (a crash, for etcd) goes `lost` when
/// its lease expires, but its endpoints stay programmed on the others; it
/// cannot be removed while ready; `node rm` withdraws them and frees its
/// blocks; a restart on the same state dir is `ready` again.
#[test]
fn a_lost_node_keeps_its_endpoints_until_removed() {
    with_etcd(false, |etcd| {
        let a = Node::join(etcd, "node-a", "10.98.0.221");
        let mut c = Node::join(etcd, "node-c", "10.98.0.223");
        a.cluster()
            .create_network(overlay("ov", "10.63.0.0/24", 63))
            .expect("create");
        wait(10, "ov on c", || c.engine.network("ov").is_ok());
        let ic = c.endpoint("ec", "ov");
        wait(10, "a programs ec", || a.remote_ips() == vec![ic]);
        let err = a.cluster().remove_node("node-c").expect_err("ready");
        assert!(err.to_string().contains("is ready"), "{err}");
        // The crash: the control plane's tasks stop without a goodbye.
        c.crash();
        let state = |n: &str| {
            a.cluster()
                .nodes()
                .expect("ls")
                .into_iter()
                .find(|x| x.name == n)
                .map(|x| x.state)
        };
        wait(15, "node-c lost", || state("node-c") == Some("lost"));
        assert_eq!(a.remote_ips(), vec![ic], "a lost node's endpoints stay");
        std::thread::sleep(Duration::from_secs(1));
        assert_eq!(a.remote_ips(), vec![ic], "… and keep staying");
        a.cluster().remove_node("node-c").expect("node rm");
        wait(10, "ec withdrawn", || a.remote_ips().is_empty());
        assert_eq!(state("node-c"), None);
        // Restart on the same state dir: ready again, its endpoint back.
        c.reopen();
        let cfg = kit::config(etcd, "node-c", "10.98.0.223", c.dir.path());
        c.start(cfg);
        wait(15, "node-c ready", || state("node-c") == Some("ready"));
        wait(10, "ec republished", || a.remote_ips() == vec![ic]);
    });
}

/// `--lost-node-grace`: a node lost longer than the grace is removed by the
/// others on their own (its endpoints withdrawn, its blocks freed); a node
/// within the grace, or ready, stays.
#[test]
fn lost_node_grace_removes_a_node_lost_too_long() {
    with_etcd(false, |etcd| {
        let mut a = Node::join_later("node-a");
        let mut cfg = kit::config(etcd, "node-a", "10.98.0.251", a.dir.path());
        cfg.lost_node_grace = Some(Duration::from_secs(1));
        a.start(cfg);
        let mut c = Node::join(etcd, "node-c", "10.98.0.253");
        a.cluster()
            .create_network(overlay("ov", "10.67.0.0/24", 67))
            .expect("create");
        wait(10, "ov on c", || c.engine.network("ov").is_ok());
        let ic = c.endpoint("ec", "ov");
        wait(10, "a programs ec", || a.remote_ips() == vec![ic]);
        // Ready nodes are never removed by the grace.
        std::thread::sleep(Duration::from_secs(2));
        assert_eq!(a.remote_ips(), vec![ic]);
        c.crash();
        wait(20, "node-c removed by the grace", || {
            a.cluster()
                .nodes()
                .expect("ls")
                .iter()
                .all(|n| n.name != "node-c")
        });
        wait(10, "ec withdrawn", || a.remote_ips().is_empty());
        // Its block is free: a may claim it, and c's old address with it.
        let again = a
            .engine
            .create_endpoint(bulkhead_model::EndpointSpec {
                name: "ea".into(),
                network: "ov".into(),
                namespace: "x".into(),
                ip: Some(ic.to_string()),
                ..Default::default()
            })
            .expect("c's address, from its freed block");
        assert_eq!(again.ip_address.addr, ic);
    });
}

/// A node that was down while another node was removed drops that node's
/// entries when it comes back: its first sync diffs against what the
/// kernel holds, not against an empty list. A cluster network removed
/// meanwhile goes too.
#[test]
fn a_restarted_node_drops_entries_withdrawn_while_it_was_down() {
    with_etcd(false, |etcd| {
        let mut a = Node::join(etcd, "node-a", "10.98.0.161");
        let b = Node::join(etcd, "node-b", "10.98.0.162");
        let mut c = Node::join(etcd, "node-c", "10.98.0.163");
        b.cluster()
            .create_network(overlay("ov", "10.68.0.0/24", 68))
            .expect("create");
        b.cluster()
            .create_network(overlay("ov2", "10.69.0.0/24", 69))
            .expect("create ov2");
        wait(10, "ov, ov2 on a and c", || {
            a.engine.network("ov").is_ok()
                && c.engine.network("ov").is_ok()
                && a.engine.network("ov2").is_ok()
        });
        let ib = b.endpoint("eb", "ov");
        let ic = c.endpoint("ec", "ov");
        let mut both = vec![ib, ic];
        both.sort();
        wait(10, "a programs eb and ec", || {
            let mut got = a.remote_ips();
            got.sort();
            got == both
        });
        for n in [&mut a, &mut c] {
            n.crash();
        }
        wait(15, "node-c lost", || {
            b.cluster()
                .nodes()
                .expect("ls")
                .iter()
                .any(|n| n.name == "node-c" && n.state == "lost")
        });
        b.cluster().remove_node("node-c").expect("node rm");
        b.cluster().delete_network("ov2").expect("delete ov2");
        // a's kernel still holds ec from before.
        assert!(a.remote_ips().contains(&ic));
        a.reopen();
        let cfg = kit::config(etcd, "node-a", "10.98.0.161", a.dir.path());
        a.start(cfg);
        wait(10, "ec dropped on a, eb kept", || {
            a.remote_ips() == vec![ib]
        });
        wait(10, "ov2 removed on a", || a.engine.network("ov2").is_err());
        assert!(a.engine.network("ov").is_ok());
    });
}
