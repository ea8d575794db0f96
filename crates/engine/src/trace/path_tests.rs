//! Unit tests of the pure path model: every step kind, on a hand-made
//! topology (two nat networks, one l2bridge network, the host, outside).

use std::net::IpAddr;

use bulkhead_model::{AclMode, AclProfile, AclRuleSpec, Cidr, Driver, Isolation, PortMapping};
use bulkhead_policy::{EndpointFacts, EndpointPolicy, Verdict};

use super::path::{trace_path, EpView, NetView, Origin, Probe, Stage, Target, Topology};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const UPLINK: &str = "192.0.2.1";

fn net(name: &str, driver: Driver, subnet: &str, gw: &str) -> NetView {
    NetView {
        name: name.into(),
        driver,
        subnets: vec![Cidr::parse("subnet", subnet).unwrap()],
        gateway: Some(ip(gw)),
    }
}

fn ep(
    name: &str,
    network: usize,
    addr: &str,
    publish: &[&str],
    rules: &[AclRuleSpec],
    isolation: Isolation,
) -> EpView {
    let driver = [Driver::Nat, Driver::Nat, Driver::L2Bridge][network];
    let mappings: Vec<PortMapping> = publish
        .iter()
        .map(|p| PortMapping::parse("publish", p).unwrap())
        .collect();
    let facts = EndpointFacts {
        driver,
        isolation,
        profile: AclProfile::Current,
        acl_mode: AclMode::Layered,
        addresses: vec![ip(addr)],
        port_mappings: mappings.clone(),
    };
    let rules = rules
        .iter()
        .enumerate()
        .map(|(i, r)| r.validate(&format!("r{i}")).unwrap())
        .collect();
    EpView {
        name: name.into(),
        network,
        addresses: vec![ip(addr)],
        switch_port: format!("bhp{name}"),
        policy: EndpointPolicy::new(facts, rules).unwrap(),
        mappings,
    }
}

fn rule(
    action: &str,
    direction: &str,
    protocol: &str,
    remote: Option<&str>,
    rule_type: &str,
) -> AclRuleSpec {
    AclRuleSpec {
        id: Some(format!("{action}-{direction}-{protocol}")),
        action: action.into(),
        direction: direction.into(),
        protocol: Some(protocol.into()),
        remote_addresses: remote.map(Into::into),
        rule_type: Some(rule_type.into()),
        priority: Some("100".into()),
        ..Default::default()
    }
}

/// n1 (nat): ea 10.1.0.2 publishing 18080:80, ea2 10.1.0.3; n2 (nat): eb
/// 10.2.0.2; l2 (l2bridge, LAN 198.51.100.0/24): ec .10 with a switch rule
/// blocking TCP in from eb... and a vm endpoint ev .11.
fn world(ea_rules: &[AclRuleSpec], ec_rules: &[AclRuleSpec]) -> Topology {
    let p = Isolation::Process;
    Topology {
        networks: vec![
            net("n1", Driver::Nat, "10.1.0.0/24", "10.1.0.1"),
            net("n2", Driver::Nat, "10.2.0.0/24", "10.2.0.1"),
            net("l2", Driver::L2Bridge, "198.51.100.0/24", "198.51.100.254"),
        ],
        endpoints: vec![
            ep(
                "ea",
                0,
                "10.1.0.2",
                &["18080:80", "192.0.2.1:18081:81/udp"],
                ea_rules,
                p,
            ),
            ep("ea2", 0, "10.1.0.3", &[], &[], p),
            ep("eb", 1, "10.2.0.2", &[], &[], p),
            ep("ec", 2, "198.51.100.10", &[], ec_rules, p),
            ep("ev", 2, "198.51.100.11", &[], &[], Isolation::Vm),
        ],
        host_addresses: vec![
            ip("127.0.0.1"),
            ip(UPLINK),
            ip("198.51.100.1"),
            ip("10.1.0.1"),
            ip("10.2.0.1"),
        ],
        masquerade_source: Some(ip(UPLINK)),
    }
}

fn probe(origin: Origin, src: &str, dst: &str, protocol: u8, port: Option<u16>) -> Probe {
    let ported = protocol == 6 || protocol == 17;
    Probe {
        origin,
        src: ip(src),
        dst: ip(dst),
        protocol,
        src_port: ported.then_some(40000),
        dst_port: if ported { port.or(Some(0)) } else { None },
        established: false,
    }
}

fn rules_of(t: &super::PathTrace) -> Vec<String> {
    t.steps
        .iter()
        .map(|s| format!("{} {}", s.point, s.rule))
        .collect()
}

