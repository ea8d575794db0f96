//! Cheap generators of policies and packets that collide often: a small
//! address pool around the endpoint, a few ports, a few priorities.
#![allow(dead_code)]

use std::net::IpAddr;

use bulkhead_model::{
    AclMode, AclProfile, AclRule, Action, AddressList, Cidr, Direction, Driver, Isolation,
    PortList, PortMapping, PortRange, Protocol, RuleId, RuleType,
};
use bulkhead_policy::{check_rule, CtState, EndpointFacts, EndpointPolicy, Packet};
use proptest::prelude::*;

pub const EP4: &str = "10.0.0.2";
pub const EP6: &str = "fd00::2";
const V4: [&str; 5] = [
    "10.0.0.2",
    "10.0.0.3",
    "10.0.0.9",
    "192.168.1.1",
    "10.0.1.7",
];
const V6: [&str; 3] = ["fd00::2", "fd00::3", "fe80::1"];
const CIDRS: [&str; 8] = [
    "10.0.0.2",
    "10.0.0.3",
    "10.0.0.0/30",
    "10.0.0.0/16",
    "192.168.1.0/24",
    "fd00::/120",
    "fd00::3",
    "0.0.0.0/0",
];
const PORTS: [u16; 5] = [0, 53, 80, 443, 8080];
const PROTOS: [u8; 9] = [1, 2, 6, 17, 47, 58, 132, 136, 253];

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn addr_list() -> impl Strategy<Value = AddressList> {
    prop_oneof![
        3 => Just(AddressList::default()),
        2 => proptest::sample::subsequence(CIDRS.to_vec(), 1..3)
            .prop_map(|v| AddressList::new(v.iter().map(|s| Cidr::parse("a", s).unwrap()).collect())),
    ]
}

fn port_list() -> impl Strategy<Value = PortList> {
    prop_oneof![
        3 => Just(PortList::default()),
        1 => proptest::sample::select(PORTS.to_vec()).prop_map(|p| PortList::new(vec![PortRange::single(p)])),
        1 => (0u16..100, 0u16..600).prop_map(|(a, b)| PortList::new(vec![PortRange { start: a, end: a + b }])),
    ]
}

fn protocol() -> impl Strategy<Value = Protocol> {
    prop_oneof![
        3 => Just(Protocol::Any),
        3 => proptest::sample::select(PROTOS.to_vec()).prop_map(Protocol::Number),
    ]
}

fn rule(i: usize) -> impl Strategy<Value = AclRule> {
    (
        any::<bool>(),
        any::<bool>(),
        protocol(),
        addr_list(),
        addr_list(),
        port_list(),
        port_list(),
        any::<bool>(),
        prop_oneof![Just(100u16), Just(200), Just(200), Just(300)],
    )
        .prop_map(
            move |(allow, inbound, protocol, local, remote, lp, rp, host, priority)| {
                let ported = protocol == Protocol::Any || protocol.has_ports();
                AclRule {
                    id: RuleId::parse("id", &format!("r{i}")).unwrap(),
                    action: if allow { Action::Allow } else { Action::Block },
                    direction: if inbound {
                        Direction::In
                    } else {
                        Direction::Out
                    },
                    protocol,
                    local_addresses: local,
                    remote_addresses: remote,
                    local_ports: if ported { lp } else { PortList::default() },
                    remote_ports: if ported { rp } else { PortList::default() },
                    rule_type: if host {
                        RuleType::Host
                    } else {
                        RuleType::Switch
                    },
                    priority,
                }
            },
        )
}

pub fn facts() -> impl Strategy<Value = EndpointFacts> {
    let drivers = vec![
        Driver::Nat,
        Driver::Transparent,
        Driver::L2Bridge,
        Driver::L2Tunnel,
        Driver::Overlay,
    ];
    (
        proptest::sample::select(drivers),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        proptest::sample::subsequence(vec![80u16, 53, 8080], 0..3),
    )
        .prop_map(
            |(driver, vm, legacy, replace, dual, published)| EndpointFacts {
                driver,
                isolation: if vm {
                    Isolation::Vm
                } else {
                    Isolation::Process
                },
                profile: if legacy {
                    AclProfile::Legacy
                } else {
                    AclProfile::Current
                },
                acl_mode: if replace {
                    AclMode::Replace
                } else {
                    AclMode::Layered
                },
                addresses: if dual {
                    vec![ip(EP4), ip(EP6)]
                } else {
                    vec![ip(EP4)]
                },
                port_mappings: published
                    .iter()
                    .enumerate()
                    .map(|(i, p)| PortMapping {
                        protocol: if i % 2 == 0 {
                            Protocol::TCP
                        } else {
                            Protocol::UDP
                        },
                        host_ip: None,
                        host_port: 10000 + p,
                        container_port: *p,
                    })
                    .collect(),
            },
        )
}

/// A policy with up to `max` rules; rules the matrix rejects are dropped.
pub fn policy(max: usize) -> impl Strategy<Value = EndpointPolicy> {
    (
        facts(),
        proptest::collection::vec(0..max.max(1), 0..max.max(1) + 1),
    )
        .prop_flat_map(move |(facts, ids)| {
            let n = ids.len().min(max);
            let rules: Vec<_> = (0..n).map(rule).collect();
            (Just(facts), rules).prop_map(|(facts, rules)| {
                let rules = rules
                    .into_iter()
                    .filter(|r| check_rule(facts.driver, facts.isolation, r.rule_type).is_ok())
                    .collect();
                EndpointPolicy::new(facts, rules).unwrap()
            })
        })
}

/// A packet to or from the endpoint (local side is one of its addresses).
pub fn packet() -> impl Strategy<Value = Packet> {
    (
        any::<bool>(),
        any::<bool>(),
        0usize..5,
        proptest::sample::select(PROTOS.to_vec()),
        proptest::sample::select(PORTS.to_vec()),
        0u16..700,
        prop_oneof![6 => Just(CtState::New), 1 => Just(CtState::Established), 1 => Just(CtState::Related), 1 => Just(CtState::Invalid)],
        prop_oneof![3 => Just(None), 1 => Just(Some(135u8)), 1 => Just(Some(128u8))],
    )
        .prop_map(|(inbound, v4, r, protocol, p1, p2, ct, icmp_type)| {
            let (local, remote) = if v4 { (ip(EP4), ip(V4[1 + r % 4])) } else { (ip(EP6), ip(V6[1 + r % 2])) };
            let direction = if inbound { Direction::In } else { Direction::Out };
            let (src, dst) = if inbound { (remote, local) } else { (local, remote) };
            let mut p = Packet::new(direction, src, dst, protocol);
            p.ct = ct;
            if bulkhead_policy::packet::is_ported(protocol) {
                p = p.with_ports(p2, p1);
            }
            if protocol == 58 {
                p.icmp_type = icmp_type;
            }
            p
        })
}
