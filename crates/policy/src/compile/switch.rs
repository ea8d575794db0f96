//! The switch port: `table inet bulkhead` in the host namespace, for every
//! endpoint of the host.
//!
//! ```text
//! chain prerouting (filter, priority -300)   # the port guard (guard.rs):
//!   iifname != @switch_ports accept           #   no router/DHCP-server messages,
//!   <port guard, is_v6 = meta nfproto ipv6>   #   sources and NA targets bound
//!   drop                                      # switch:anti-spoofing
//! chain forward (filter, priority 0)
//!   ct state established,related accept
//!   meta nfproto ipv4 ip saddr vmap @from_endpoint_v4   # addr : jump sw_<port>_out
//!   meta nfproto ipv6 ip6 saddr vmap @from_endpoint_v6
//!   meta nfproto ipv4 ip daddr vmap @to_endpoint_v4     # addr : jump sw_<port>_in
//!   meta nfproto ipv6 ip6 daddr vmap @to_endpoint_v6
//! chain input: the from_endpoint half; chain output: the to_endpoint half
//! chain sw_<port>_<dir>
//!   ct state invalid drop
//!   meta nfproto ipv6 meta l4proto icmpv6 icmpv6 type { nd } return
//!   <ACL map rules as in the host firewall, allow = return>
//!   <default rules (allow-all = return), or the replace-mode drop>
//! ```
//!
//! Only `accept` (never `drop`) is applied to traffic that is not an
//! endpoint's, so the host's other traffic is untouched. Endpoints without a
//! programmable switch port still get their anti-spoofing binding, but no
//! dispatch entry.

mod guard;

use std::collections::BTreeMap;

use bulkhead_model::{Direction, MacAddress};

use super::{add_drop_chains, endpoint_rules, nd_matches, SWITCH, TABLE};
use crate::endpoint::EndpointPolicy;
pub use guard::{anti_spoofing_head, guard_elements, guard_sets, link_local};

use crate::ir::{
    ifname_bytes, Action, Chain, ChainKind, CtStates, Family, Field, Hook, Key, Match, NfProto,
    Rule, Set, SetKind, Table, Verdict,
};
use crate::matrix::EnforcementPoint;
use crate::PolicyError;

/// One switch port: its host-side device, the endpoint's MAC, and policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchPortPolicy {
    pub port: String,
    pub mac: MacAddress,
    pub policy: EndpointPolicy,
}

fn point(bytes: Vec<u8>) -> (Vec<u8>, Vec<u8>) {
    (bytes.clone(), bytes)
}