#[test]
fn endpoints_of_two_nat_networks_are_isolated() {
    let w = world(&[], &[]);
    let t = trace_path(
        &w,
        probe(Origin::Endpoint(0), "10.1.0.2", "10.2.0.2", 6, Some(80)),
    );
    assert_eq!(t.verdict, Verdict::Block);
    let last = t.steps.last().unwrap();
    assert_eq!(
        (last.stage, last.rule.as_str()),
        (Stage::Network, "networks are isolated")
    );
    // Same network: host firewall out, binding, network, host firewall in.
    let t = trace_path(
        &w,
        probe(Origin::Endpoint(0), "10.1.0.2", "10.1.0.3", 6, Some(80)),
    );
    assert_eq!(t.verdict, Verdict::Allow);
    assert_eq!(
        rules_of(&t),
        [
            "host current:out:allow-all",
            "switch switch:binding",
            "network same-network",
            "host current:in:allow-common",
            "delivery delivered"
        ]
        .map(String::from)
    );
}

#[test]
fn a_spoofed_source_is_dropped_at_the_switch_port_after_the_host_firewall() {
    let w = world(&[], &[]);
    let t = trace_path(
        &w,
        probe(Origin::Endpoint(0), "10.1.0.3", "10.1.0.1", 17, Some(53)),
    );
    assert_eq!(t.verdict, Verdict::Block);
    assert_eq!(t.steps[0].stage, Stage::SourcePoint);
    assert_eq!(t.steps[1].rule, "switch:anti-spoofing");
    assert_eq!(t.steps.len(), 2, "nothing after the drop");
    // Established does not help a forged source.
    let mut p = probe(
        Origin::Endpoint(3),
        "198.51.100.99",
        "198.51.100.2",
        6,
        Some(80),
    );
    p.established = true;
    assert_eq!(trace_path(&w, p).verdict, Verdict::Block);
    // A DHCP server's offer is dropped at the port too (spec §9).
    let mut p = probe(Origin::Endpoint(0), "10.1.0.2", "10.1.0.3", 17, Some(68));
    p.src_port = Some(67);
    let t = trace_path(&w, p);
    assert_eq!(
        (t.verdict, t.steps[1].rule.as_str()),
        (Verdict::Block, "switch:no-dhcp-server")
    );
}

#[test]
fn published_ports_capture_only_host_addresses_and_resolve_to_the_endpoint() {
    let w = world(&[], &[]);
    let t = trace_path(
        &w,
        probe(Origin::Outside, "192.0.2.2", UPLINK, 6, Some(18080)),
    );
    assert_eq!(t.verdict, Verdict::Allow);
    assert_eq!(t.target, Target::Endpoint("ea".into()));
    assert_eq!(
        (t.final_src, t.final_dst, t.final_dst_port),
        (ip("192.0.2.2"), ip("10.1.0.2"), Some(80))
    );
    assert!(rules_of(&t).contains(&"network published-port".to_string()));
    // Not the host's address: nothing is captured; it is routed out.
    let t = trace_path(
        &w,
        probe(
            Origin::Endpoint(2),
            "10.2.0.2",
            "203.0.113.9",
            6,
            Some(18080),
        ),
    );
    assert_eq!(t.target, Target::Outside);
    assert!(rules_of(&t).contains(&"nat outbound".to_string()));
    // A mapping bound to one host address captures that address only.
    let t = trace_path(
        &w,
        probe(Origin::Outside, "192.0.2.2", UPLINK, 17, Some(18081)),
    );
    assert_eq!(t.target, Target::Endpoint("ea".into()));
    let t = trace_path(
        &w,
        probe(
            Origin::Outside,
            "192.0.2.2",
            "198.51.100.1",
            17,
            Some(18081),
        ),
    );
    assert_eq!(t.target, Target::Host);
}

#[test]
fn hairpin_is_masqueraded_after_the_switch_saw_the_original_source() {
    // ea blocks TCP from eb at its host firewall: the hairpin arrives from
    // the host's address, so the rule does not see eb.
    let w = world(&[rule("block", "in", "tcp", Some("10.2.0.2"), "host")], &[]);
    let t = trace_path(
        &w,
        probe(Origin::Endpoint(2), "10.2.0.2", "10.2.0.1", 6, Some(18080)),
    );
    assert_eq!(t.verdict, Verdict::Allow, "{:?}", t.steps);
    assert_eq!(t.final_src, ip(UPLINK));
    assert!(rules_of(&t).contains(&"nat hairpin".to_string()));
    // Without the published port, eb cannot reach ea at all.
    let t = trace_path(
        &w,
        probe(Origin::Endpoint(2), "10.2.0.2", "10.1.0.2", 6, Some(80)),
    );
    assert_eq!(t.verdict, Verdict::Block);
}

