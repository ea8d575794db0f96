//! The nat driver's host plumbing as one nf_tables table, `inet
//! bulkhead_net`, built from the networks and endpoints of the host.
//!
//! - outbound: traffic from a nat subnet to anything outside the nat subnets
//!   is masqueraded to the address of the interface it leaves by (the uplink);
//! - port mappings: `fib daddr type local` + `l4proto . dport` (or, for a
//!   mapping bound to one host address, `daddr . l4proto . dport`) dispatch
//!   through a verdict map to a one-rule chain that DNATs to the endpoint,
//!   in prerouting (from outside and from endpoints: hairpin) and in output
//!   (from the host itself); DNATed traffic between two endpoints is
//!   masqueraded so the reply comes back through the host;
//! - isolation: a packet from one bulkhead subnet to another is dropped in
//!   forward unless it belongs to a published port (`ct status dnat`).
//!
//! Every packet walks a fixed number of rules; only set sizes grow with the
//! number of networks and mappings. IPv4 only for now (documented in
//! `docs/drivers.md`).

use std::net::IpAddr;

use bulkhead_model::{Cidr, Driver, Endpoint, Network, Protocol};
use bulkhead_policy::ir::{
    be_bytes, Action, Chain, ChainKind, CtStates, Field, Hook, Key, Match, Rule, Set, SetKind,
    Table, Verdict,
};

pub const TABLE: &str = "bulkhead_net";

fn cidr_range(c: &Cidr) -> (Vec<u8>, Vec<u8>) {
    let (lo, hi) = match (c.network(), c.last()) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b))),
        (a, b) => (ip_u128(a), ip_u128(b)),
    };
    let len = if c.is_ipv4() { 4 } else { 16 };
    (be_bytes(lo, len), be_bytes(hi, len))
}

fn ip_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn exact(bytes: Vec<u8>) -> (Vec<u8>, Vec<u8>) {
    (bytes.clone(), bytes)
}

fn lookup(key: Vec<Field>, set: &str, negate: bool) -> Match {
    Match::Lookup {
        key,
        set: set.to_owned(),
        negate,
    }
}

/// The chain name of one port mapping.
fn mapping_chain(endpoint: &Endpoint, index: usize) -> String {
    format!("pm_{}_{index}", endpoint.id.short_hex(12))
}

/// Builds the table for `networks` and their `endpoints`.
pub fn build(networks: &[&Network], endpoints: &[&Endpoint]) -> Table {
    let mut t = Table::new(bulkhead_policy::ir::Family::Inet, TABLE);
    let mut subnets = Set::new("subnets4", vec![Field::Saddr4], true, SetKind::Set);
    let mut nat_subnets = Set::new("nat_subnets4", vec![Field::Saddr4], true, SetKind::Set);
    let mut same = Set::new(
        "same_network4",
        vec![Field::Saddr4, Field::Daddr4],
        true,
        SetKind::Set,
    );
    for n in networks {
        for c in n.subnets.iter().filter(|c| c.is_ipv4()) {
            let r = cidr_range(c);
            subnets.elements.insert(vec![r.clone()], None);
            same.elements.insert(vec![r.clone(), r.clone()], None);
            if n.driver == Driver::Nat {
                nat_subnets.elements.insert(vec![r], None);
            }
        }
    }
    let mut pm_any = Set::new(
        "ports_any",
        vec![Field::L4Proto, Field::Dport],
        false,
        SetKind::VerdictMap,
    );
    let mut pm_ip = Set::new(
        "ports_ip4",
        vec![Field::Daddr4, Field::L4Proto, Field::Dport],
        false,
        SetKind::VerdictMap,
    );
    for e in endpoints {
        for (i, m) in e.port_mappings.iter().enumerate() {
            let IpAddr::V4(_) = e.ip_address.addr else {
                continue;
            };
            let chain = mapping_chain(e, i);
            let proto = m.protocol.number().unwrap_or(6);
            let tail = vec![
                exact(vec![proto]),
                exact(be_bytes(u128::from(m.host_port), 2)),
            ];
            let jump = Some(Verdict::Jump(chain.clone()));
            match m.host_ip {
                None => {
                    pm_any.elements.insert(tail, jump);
                }
                Some(ip @ IpAddr::V4(_)) => {
                    let mut key: Key = vec![exact(be_bytes(ip_u128(ip), 4))];
                    key.extend(tail);
                    pm_ip.elements.insert(key, jump);
                }
                Some(IpAddr::V6(_)) => continue,
            }
            let mut c = Chain::regular(chain);
            let rule = Rule::new(
                vec![],
                Action::Dnat {
                    addr: e.ip_address.addr,
                    port: Some(m.container_port),
                },
            )
            .with_comment(format!("publish {m} to {}", e.name));
            c.rules.push(rule);
            t.add_chain(c);
        }
    }
    let ported = Match::L4Proto {
        protos: vec![Protocol::TCP.number().unwrap_or(6), 17],
        negate: false,
    };
    for (name, hook) in [("prerouting", Hook::Prerouting), ("output", Hook::Output)] {
        let mut c = Chain::base(name, hook, -100, ChainKind::Nat);
        c.rules.push(Rule::new(
            vec![Match::FibDaddrLocal, ported.clone()],
            Action::Vmap {
                key: vec![Field::L4Proto, Field::Dport],
                map: "ports_any".into(),
            },
        ));
        c.rules.push(Rule::new(
            vec![ported.clone()],
            Action::Vmap {
                key: vec![Field::Daddr4, Field::L4Proto, Field::Dport],
                map: "ports_ip4".into(),
            },
        ));
        t.add_chain(c);
    }
    let mut post = Chain::base("postrouting", Hook::Postrouting, 100, ChainKind::Nat);
    post.rules.push(
        Rule::new(
            vec![
                Match::CtStatusDnat,
                lookup(vec![Field::Saddr4], "subnets4", false),
                lookup(vec![Field::Daddr4], "subnets4", false),
            ],
            Action::Masquerade,
        )
        .with_comment("hairpin"),
    );
    post.rules.push(
        Rule::new(
            vec![
                lookup(vec![Field::Saddr4], "nat_subnets4", false),
                lookup(vec![Field::Daddr4], "subnets4", true),
            ],
            Action::Masquerade,
        )
        .with_comment("outbound"),
    );
    t.add_chain(post);
    let mut fwd = Chain::base("forward", Hook::Forward, -10, ChainKind::Filter);
    fwd.rules.push(Rule::verdict(
        vec![Match::CtState(
            CtStates::ESTABLISHED.union(CtStates::RELATED),
        )],
        Verdict::Accept,
    ));
    fwd.rules
        .push(Rule::verdict(vec![Match::CtStatusDnat], Verdict::Accept));
    fwd.rules.push(
        Rule::verdict(
            vec![
                lookup(vec![Field::Saddr4], "subnets4", false),
                lookup(vec![Field::Daddr4], "subnets4", false),
                lookup(vec![Field::Saddr4, Field::Daddr4], "same_network4", true),
            ],
            Verdict::Drop,
        )
        .with_comment("networks are isolated"),
    );
    t.add_chain(fwd);
    for s in [subnets, nat_subnets, same, pm_any, pm_ip] {
        t.add_set(s);
    }
    t
}
