//! Counter attribution (spec §12): every object the compiler makes of a
//! custom rule carries that rule's counter name, defaults are counted, and
//! an update replaces an element whose rule changed (its count restarts)
//! while leaving elements whose rule did not change alone (their counts
//! stay).

mod common;

use bulkhead_model::{AclMode, AclProfile, AclRule, AclRuleSpec, Driver, Isolation};
use bulkhead_policy::diff::{diff, Op};
use bulkhead_policy::ir::{counter_owner, Action, Table, Verdict};
use bulkhead_policy::{compile_endpoint_firewall, EndpointFacts, EndpointPolicy, FirewallEndpoint};
use common::ip;

fn rule(id: &str, action: &str, ports: &str, remote: Option<&str>, prio: u16) -> AclRule {
    AclRuleSpec {
        action: action.into(),
        direction: "in".into(),
        protocol: Some("tcp".into()),
        local_ports: Some(ports.into()),
        remote_addresses: remote.map(Into::into),
        priority: Some(prio.to_string()),
        ..Default::default()
    }
    .validate(id)
    .unwrap()
}

fn firewall(rules: Vec<AclRule>) -> Table {
    let facts = EndpointFacts {
        driver: Driver::Nat,
        isolation: Isolation::Process,
        profile: AclProfile::Current,
        acl_mode: AclMode::Layered,
        addresses: vec![ip(common::EP4)],
        port_mappings: vec![],
    };
    let policy = EndpointPolicy::new(facts, rules).unwrap();
    compile_endpoint_firewall(&[FirewallEndpoint {
        ifname: "eth0".into(),
        policy,
    }])
    .unwrap()
}

/// Rules on ports only (one map: element counters) and on addresses
/// (two-level: counted region-chain rules and lead elements).
fn mixed() -> Vec<AclRule> {
    vec![
        rule("web", "allow", "80,443", None, 100),
        rule("ssh-ops", "allow", "22", Some("10.9.0.0/16"), 200),
        rule("ssh", "block", "22", None, 300),
        rule("ops", "allow", "1-65535", Some("10.9.1.7"), 400),
    ]
}

#[test]
fn every_custom_object_names_its_rule_and_defaults_count() {
    let t = firewall(mixed());
    let ids: Vec<std::sync::Arc<str>> = mixed()
        .iter()
        .map(|r| counter_owner(r.id.as_str()))
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    for s in t.sets.values().filter(|s| s.name.starts_with("acl_")) {
        assert!(s.counter, "{} has no counters", s.name);
        for (k, o) in &s.owners {
            assert!(
                s.elements.contains_key(k) && ids.contains(o),
                "{}: {o}",
                s.name
            );
            seen.insert(o.clone());
        }
    }
    for c in t.chains.values() {
        for r in &c.rules {
            let custom = r.comment.as_deref().is_some_and(|c| c.starts_with("acl:"));
            if custom {
                assert!(r.counter && ids.contains(r.comment.as_ref().unwrap()));
                seen.insert(r.comment.clone().unwrap());
            }
            let flow = matches!(
                r.action,
                Action::Verdict(Verdict::Jump(_) | Verdict::Goto(_))
            );
            if r.comment.is_some() && !flow {
                assert!(r.counter, "{}: {r:?} is not counted", c.name);
            }
        }
    }
    assert_eq!(seen.len(), ids.len(), "every rule has a counter: {seen:?}");
    let defaults = &t.chains["ep_eth0_in"].rules;
    assert!(defaults
        .iter()
        .any(|r| r.counter && r.comment.as_deref() == Some("current:in:block-other")));
}

fn element_ops(ops: &[Op]) -> Vec<&Op> {
    ops.iter()
        .filter(|o| matches!(o, Op::AddElements { .. } | Op::DeleteElements { .. }))
        .collect()
}

#[test]
fn a_rule_renamed_replaces_its_elements_and_keeps_the_others() {
    let old = firewall(vec![
        rule("web", "allow", "80", None, 100),
        rule("mail", "allow", "25", None, 200),
    ]);
    // Same match and action, another id: the element's verdict is equal,
    // but its counter belongs to another rule now.
    let new = firewall(vec![
        rule("web2", "allow", "80", None, 100),
        rule("mail", "allow", "25", None, 200),
    ]);
    let ops = diff(&old, &new);
    let elems = element_ops(&ops);
    // One element per family map (v4, v6): deleted and added again.
    assert_eq!(elems.len(), 4, "{elems:#?}");
    for op in elems {
        match op {
            Op::DeleteElements { keys, .. } => assert_eq!(keys.len(), 1),
            Op::AddElements {
                elements, owners, ..
            } => {
                assert_eq!(elements.len(), 1);
                assert_eq!(owners[0].1, counter_owner("web2"));
            }
            _ => unreachable!(),
        }
    }
    let applied = bulkhead_policy::diff::apply(&old, &ops);
    assert_eq!(applied, new, "apply(diff) reproduces the owners");
}

#[test]
fn an_outbound_rule_leaves_inbound_counters_alone() {
    let old = firewall(mixed());
    let mut rules = mixed();
    rules.push(
        AclRuleSpec {
            action: "block".into(),
            direction: "out".into(),
            protocol: Some("udp".into()),
            remote_ports: Some("53".into()),
            ..Default::default()
        }
        .validate("dns")
        .unwrap(),
    );
    let new = firewall(rules);
    for op in diff(&old, &new) {
        let touched = match &op {
            Op::AddElements { set, .. } | Op::DeleteElements { set, .. } => set.clone(),
            Op::FlushChain { name } | Op::DeleteChain { name } => name.clone(),
            Op::AddRules { chain, .. } => chain.clone(),
            Op::DeleteSet { name } => name.clone(),
            _ => continue,
        };
        assert!(!touched.contains("_in"), "{op:?} touches an inbound object");
    }
}