#[test]
fn an_l2tunnel_hairpin_is_masqueraded_at_the_target_port_like_any_other() {
    // The kernel routes DNATed connections by `main` (not into the fabric),
    // so the hairpin leaves by ea's switch port: the masquerade source is
    // the host's first global address, not its address on the tunnel LAN.
    let mut w = world(&[], &[]);
    w.networks[2].driver = Driver::L2Tunnel;
    let t = trace_path(
        &w,
        probe(
            Origin::Endpoint(3),
            "198.51.100.10",
            "198.51.100.1",
            6,
            Some(18080),
        ),
    );
    assert_eq!(t.verdict, Verdict::Allow, "{:?}", t.steps);
    assert_eq!(t.target, Target::Endpoint("ea".into()));
    assert_eq!(t.final_src, ip(UPLINK));
    assert!(rules_of(&t).contains(&"nat hairpin".to_string()));
}

#[test]
fn a_nat_endpoint_reaches_the_host_only_at_its_gateway() {
    let w = world(&[], &[]);
    let to = |dst: &str| trace_path(&w, probe(Origin::Endpoint(0), "10.1.0.2", dst, 6, Some(22)));
    assert_eq!(to("10.1.0.1").verdict, Verdict::Allow);
    for other in [UPLINK, "10.2.0.1", "198.51.100.1"] {
        let t = to(other);
        assert_eq!(
            (t.verdict, t.steps.last().unwrap().rule.as_str()),
            (Verdict::Block, "host:gateway-only"),
            "{other}"
        );
    }
    // On the L2 drivers the host is one more machine of the LAN.
    let t = trace_path(
        &w,
        probe(Origin::Endpoint(3), "198.51.100.10", UPLINK, 6, Some(22)),
    );
    assert_eq!(t.verdict, Verdict::Allow);
    // A reply to the host's own connection is established: it passes.
    let mut p = probe(Origin::Endpoint(0), "10.1.0.2", UPLINK, 6, Some(40000));
    p.established = true;
    assert_eq!(trace_path(&w, p).verdict, Verdict::Allow);
}

#[test]
fn l2bridge_switch_rules_apply_and_lan_machines_are_not_nat_neighbours() {
    let w = world(
        &[],
        &[rule("block", "in", "tcp", Some("198.51.100.2"), "switch")],
    );
    let t = trace_path(
        &w,
        probe(
            Origin::Outside,
            "198.51.100.2",
            "198.51.100.10",
            6,
            Some(80),
        ),
    );
    let last = t.steps.last().unwrap();
    assert_eq!(
        (t.verdict, last.point, last.stage),
        (Verdict::Block, "switch", Stage::DestinationPoint)
    );
    assert_eq!(last.rule, "block-in-tcp");
    // The reply direction of an allowed flow is stateful at every point.
    let mut p = probe(
        Origin::Outside,
        "198.51.100.2",
        "198.51.100.10",
        6,
        Some(80),
    );
    p.established = true;
    let t = trace_path(&w, p);
    assert_eq!(t.verdict, Verdict::Allow);
    assert!(t
        .steps
        .iter()
        .filter(|s| s.point == "switch" && s.stage != Stage::SourceBinding)
        .all(|s| s.rule == "stateful"));
    // A LAN machine is in the l2bridge network's subnet: isolated from nat.
    let t = trace_path(
        &w,
        probe(Origin::Outside, "198.51.100.2", "10.1.0.2", 1, None),
    );
    assert_eq!(t.steps.last().unwrap().rule, "networks are isolated");
    let t = trace_path(
        &w,
        probe(Origin::Endpoint(0), "10.1.0.2", "198.51.100.2", 1, None),
    );
    assert_eq!(t.verdict, Verdict::Block);
    // The outside (not in any subnet) is routed to a nat endpoint.
    let t = trace_path(&w, probe(Origin::Outside, "192.0.2.2", "10.1.0.2", 1, None));
    assert_eq!(t.verdict, Verdict::Allow);
}

#[test]
fn vm_endpoints_have_no_host_firewall_step() {
    let w = world(&[], &[]);
    let t = trace_path(&w, probe(Origin::Host, UPLINK, "198.51.100.11", 253, None));
    assert_eq!(
        t.verdict,
        Verdict::Allow,
        "vm default: allow all at the switch port"
    );
    assert!(t.steps.iter().all(|s| s.point != "host"));
    assert!(t
        .steps
        .iter()
        .any(|s| s.point == "switch" && s.location == "bhpev"));
    // A process endpoint's default blocks the raw protocol at its host firewall.
    let t = trace_path(&w, probe(Origin::Host, UPLINK, "198.51.100.10", 253, None));
    assert_eq!(
        (t.verdict, t.steps.last().unwrap().point),
        (Verdict::Block, "host")
    );
}
