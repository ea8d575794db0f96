//! T1 tests of the IR lowering: real policies compiled by the policy crate,
//! lowered, committed into throwaway namespaces, and proven with real
//! packets (TCP connects, UDP datagrams, raw IP protocol 253 counted by a
//! separate counting table behind ours). Client namespace `a` (10.99.0.1 and
//! 10.99.0.3 on `va`), endpoint namespace `b` (10.99.0.2 on `eth0`, the
//! endpoint's interface). Setup uses `ip` (tests only). Needs root.

#[path = "lower/support.rs"]
mod support;

use std::time::{Duration, Instant};

use bulkhead_dataplane::lower::{comment_userdata, lower_ops, lower_table, lower_table_replace};
use bulkhead_dataplane::netns::NetnsGuard;
use bulkhead_dataplane::nft::{self, NftSocket};
use bulkhead_dataplane::testing::{require_root, unique_name};
use bulkhead_model::{
    AclMode, AclProfile, AclRule, AclRuleSpec, Driver, Isolation, MacAddress, PortMapping, Protocol,
};
use bulkhead_policy::ir::{self, Table};
use bulkhead_policy::{
    compile_endpoint_firewall, compile_switch, EndpointFacts, EndpointPolicy, FirewallEndpoint,
    SwitchPortPolicy,
};
use support::*;

fn acl(
    id: &str,
    action: &str,
    proto: &str,
    local_ports: Option<&str>,
    remote: Option<&str>,
) -> AclRule {
    AclRuleSpec {
        id: Some(id.into()),
        action: action.into(),
        direction: "in".into(),
        protocol: Some(proto.into()),
        local_addresses: None,
        remote_addresses: remote.map(Into::into),
        local_ports: local_ports.map(Into::into),
        remote_ports: None,
        rule_type: Some("host".into()),
        priority: None,
    }
    .validate(id)
    .unwrap()
}

fn switch_policy(addr: [u8; 4], rules: Vec<AclRule>) -> EndpointPolicy {
    let facts = EndpointFacts {
        driver: Driver::L2Bridge,
        isolation: Isolation::Process,
        profile: AclProfile::Current,
        acl_mode: AclMode::Layered,
        addresses: vec![addr.into()],
        port_mappings: vec![],
    };
    EndpointPolicy::new(facts, rules).unwrap()
}

fn host_table(
    profile: AclProfile,
    mode: AclMode,
    mappings: Vec<PortMapping>,
    rules: Vec<AclRule>,
) -> Table {
    let facts = EndpointFacts {
        driver: Driver::Nat,
        isolation: Isolation::Process,
        profile,
        acl_mode: mode,
        addresses: vec![SERVER.into()],
        port_mappings: mappings,
    };
    let policy = EndpointPolicy::new(facts, rules).unwrap();
    compile_endpoint_firewall(&[FirewallEndpoint {
        ifname: "eth0".into(),
        policy,
    }])
    .unwrap()
}

fn commit(ns: &NetnsGuard, table: &Table) -> NftSocket {
    let mut s = NftSocket::open(Some(ns.path())).unwrap();
    s.commit(lower_table(table).unwrap()).unwrap();
    s
}

#[test]
fn current_profile_lets_tcp_udp_in_and_drops_protocol_253() {
    if !require_root() {
        return;
    }
    let p = pair("lwcur");
    let _l = listen(&p.b, &[8080]);
    let table = host_table(AclProfile::Current, AclMode::Layered, vec![], vec![]);
    let mut s = commit(&p.b, &table);
    let ct = counting_table(&mut s);
    assert!(tcp(&p, 8080), "current: tcp in");
    assert!(udp(&p, [10, 99, 0, 1], 5353), "current: udp in");
    send_proto_253(&p, 5);
    std::thread::sleep(Duration::from_millis(100));
    let (arrived, let_in) = counts(&mut s, &ct);
    assert!(arrived >= 5, "protocol 253 packets arrived: {arrived}");
    assert_eq!(let_in, 0, "current: protocol 253 dropped");
    // Comments are nft's userdata TLV, so `nft list ruleset` shows them.
    let t = nft::Table::new(nft::Family::Inet, bulkhead_policy::compile::FIREWALL_TABLE);
    let rules = s.list_rules(&t, None).unwrap();
    let want = comment_userdata("current:in:block-other");
    assert!(
        rules
            .iter()
            .any(|r| r.userdata.as_deref() == Some(&want[..])),
        "comment present"
    );
    // Control: without our table the same packets get in.
    s.commit(
        lower_table_replace(&Table::new(
            table.family,
            bulkhead_policy::compile::FIREWALL_TABLE,
        ))
        .unwrap(),
    )
    .unwrap();
    send_proto_253(&p, 3);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(counts(&mut s, &ct).1, 3, "empty table lets protocol 253 in");
}

