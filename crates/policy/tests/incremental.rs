//! The incremental compiler (`compile::incremental`): for random ACLs and
//! random sequences of one-rule adds and removes, the ops it returns turn
//! the compiled table into exactly the full compile of the new policy —
//! elements, owners, region chains and their names; and it does take the
//! incremental path for most such changes (else the property says
//! nothing).

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicUsize, Ordering};

use bulkhead_model::{
    AclMode, AclProfile, AclRule, Action, AddressList, Cidr, Direction, Driver, Isolation,
    PortList, PortRange, Protocol, RuleId, RuleType,
};
use bulkhead_policy::compile::incremental::{
    firewall_rule_change, firewall_rule_change_kept, RuleLists,
};
use bulkhead_policy::diff::apply;
use bulkhead_policy::ir::Table;
use bulkhead_policy::{compile_endpoint_firewall, EndpointFacts, EndpointPolicy, FirewallEndpoint};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

fn facts(replace: bool) -> EndpointFacts {
    EndpointFacts {
        driver: Driver::Nat,
        isolation: Isolation::Process,
        profile: AclProfile::Current,
        acl_mode: if replace {
            AclMode::Replace
        } else {
            AclMode::Layered
        },
        addresses: vec!["10.0.0.2".parse().unwrap()],
        port_mappings: vec![],
    }
}

/// Remote addresses that nest, touch and overlap: /32s inside /24s inside
/// a /16, neighbours, and (rarely) IPv6 or none.
fn remotes() -> impl Strategy<Value = AddressList> {
    let one = prop_oneof![
        6 => (0u32..6, 0u32..8).prop_map(|(c, d)| format!("{}/32", Ipv4Addr::new(10, 1, c as u8, d as u8))),
        3 => (0u32..6).prop_map(|c| format!("{}/24", Ipv4Addr::new(10, 1, c as u8, 0))),
        1 => Just("10.1.0.0/16".to_owned()),
        1 => Just("10.1.0.0/30".to_owned()),
        1 => Just("fd00::/120".to_owned()),
    ];
    prop_oneof![
        12 => proptest::collection::vec(one, 1..3),
        1 => Just(vec![]),
    ]
    .prop_map(|v| AddressList::new(v.iter().map(|s| Cidr::parse("a", s).unwrap()).collect()))
}

fn ports() -> impl Strategy<Value = PortList> {
    prop_oneof![
        2 => Just(PortList::default()),
        3 => proptest::sample::select(vec![22u16, 80, 443, 8080]).prop_map(|p| PortList::new(vec![PortRange::single(p)])),
        1 => (1000u16..1010, 0u16..20).prop_map(|(a, b)| PortList::new(vec![PortRange { start: a, end: a + b }])),
        1 => Just(PortList::new(vec![PortRange::single(53), PortRange::single(123)])),
    ]
}

fn rule(id: String) -> impl Strategy<Value = AclRule> {
    (
        any::<bool>(),
        prop_oneof![5 => Just(Direction::In), 1 => Just(Direction::Out)],
        prop_oneof![3 => Just(Protocol::TCP), 2 => Just(Protocol::UDP), 1 => Just(Protocol::Any), 1 => Just(Protocol::Number(47))],
        remotes(),
        ports(),
        prop_oneof![Just(100u16), Just(200), Just(300)],
    )
        .prop_map(move |(allow, direction, protocol, remote, lp, priority)| {
            let ported = protocol == Protocol::Any || protocol.has_ports();
            AclRule {
                id: RuleId::parse("id", &id).unwrap(),
                action: if allow { Action::Allow } else { Action::Block },
                direction,
                protocol,
                local_addresses: AddressList::default(),
                remote_addresses: remote,
                local_ports: if ported { lp } else { PortList::default() },
                remote_ports: PortList::default(),
                rule_type: RuleType::Host,
                priority,
            }
        })
}

/// An ACL and a sequence of changes: `Ok(rule)` adds it at a position,
/// `Err(i)` removes the rule at index `i` (modulo the ACL's length).
type Case = (bool, Vec<AclRule>, Vec<(Result<AclRule, usize>, usize)>);

fn case() -> impl Strategy<Value = Case> {
    (any::<bool>(), 0usize..30, 1usize..12).prop_flat_map(|(replace, n, steps)| {
        let rules: Vec<_> = (0..n).map(|i| rule(format!("r{i}"))).collect();
        let changes: Vec<_> = (0..steps)
            .map(|s| {
                (
                    prop_oneof![
                        rule(format!("x{s}")).prop_map(Ok),
                        (0usize..64).prop_map(Err),
                    ],
                    0usize..64,
                )
            })
            .collect();
        (Just(replace), rules, changes)
    })
}

