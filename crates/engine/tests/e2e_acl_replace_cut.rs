//! Replacing an endpoint's ACL cuts the established connections the new
//! ACL refuses, judged in the connection's own direction (an endpoint's
//! outbound connection against its `out` rules), and keeps the others.
//! Real namespaces and conntrack (tier T2, root; see `common/mod.rs`).

mod common;

use std::io::Write;
use std::time::Duration;

use common::*;

/// Spec §5 (atomic update + stateful): A holds an established TCP
/// connection to B:80. First A's ACL is replaced by one that blocks only
/// *inbound* TCP from B (the weakened setup: nothing in it refuses A's
/// outbound connection), and the connection must keep carrying data both
/// ways — were the flow judged against the wrong direction's rules, it
/// would be cut here. Then the ACL is replaced by one blocking *outbound*
/// TCP to B, and A's next bytes must never reach B.
#[test]
fn replace_cuts_an_outbound_connection_its_out_rules_refuse() {
    let Some(h) = Harness::new("rcut") else {
        return;
    };
    h.nat_network("n1", "10.61.31.0/24", None);
    let a = h.endpoint("a", "n1", &[], None);
    let b = h.endpoint("b", "n1", &[], None);
    let l = tcp_listen(&b.ns, 80);
    let mut client = tcp_connect(&a.ns, b.addr(80)).expect("connect A->B:80");
    let (mut server, _) = accept(&l, PROBE).expect("B accepts");
    let b32 = format!("{}/32", b.ip);
    let replace = |direction: &str| {
        h.engine
            .replace_acls(
                &a.name,
                vec![rule("block", direction, "tcp", None, Some(&b32), 100)],
            )
            .unwrap_or_else(|e| panic!("replace_acls {direction}: {e}"));
    };

    replace("in");
    client.write_all(b"one").unwrap();
    assert_eq!(
        read_some(&mut server, PROBE).as_deref(),
        Some(&b"one"[..]),
        "an ACL that refuses nothing outbound keeps A's connection"
    );
    server.write_all(b"ONE").unwrap();
    assert_eq!(
        read_some(&mut client, PROBE).as_deref(),
        Some(&b"ONE"[..]),
        "and its replies"
    );

    replace("out");
    let _ = client.write_all(b"two");
    assert_eq!(
        read_some(&mut server, Duration::from_millis(800)),
        None,
        "after the replace A's data must not arrive at B"
    );
}