#[test]
fn legacy_profile_blocks_tcp_except_the_published_port() {
    if !require_root() {
        return;
    }
    let p = pair("lwleg");
    let _l = listen(&p.b, &[80, 81]);
    let mapping = PortMapping {
        protocol: Protocol::Number(6),
        host_ip: None,
        host_port: 8080,
        container_port: 80,
    };
    commit(
        &p.b,
        &host_table(AclProfile::Legacy, AclMode::Layered, vec![mapping], vec![]),
    );
    assert!(tcp(&p, 80), "legacy: published port 80 open");
    assert!(!tcp(&p, 81), "legacy: port 81 blocked");
    assert!(!udp(&p, [10, 99, 0, 1], 80), "legacy: udp blocked");
}

fn layered_rules() -> Vec<AclRule> {
    vec![
        acl("block-range", "block", "tcp", Some("9000-9010"), None),
        acl("block-client", "block", "udp", None, Some("10.99.0.1")),
    ]
}

#[test]
fn layered_custom_blocks_by_port_range_and_remote_address() {
    if !require_root() {
        return;
    }
    let p = pair("lwlay");
    let _l = listen(&p.b, &[8999, 9000, 9005, 9010, 9011]);
    let table = host_table(
        AclProfile::Current,
        AclMode::Layered,
        vec![],
        layered_rules(),
    );
    commit(&p.b, &table);
    for (port, open) in [
        (8999, true),
        (9000, false),
        (9005, false),
        (9010, false),
        (9011, true),
    ] {
        assert_eq!(tcp(&p, port), open, "tcp {port}");
    }
    assert!(
        !udp(&p, [10, 99, 0, 1], 6000),
        "udp from the blocked remote"
    );
    assert!(udp(&p, [10, 99, 0, 3], 6000), "udp from another remote");
}

#[test]
fn replace_mode_blocks_everything_not_allowed() {
    if !require_root() {
        return;
    }
    let p = pair("lwrep");
    let _l = listen(&p.b, &[7000, 7001]);
    let rules = vec![acl("allow-7000", "allow", "tcp", Some("7000"), None)];
    commit(
        &p.b,
        &host_table(AclProfile::Current, AclMode::Replace, vec![], rules),
    );
    assert!(tcp(&p, 7000), "replace: allowed port");
    assert!(!tcp(&p, 7001), "replace: other tcp port");
    assert!(!udp(&p, [10, 99, 0, 1], 7000), "replace: udp");
}

#[test]
fn a_diff_that_adds_one_rule_takes_effect() {
    if !require_root() {
        return;
    }
    let p = pair("lwdif");
    let _l = listen(&p.b, &[7000, 8080, 9005]);
    let old = host_table(
        AclProfile::Current,
        AclMode::Layered,
        vec![],
        layered_rules(),
    );
    let mut s = commit(&p.b, &old);
    assert!(tcp(&p, 7000) && tcp(&p, 8080) && !tcp(&p, 9005));
    let mut rules = layered_rules();
    rules.push(acl("block-7000", "block", "tcp", Some("7000"), None));
    let new = host_table(AclProfile::Current, AclMode::Layered, vec![], rules);
    let ops = bulkhead_policy::diff::diff(&old, &new);
    let batch = lower_ops(Some(&old), &ops).unwrap();
    eprintln!("diff: {} ops, {} messages", ops.len(), batch.len());
    s.commit(batch).unwrap();
    assert!(!tcp(&p, 7000), "new rule blocks 7000");
    assert!(tcp(&p, 8080) && !tcp(&p, 9005), "other verdicts unchanged");
    assert!(udp(&p, [10, 99, 0, 3], 6000) && !udp(&p, [10, 99, 0, 1], 6000));
    // And back: the reverse diff removes it again.
    let back = bulkhead_policy::diff::diff(&new, &old);
    s.commit(lower_ops(Some(&new), &back).unwrap()).unwrap();
    assert!(tcp(&p, 7000), "reverse diff reopens 7000");
    assert!(!tcp(&p, 9005));
}

