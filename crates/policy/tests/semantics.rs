//! Unit tests of spec §5: tie-breaks, layered vs replace, per-point rules,
//! ports, anti-spoofing.

mod common;

use bulkhead_model::{
    AclMode, AclProfile, AclRule, AclRuleSpec, Direction, Driver, Isolation, MacAddress,
};
use bulkhead_policy::interp::{run, Context};
use bulkhead_policy::ir::{Hook, Verdict as Nft};
use bulkhead_policy::{
    compile_switch, evaluate, Decider, EndpointFacts, EndpointPolicy, EnforcementPoint, Packet,
    SwitchPortPolicy, Verdict,
};
use common::ip;

const HOST: EnforcementPoint = EnforcementPoint::HostFirewall;

fn rule(
    id: &str,
    action: &str,
    dir: &str,
    proto: &str,
    ports: &str,
    rtype: &str,
    prio: u16,
) -> AclRule {
    let spec = AclRuleSpec {
        action: action.into(),
        direction: dir.into(),
        protocol: Some(proto.into()),
        local_ports: Some(ports.into()),
        rule_type: Some(rtype.into()),
        priority: Some(prio.to_string()),
        ..Default::default()
    };
    spec.validate(id).unwrap()
}

fn policy(mode: AclMode, rules: Vec<AclRule>) -> EndpointPolicy {
    let facts = EndpointFacts {
        driver: Driver::L2Bridge,
        isolation: Isolation::Process,
        profile: AclProfile::Current,
        acl_mode: mode,
        addresses: vec![ip(common::EP4)],
        port_mappings: vec![],
    };
    EndpointPolicy::new(facts, rules).unwrap()
}

fn tcp_in(port: u16) -> Packet {
    Packet::new(Direction::In, ip("10.0.0.9"), ip(common::EP4), 6).with_ports(40000, port)
}

#[test]
fn lower_priority_wins_and_block_wins_ties() {
    let p = policy(
        AclMode::Layered,
        vec![
            rule("a", "allow", "in", "tcp", "", "host", 200),
            rule("b", "block", "in", "tcp", "", "host", 200),
        ],
    );
    assert_eq!(
        evaluate(&p, HOST, &tcp_in(80)).decided_by,
        Decider::Custom("b".parse::<String>().unwrap().try_into().unwrap())
    );
    let p = policy(
        AclMode::Layered,
        vec![
            rule("a", "allow", "in", "tcp", "", "host", 100),
            rule("b", "block", "in", "tcp", "", "host", 200),
        ],
    );
    assert_eq!(evaluate(&p, HOST, &tcp_in(80)).verdict, Verdict::Allow);
}

#[test]
fn layered_falls_through_replace_blocks() {
    let rules = vec![rule("a", "block", "in", "tcp", "23", "host", 100)];
    let layered = policy(AclMode::Layered, rules.clone());
    assert_eq!(
        evaluate(&layered, HOST, &tcp_in(80)).decided_by,
        Decider::Default("current:in:allow-common")
    );
    let replace = policy(AclMode::Replace, rules);
    let d = evaluate(&replace, HOST, &tcp_in(80));
    assert_eq!(
        (d.verdict, d.decided_by),
        (
            Verdict::Block,
            Decider::Default("replace:in:block-unmatched")
        )
    );
    let out = Packet::new(Direction::Out, ip(common::EP4), ip("10.0.0.9"), 17).with_ports(1, 53);
    assert_eq!(
        evaluate(&replace, HOST, &out).decided_by,
        Decider::Default("replace:out:block-unmatched")
    );
    // The switch port has no custom rule: its defaults stay.
    assert_eq!(
        evaluate(&replace, EnforcementPoint::SwitchPort, &tcp_in(80)).decided_by,
        Decider::Default("port:in:allow-all")
    );
}

#[test]
fn rules_with_ports_only_match_ported_protocols() {
    let p = policy(
        AclMode::Layered,
        vec![rule("a", "block", "in", "any", "0-65535", "host", 1)],
    );
    assert_eq!(evaluate(&p, HOST, &tcp_in(80)).verdict, Verdict::Block);
    let icmp = Packet::new(Direction::In, ip("10.0.0.9"), ip(common::EP4), 1);
    assert_eq!(
        evaluate(&p, HOST, &icmp).decided_by,
        Decider::Default("current:in:allow-common")
    );
    let gre = Packet::new(Direction::In, ip("10.0.0.9"), ip(common::EP4), 47);
    assert_eq!(
        evaluate(&p, HOST, &gre).decided_by,
        Decider::Default("current:in:block-other")
    );
}

#[test]
fn replies_and_neighbour_discovery_always_pass() {
    let p = policy(
        AclMode::Replace,
        vec![rule("a", "block", "in", "any", "", "host", 1)],
    );
    let mut reply = tcp_in(80);
    reply.ct = bulkhead_policy::CtState::Established;
    assert_eq!(evaluate(&p, HOST, &reply).decided_by, Decider::Stateful);
    let mut ns = Packet::new(Direction::In, ip("fe80::1"), ip("fd00::2"), 58);
    ns.icmp_type = Some(135);
    assert_eq!(evaluate(&p, HOST, &ns).verdict, Verdict::Allow);
}

#[test]
fn the_switch_port_drops_spoofed_sources() {
    let p = policy(AclMode::Layered, vec![]);
    let t = compile_switch(&[SwitchPortPolicy {
        port: "bhp0".into(),
        mac: MacAddress([2, 0, 0, 0, 0, 2]),
        policy: p,
    }])
    .unwrap();
    let mut ctx = Context::from_packet(&Packet::new(
        Direction::Out,
        ip(common::EP4),
        ip("10.0.0.9"),
        6,
    ));
    ctx.iif = Some("bhp0".into());
    ctx.ether_saddr = Some([2, 0, 0, 0, 0, 2]);
    assert_eq!(run(&t, Hook::Prerouting, &ctx), Nft::Accept);
    ctx.src = ip("10.0.0.77");
    assert_eq!(run(&t, Hook::Prerouting, &ctx), Nft::Drop);
    ctx.src = ip(common::EP4);
    ctx.ether_saddr = Some([2, 0, 0, 0, 0, 3]);
    assert_eq!(run(&t, Hook::Prerouting, &ctx), Nft::Drop);
}

#[test]
fn one_more_rule_is_a_few_element_ops() {
    use bulkhead_policy::diff::{diff, Op};
    use bulkhead_policy::{compile_endpoint_firewall, FirewallEndpoint};
    let many: Vec<AclRule> = (0..500)
        .map(|i| {
            rule(
                &format!("r{i}"),
                "allow",
                "in",
                "tcp",
                &(1000 + i).to_string(),
                "host",
                100,
            )
        })
        .collect();
    let compile = |rules: Vec<AclRule>| {
        compile_endpoint_firewall(&[FirewallEndpoint {
            ifname: "eth0".into(),
            policy: policy(AclMode::Layered, rules),
        }])
        .unwrap()
    };
    let a = compile(many.clone());
    let mut more = many;
    more.push(rule("new", "block", "in", "tcp", "9999", "host", 100));
    let ops = diff(&a, &compile(more));
    let touched: usize = ops
        .iter()
        .map(|op| match op {
            Op::AddElements { elements, .. } => elements.len(),
            Op::DeleteElements { keys, .. } => keys.len(),
            _ => 100,
        })
        .sum();
    assert!(touched <= 4, "{ops:?}");
}