fn compile(policy: &EndpointPolicy) -> Table {
    compile_endpoint_firewall(&[
        FirewallEndpoint {
            ifname: "eth0".into(),
            policy: policy.clone(),
        },
        // A second endpoint in the namespace: its maps must stay as they are.
        FirewallEndpoint {
            ifname: "eth1".into(),
            policy: EndpointPolicy::new(facts(false), vec![]).unwrap(),
        },
    ])
    .unwrap()
}

#[test]
fn incremental_equals_full_compile() {
    let taken = AtomicUsize::new(0);
    let changes = AtomicUsize::new(0);
    let declined = AtomicUsize::new(0);
    let mut runner = TestRunner::new(Config {
        cases: 300,
        ..Config::default()
    });
    runner
        .run(&case(), |(replace, rules, steps)| {
            let mut policy = EndpointPolicy::new(facts(replace), rules).unwrap();
            let mut table = compile(&policy);
            // The rule lists kept from change to change, as the engine
            // keeps them: the same ops as a fresh start, and (debug builds)
            // checked against a fresh build after every change.
            let mut lists = RuleLists::default();
            for (change, at) in steps {
                let mut rules = policy.rules().to_vec();
                // Where the rule goes or went, as the engine tells it.
                let p = match change {
                    Ok(r) => {
                        let p = at % (rules.len() + 1);
                        rules.insert(p, r);
                        p
                    }
                    Err(i) if !rules.is_empty() => {
                        let i = i % rules.len();
                        rules.remove(i);
                        i
                    }
                    Err(_) => continue,
                };
                let next = EndpointPolicy::new(facts(replace), rules).unwrap();
                let full = compile(&next);
                changes.fetch_add(1, Ordering::Relaxed);
                let fresh = firewall_rule_change(&table, "eth0", &policy, &next).unwrap();
                let kept = firewall_rule_change_kept(
                    &table,
                    "eth0",
                    policy.rules(),
                    &next,
                    &mut lists,
                    Some(p),
                )
                .unwrap();
                // The kept lists may decline a change the fresh path
                // handles (the engine then compiles in full: slower, never
                // wrong), e.g. a rule inserted before rules that match
                // exactly what it matches; what they do return must be the
                // fresh path's ops, and declining clears them.
                prop_assert!(
                    kept.is_none() || fresh == kept,
                    "kept lists: {kept:?}, fresh: {fresh:?}"
                );
                prop_assert!(kept.is_some() || lists.is_empty());
                if fresh.is_some() && kept.is_none() {
                    declined.fetch_add(1, Ordering::Relaxed);
                }
                if let Some(ops) = fresh {
                    taken.fetch_add(1, Ordering::Relaxed);
                    let got = apply(&table, &ops);
                    prop_assert!(got == full, "ops {:?}", ops);
                }
                table = full;
                policy = next;
            }
            Ok(())
        })
        .unwrap();
    let (taken, changes) = (taken.into_inner(), changes.into_inner());
    let declined = declined.into_inner();
    eprintln!("incremental path taken for {taken} of {changes} changes, {declined} declined by the kept lists");
    assert!(
        taken * 2 > changes,
        "the incremental path was taken for {taken} of {changes} changes only"
    );
    assert!(
        declined * 50 < taken.max(1),
        "the kept lists declined {declined} of the {taken} changes the fresh path took"
    );
}

#[test]
fn other_changes_are_left_to_the_full_compile() {
    let block = |id: &str, remote: &str| AclRule {
        id: RuleId::parse("id", id).unwrap(),
        action: Action::Block,
        direction: Direction::In,
        protocol: Protocol::TCP,
        local_addresses: AddressList::default(),
        remote_addresses: AddressList::new(vec![Cidr::parse("a", remote).unwrap()]),
        local_ports: PortList::new(vec![PortRange::single(80)]),
        remote_ports: PortList::default(),
        rule_type: RuleType::Host,
        priority: 100,
    };
    let old = EndpointPolicy::new(facts(false), vec![block("a", "10.1.0.1")]).unwrap();
    let table = compile(&old);
    // Two rules at once.
    let two = EndpointPolicy::new(
        facts(false),
        vec![
            block("a", "10.1.0.1"),
            block("b", "10.1.0.2"),
            block("c", "10.1.0.3"),
        ],
    )
    .unwrap();
    assert!(firewall_rule_change(&table, "eth0", &old, &two)
        .unwrap()
        .is_none());
    // Other facts.
    let replaced = EndpointPolicy::new(facts(true), old.rules().to_vec()).unwrap();
    assert!(firewall_rule_change(&table, "eth0", &old, &replaced)
        .unwrap()
        .is_none());
    // One rule added: handled, and it reaches the full compile.
    let one = EndpointPolicy::new(
        facts(false),
        vec![block("a", "10.1.0.1"), block("b", "10.1.0.2")],
    )
    .unwrap();
    let ops = firewall_rule_change(&table, "eth0", &old, &one)
        .unwrap()
        .expect("one rule is incremental");
    assert_eq!(apply(&table, &ops), compile(&one));
}