#[test]
fn ten_thousand_acl_rules_commit_in_one_batch() {
    if !require_root() {
        return;
    }
    let ns = NetnsGuard::create(&unique_name("lw10k")).unwrap();
    let rules: Vec<AclRule> = (0..10_000u32)
        .map(|i| {
            let port = (10_000 + i).to_string();
            let remote = format!("10.{}.{}.0/24", 100 + i / 256, i % 256);
            acl(
                &format!("r{i}"),
                if i % 2 == 0 { "block" } else { "allow" },
                "tcp",
                Some(&port),
                Some(&remote),
            )
        })
        .collect();
    let t0 = Instant::now();
    let table = host_table(AclProfile::Current, AclMode::Layered, vec![], rules);
    let compiled = t0.elapsed();
    let t1 = Instant::now();
    let batch = lower_table(&table).unwrap();
    let lowered = t1.elapsed();
    let (msgs, bytes) = (batch.len(), batch.encoded_len());
    let mut s = NftSocket::open(Some(ns.path())).unwrap();
    let t2 = Instant::now();
    s.commit(batch).unwrap();
    let committed = t2.elapsed();
    let elements: usize = table.sets.values().map(|s| s.elements.len()).sum();
    eprintln!(
        "10k ACL rules: {} IR rules, {elements} IR elements; compile {compiled:?}, lower {lowered:?}, \
         commit {committed:?} ({msgs} messages, {bytes} bytes, one batch)",
        table.rule_count()
    );
}

#[test]
fn switch_table_and_nat_constructs_are_accepted_by_the_kernel() {
    if !require_root() {
        return;
    }
    let ns = NetnsGuard::create(&unique_name("lwsw")).unwrap();
    let ports: Vec<SwitchPortPolicy> = (0..3u8)
        .map(|i| {
            let rules = vec![acl("sw", "block", "tcp", Some("22"), Some("10.0.0.0/8"))]
                .into_iter()
                .map(|mut r| {
                    r.rule_type = bulkhead_model::RuleType::Switch;
                    r
                })
                .collect();
            SwitchPortPolicy {
                port: format!("bhp00000000{i}"),
                mac: MacAddress::parse("mac", &format!("02:00:00:00:00:0{}", i + 1)).unwrap(),
                policy: switch_policy([10, 88, 0, 10 + i], rules),
            }
        })
        .collect();
    let table = compile_switch(&ports).unwrap();
    let mut s = commit(&ns, &table);
    let t = nft::Table::new(nft::Family::Inet, "bulkhead");
    for set in table.sets.values() {
        let got = s.list_elements(&t, &set.name).unwrap().len();
        assert!(
            got >= set.elements.len(),
            "set {}: {got} kernel elements for {}",
            set.name,
            set.elements.len()
        );
    }
    assert_eq!(s.list_rules(&t, None).unwrap().len(), table.rule_count());
    // NAT: dnat (v4 + port, v6), snat, masquerade, fib daddr local, ct status dnat.
    let mut nat = Table::new(ir::Family::Inet, "bht_nat");
    let mut pre = ir::Chain::base("pre", ir::Hook::Prerouting, -100, ir::ChainKind::Nat);
    let tcp = ir::Match::L4Proto {
        protos: ir::ProtoList::from_slice(&[6]),
        negate: false,
    };
    pre.rules = vec![
        ir::Rule::new(
            vec![
                ir::Match::NfProto(ir::NfProto::Ipv4),
                ir::Match::FibDaddrLocal,
                tcp.clone(),
            ],
            ir::Action::Dnat {
                addr: "10.88.0.10".parse().unwrap(),
                port: Some(80),
            },
        ),
        ir::Rule::new(
            vec![ir::Match::NfProto(ir::NfProto::Ipv6), tcp],
            ir::Action::Dnat {
                addr: "fd00::10".parse().unwrap(),
                port: None,
            },
        ),
    ];
    let mut post = ir::Chain::base("post", ir::Hook::Postrouting, 100, ir::ChainKind::Nat);
    post.rules = vec![
        ir::Rule::new(vec![ir::Match::CtStatusDnat], ir::Action::Masquerade),
        ir::Rule::new(
            vec![ir::Match::OifName {
                name: "eth9".into(),
                negate: false,
            }],
            ir::Action::Snat {
                addr: "10.88.0.1".parse().unwrap(),
            },
        ),
    ];
    // Mark bits: `meta mark set meta mark & ~bits | bits` in a filter chain.
    let mut mark = ir::Chain::base("mark", ir::Hook::Prerouting, -90, ir::ChainKind::Filter);
    mark.rules = vec![ir::Rule::new(
        vec![ir::Match::CtStatusDnat],
        ir::Action::SetMarkBits(0x0010_0000),
    )];
    nat.add_chain(pre);
    nat.add_chain(post);
    nat.add_chain(mark);
    s.commit(lower_table(&nat).unwrap()).unwrap();
}