fn addr_bytes(ip: std::net::IpAddr) -> Vec<u8> {
    match ip {
        std::net::IpAddr::V4(a) => a.octets().to_vec(),
        std::net::IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn prerouting() -> Chain {
    let mut c = Chain::base("prerouting", Hook::Prerouting, -300, ChainKind::Filter);
    c.rules = anti_spoofing_head(
        "switch_ports",
        Match::NfProto(NfProto::Ipv4),
        Match::NfProto(NfProto::Ipv6),
    );
    c.rules
        .push(Rule::verdict(vec![], Verdict::Drop).with_comment("switch:anti-spoofing"));
    c
}

fn dispatch_rules(halves: &[(&str, Field, Field)]) -> Vec<Rule> {
    let mut rules = vec![Rule::verdict(
        vec![Match::CtState(
            CtStates::ESTABLISHED.union(CtStates::RELATED),
        )],
        Verdict::Accept,
    )
    .with_comment("stateful")];
    for &(map, f4, f6) in halves {
        for (nf, f, fam) in [(NfProto::Ipv4, f4, "v4"), (NfProto::Ipv6, f6, "v6")] {
            rules.push(Rule::new(
                vec![Match::NfProto(nf)],
                Action::Vmap {
                    key: vec![f],
                    map: format!("{map}_{fam}"),
                },
            ));
        }
    }
    rules
}

/// Compiles the switch-port table of the host.
pub fn compile_switch(ports: &[SwitchPortPolicy]) -> Result<Table, PolicyError> {
    let mut table = Table::new(Family::Inet, TABLE);
    let sorted: BTreeMap<&str, &SwitchPortPolicy> =
        ports.iter().map(|p| (p.port.as_str(), p)).collect();
    let mut sets: BTreeMap<&str, Set> = BTreeMap::new();
    let mut declare = |name: &'static str, key: Vec<Field>, kind| {
        sets.insert(name, Set::new(name, key, false, kind));
    };
    declare("switch_ports", vec![Field::IifName], SetKind::Set);
    declare(
        "port_macs",
        vec![Field::IifName, Field::EtherSaddr],
        SetKind::Set,
    );
    declare(
        "bindings_v4",
        vec![Field::IifName, Field::EtherSaddr, Field::Saddr4],
        SetKind::Set,
    );
    declare(
        "bindings_v6",
        vec![Field::IifName, Field::EtherSaddr, Field::Saddr6],
        SetKind::Set,
    );
    declare("from_endpoint_v4", vec![Field::Saddr4], SetKind::VerdictMap);
    declare("from_endpoint_v6", vec![Field::Saddr6], SetKind::VerdictMap);
    declare("to_endpoint_v4", vec![Field::Daddr4], SetKind::VerdictMap);
    declare("to_endpoint_v6", vec![Field::Daddr6], SetKind::VerdictMap);
    for s in guard_sets() {
        let name = if s.name == guard::ND_SOURCES {
            guard::ND_SOURCES
        } else {
            guard::ND_TARGETS
        };
        sets.insert(name, s);
    }
    let add = |sets: &mut BTreeMap<&str, Set>, set: &str, key: Key, v: Option<Verdict>| {
        if let Some(s) = sets.get_mut(set) {
            s.elements.insert(key, v);
        }
    };
    for (name, p) in &sorted {
        let (dev, mac) = (point(ifname_bytes(name)), point(p.mac.0.to_vec()));
        add(&mut sets, "switch_ports", vec![dev.clone()].into(), None);
        add(
            &mut sets,
            "port_macs",
            vec![dev.clone(), mac.clone()].into(),
            None,
        );
        let policy: &EndpointPolicy = &p.policy;
        let programmable = policy.has_point(EnforcementPoint::SwitchPort);
        let v6 = policy.facts().addresses.iter().filter_map(|a| match a {
            std::net::IpAddr::V6(a) => Some(*a),
            std::net::IpAddr::V4(_) => None,
        });
        for (set, key) in guard_elements(name, p.mac.0, v6) {
            add(&mut sets, set, key, None);
        }
        for ip in &policy.facts().addresses {
            let fam = if ip.is_ipv4() { "v4" } else { "v6" };
            let a = point(addr_bytes(*ip));
            let bindings = if ip.is_ipv4() {
                "bindings_v4"
            } else {
                "bindings_v6"
            };
            add(
                &mut sets,
                bindings,
                vec![dev.clone(), mac.clone(), a.clone()].into(),
                None,
            );
            if programmable {
                let from = format!("from_endpoint_{fam}");
                let to = format!("to_endpoint_{fam}");
                add(
                    &mut sets,
                    &from,
                    vec![a.clone()].into(),
                    Some(Verdict::Jump(format!("sw_{name}_out").into())),
                );
                add(
                    &mut sets,
                    &to,
                    vec![a].into(),
                    Some(Verdict::Jump(format!("sw_{name}_in").into())),
                );
            }
        }
        if programmable {
            for direction in [Direction::In, Direction::Out] {
                let mut chain = Chain::regular(format!("sw_{name}_{direction}"));
                chain.rules.push(
                    Rule::verdict(vec![Match::CtState(CtStates::INVALID)], Verdict::Drop)
                        .with_comment("stateful")
                        .counted(),
                );
                chain.rules.push(
                    Rule::verdict(nd_matches(), Verdict::Return)
                        .with_comment(crate::profile::ALLOW_ND)
                        .counted(),
                );
                endpoint_rules(
                    &mut table,
                    &mut chain.rules,
                    policy,
                    SWITCH,
                    direction,
                    name,
                )?;
                table.add_chain(chain);
            }
        }
    }
    for (_, s) in sets {
        table.add_set(s);
    }
    table.add_chain(prerouting());
    let from = ("from_endpoint", Field::Saddr4, Field::Saddr6);
    let to = ("to_endpoint", Field::Daddr4, Field::Daddr6);
    for (hook, halves) in [
        (Hook::Forward, vec![from, to]),
        (Hook::Input, vec![from]),
        (Hook::Output, vec![to]),
    ] {
        let mut c = Chain::base(hook.as_str(), hook, 0, ChainKind::Filter);
        c.rules = dispatch_rules(&halves);
        table.add_chain(c);
    }
    add_drop_chains(&mut table, EnforcementPoint::SwitchPort);
    Ok(table)
}
