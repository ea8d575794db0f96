//! `may_refuse` against the reference evaluator: for every one-rule add or
//! remove over a pool of rules, in layered and replace mode, a change it
//! calls harmless never turns a new flow's verdict from allow to block.

use std::net::IpAddr;

use bulkhead_model::{
    AclMode, AclProfile, AclRule, Action, AddressList, Cidr, Direction, Driver, Isolation,
    PortList, PortRange, Protocol, RuleId, RuleType,
};
use bulkhead_policy::{evaluate, CtState, EndpointFacts, EndpointPolicy, Packet, Verdict};

use super::{may_refuse, Points};
use bulkhead_policy::EnforcementPoint;

const LOCAL: &str = "10.0.0.2";
const REMOTES: [&str; 3] = ["10.0.0.3", "10.0.0.9", "192.168.1.1"];

fn rule(id: &str, action: Action, remote: Option<&str>, port: Option<u16>, prio: u16) -> AclRule {
    AclRule {
        id: RuleId::parse("id", id).unwrap(),
        action,
        direction: Direction::In,
        protocol: Protocol::TCP,
        local_addresses: AddressList::default(),
        remote_addresses: AddressList::new(
            remote
                .map(|r| Cidr::parse("a", r).unwrap())
                .into_iter()
                .collect(),
        ),
        local_ports: PortList::new(port.map(PortRange::single).into_iter().collect()),
        remote_ports: PortList::default(),
        rule_type: RuleType::Host,
        priority: prio,
    }
}

fn pool() -> Vec<AclRule> {
    vec![
        rule("a", Action::Block, Some("10.0.0.3"), Some(80), 100),
        rule("b", Action::Allow, Some("10.0.0.0/24"), None, 200),
        rule("c", Action::Allow, None, Some(443), 100),
        rule("d", Action::Block, None, None, 300),
        rule("e", Action::Allow, Some("192.168.1.1"), Some(80), 50),
    ]
}

fn policy(replace: bool, rules: Vec<AclRule>) -> EndpointPolicy {
    let facts = EndpointFacts {
        driver: Driver::Nat,
        isolation: Isolation::Process,
        profile: AclProfile::Current,
        acl_mode: if replace {
            AclMode::Replace
        } else {
            AclMode::Layered
        },
        addresses: vec![LOCAL.parse().unwrap()],
        port_mappings: vec![],
    };
    EndpointPolicy::new(facts, rules).unwrap()
}

fn verdicts(p: &EndpointPolicy) -> Vec<Verdict> {
    let mut out = Vec::new();
    for remote in REMOTES {
        for (protocol, port) in [(6u8, 80u16), (6, 443), (6, 22), (17, 80), (47, 0)] {
            let src: IpAddr = remote.parse().unwrap();
            let mut pk = Packet::new(Direction::In, src, LOCAL.parse().unwrap(), protocol);
            if protocol != 47 {
                pk = pk.with_ports(40000, port);
            }
            pk.ct = CtState::New;
            out.push(evaluate(p, EnforcementPoint::HostFirewall, &pk).verdict);
        }
    }
    out
}

fn refuses(before: &[Verdict], after: &[Verdict]) -> bool {
    before
        .iter()
        .zip(after)
        .any(|(b, a)| *b == Verdict::Allow && *a == Verdict::Block)
}

#[test]
fn harmless_changes_refuse_nothing() {
    let pool = pool();
    let (mut checked, mut refusing) = (0, 0);
    for replace in [false, true] {
        for mask in 0u32..(1 << pool.len()) {
            let base: Vec<AclRule> = (0..pool.len())
                .filter(|i| mask & (1 << i) != 0)
                .map(|i| pool[i].clone())
                .collect();
            for r in &pool {
                let present = base.iter().any(|b| b.id == r.id);
                let (old, new, own) = if present {
                    let rest: Vec<AclRule> =
                        base.iter().filter(|b| b.id != r.id).cloned().collect();
                    (base.clone(), rest, r.action == Action::Allow)
                } else {
                    let mut more = base.clone();
                    more.push(r.clone());
                    (base.clone(), more, r.action == Action::Block)
                };
                let points = Points::one(RuleType::Host, own);
                let said = may_refuse(points, replace, Points::of(&old), Points::of(&new));
                let did = refuses(
                    &verdicts(&policy(replace, old)),
                    &verdicts(&policy(replace, new)),
                );
                assert!(
                    said || !did,
                    "replace={replace} base={mask:b} rule {}: refuses a flow, may_refuse said no",
                    r.id
                );
                checked += 1;
                refusing += usize::from(did);
            }
        }
    }
    // The check can fail: many of these changes do refuse flows.
    assert!(
        refusing > 0 && checked > refusing,
        "{refusing} of {checked}"
    );
}

#[test]
fn replace_mode_first_allow_can_refuse() {
    // The first custom rule of a replace-mode endpoint swaps the profile's
    // defaults for "block unmatched": an allow then refuses other flows.
    let old = policy(true, vec![]);
    let new = policy(true, vec![pool()[2].clone()]);
    assert!(refuses(&verdicts(&old), &verdicts(&new)));
    let points = Points::one(RuleType::Host, false);
    assert!(may_refuse(
        points,
        true,
        Points::of(old.rules()),
        Points::of(new.rules())
    ));
}

#[test]
fn a_rule_for_a_point_the_endpoint_lacks_is_refused_and_nothing_changes() {
    // A change checks only the rule it brings (the stored ones were checked
    // when stored), before it stores anything; programming checks the
    // whole policy again behind it. A switch rule on a nat endpoint, which
    // has no switch port, is refused, naming the rule type, and nothing
    // changes.
    let (e, k) = crate::test_kit::engine("10.60.0.0/24", &["c"]);
    e.create_endpoint(bulkhead_model::EndpointSpec {
        name: "ep".into(),
        network: "n".into(),
        namespace: "c".into(),
        ..Default::default()
    })
    .expect("endpoint");
    let host = bulkhead_model::AclRuleSpec {
        id: Some("h".into()),
        action: "block".into(),
        direction: "in".into(),
        protocol: Some("tcp".into()),
        local_ports: Some("80".into()),
        ..Default::default()
    };
    e.add_acl("ep", host.clone()).expect("a host rule");
    let applied = k.applied().len();
    let switch = bulkhead_model::AclRuleSpec {
        id: Some("s".into()),
        rule_type: Some("switch".into()),
        ..host
    };
    let err = e.add_acl("ep", switch).unwrap_err().to_string();
    assert!(err.contains("switch"), "{err}");
    let ids: Vec<String> = e
        .acls("ep")
        .expect("acls")
        .iter()
        .map(|r| r.id.to_string())
        .collect();
    assert_eq!(ids, ["h"]);
    assert_eq!(k.applied().len(), applied, "nothing programmed");
}