/// A one-field interval verdict map on `th dport` with the given
/// `(from, to, drop?)` intervals, used by the `tcp` input rule.
fn dport_map_table(intervals: &[(u16, u16, bool)]) -> Table {
    let mut t = Table::new(ir::Family::Inet, "bulkhead");
    let mut set = ir::Set::new(
        "ports",
        vec![ir::Field::Dport],
        true,
        ir::SetKind::VerdictMap,
    );
    for &(from, to, drop) in intervals {
        let v = if drop {
            ir::Verdict::Drop
        } else {
            ir::Verdict::Accept
        };
        set.elements.insert(
            vec![(from.to_be_bytes().to_vec(), to.to_be_bytes().to_vec())].into(),
            Some(v),
        );
    }
    t.add_set(set);
    let mut input = ir::Chain::base("input", ir::Hook::Input, 0, ir::ChainKind::Filter);
    input.rules = vec![ir::Rule::new(
        vec![ir::Match::L4Proto {
            protos: ir::ProtoList::from_slice(&[6]),
            negate: false,
        }],
        ir::Action::Vmap {
            key: vec![ir::Field::Dport],
            map: "ports".into(),
        },
    )];
    t.add_chain(input);
    t
}

#[test]
fn adjacent_rbtree_intervals_and_their_element_diffs_work() {
    if !require_root() {
        return;
    }
    let p = pair("lwadj");
    let ports = [8999, 9000, 9004, 9005, 9010, 9011, 9020, 9021];
    let _l = listen(&p.b, &ports);
    let check = |want: &[bool], what: &str| {
        let got: Vec<bool> = ports.iter().map(|port| tcp(&p, *port)).collect();
        assert_eq!(got, want, "{what}: ports {ports:?}");
    };
    let v1 = dport_map_table(&[(9000, 9004, true), (9005, 9010, false), (9011, 9020, true)]);
    let mut s = commit(&p.b, &v1);
    check(
        &[true, false, false, true, true, false, false, true],
        "adjacent intervals",
    );
    // Removing the middle interval must close [9000,9004] with its own end.
    let v2 = dport_map_table(&[(9000, 9004, true), (9011, 9020, true)]);
    s.commit(lower_ops(Some(&v1), &bulkhead_policy::diff::diff(&v1, &v2)).unwrap())
        .unwrap();
    check(
        &[true, false, false, true, true, false, false, true],
        "middle removed",
    );
    // Re-adding it as drop joins the three again.
    let v3 = dport_map_table(&[(9000, 9004, true), (9005, 9010, true), (9011, 9020, true)]);
    s.commit(lower_ops(Some(&v2), &bulkhead_policy::diff::diff(&v2, &v3)).unwrap())
        .unwrap();
    check(
        &[true, false, false, false, false, false, false, true],
        "middle re-added as drop",
    );
    // Shrinking the last interval to its start and changing a verdict.
    let v4 = dport_map_table(&[(9000, 9004, false), (9005, 9010, true), (9011, 9011, true)]);
    s.commit(lower_ops(Some(&v3), &bulkhead_policy::diff::diff(&v3, &v4)).unwrap())
        .unwrap();
    check(
        &[true, true, true, false, false, false, true, true],
        "last shrunk, first accepted",
    );
}
