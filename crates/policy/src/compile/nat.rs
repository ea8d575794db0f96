//! The nat driver's host plumbing as one nf_tables table, `inet
//! bulkhead_net`, built from the networks and endpoints of the host.
//!
//! - outbound: traffic from a nat subnet to anything outside the bulkhead
//!   subnets is masqueraded to the address of the interface it leaves by
//!   (the uplink);
//! - port mappings: `fib daddr type local` + `l4proto . dport` (or, for a
//!   mapping bound to one host address, `daddr . l4proto . dport`) dispatch
//!   through a verdict map to a one-rule chain that DNATs to the endpoint,
//!   in prerouting (from outside and from endpoints: hairpin) and in output
//!   (from the host itself); DNATed traffic between two endpoints is
//!   masqueraded so the reply comes back through the host. Every packet of
//!   a DNATed connection (both directions) gets the [`DNAT_MARK`] bit in
//!   prerouting (after the DNAT): l2tunnel's policy routing looks such
//!   packets up in `main`, so a hairpin from an l2tunnel endpoint is
//!   delivered by the host, not sent into the fabric, where its second pass
//!   would meet conntrack with another tuple (masqueraded: a martian; not:
//!   a second entry, and a reply that is never un-DNATed). Both dispatch
//!   rules require a local destination: a mapping never captures traffic to
//!   an address that is not the host's (spec §9), even one whose address
//!   left the host after the engine checked it;
//! - isolation: a packet from one bulkhead subnet to another (IPv4 or IPv6)
//!   is dropped in forward unless it belongs to a published port (`ct
//!   status dnat`);
//! - host reach (input): a packet that arrives from a nat endpoint's switch
//!   port reaches the host only when addressed to that endpoint's gateway
//!   (spec §9), plus IPv6 neighbour discovery; replies of connections the
//!   host opened pass (`ct state established,related`).
//!
//! Every IPv4 (IPv6) payload match is guarded by `meta nfproto ipv4`
//! (`ipv6`): in an `inet` table a payload load does not check the family.
//! Every packet walks a fixed number of rules; only set sizes grow with the
//! number of networks and endpoints. Port mappings and masquerade are
//! IPv4 only (documented in `docs/drivers.md`).
//!
//! Network-level elements (subnets) come from `networks`, endpoint-level
//! ones (mappings, ports, gateways) from `endpoints` alone, so that one
//! endpoint's share of the table is `build(&[], &[that endpoint])`. Pure:
//! the engine gathers the inputs and applies the table; golden files
//! (`tests/golden/nat-*.nft`) and interpreter tests (`tests/nat.rs`) hold
//! it.

use std::net::IpAddr;

use bulkhead_model::{Cidr, Driver, Endpoint, Network, Protocol};

use crate::ir::{
    be_bytes, ifname_bytes, Action, Chain, ChainKind, CtStates, Family, Field, Hook, Match,
    NfProto, ProtoList, Rule, Set, SetKind, Table, Verdict,
};

pub const TABLE: &str = "bulkhead_net";

/// The packet-mark bit of DNATed connections (see the module doc); the
/// dataplane's l2tunnel policy routing matches it (it re-exports this).
pub const DNAT_MARK: u32 = 0x0010_0000;

/// ICMPv6 neighbour solicitation and advertisement: how an IPv6 endpoint
/// resolves its gateway (sent to solicited-node multicast, not to it).
const NEIGHBOUR_DISCOVERY: [u8; 2] = [135, 136];

fn cidr_range(c: &Cidr) -> (Vec<u8>, Vec<u8>) {
    let len = if c.is_ipv4() { 4 } else { 16 };
    (
        be_bytes(ip_u128(c.network()), len),
        be_bytes(ip_u128(c.last()), len),
    )
}

fn ip_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn ip_key(ip: IpAddr) -> (Vec<u8>, Vec<u8>) {
    let len = if ip.is_ipv4() { 4 } else { 16 };
    exact(be_bytes(ip_u128(ip), len))
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

/// The address-family sets of one family: every bulkhead subnet, the
/// (subnet, same subnet) pairs, and the nat subnets (IPv4: masquerade).
struct Subnets {
    all: Set,
    same: Set,
    nat: Set,
}

impl Subnets {
    fn new(v4: bool) -> Self {
        let (s, d, n) = if v4 {
            (Field::Saddr4, Field::Daddr4, "4")
        } else {
            (Field::Saddr6, Field::Daddr6, "6")
        };
        Self {
            all: Set::new(format!("subnets{n}"), vec![s], true, SetKind::Set),
            same: Set::new(format!("same_network{n}"), vec![s, d], true, SetKind::Set),
            nat: Set::new(format!("nat_subnets{n}"), vec![s], true, SetKind::Set),
        }
    }

    fn add(&mut self, c: &Cidr, nat: bool) {
        let r = cidr_range(c);
        self.all.elements.insert(vec![r.clone()].into(), None);
        self.same
            .elements
            .insert(vec![r.clone(), r.clone()].into(), None);
        if nat {
            self.nat.elements.insert(vec![r].into(), None);
        }
    }
}

/// The host-reach sets: the switch ports of nat endpoints, and each one's
/// (port, gateway) pair by family.
struct HostReach {
    ports: Set,
    gateway4: Set,
    gateway6: Set,
}

impl HostReach {
    fn new() -> Self {
        let pair = |name: &str, f| Set::new(name, vec![Field::IifName, f], false, SetKind::Set);
        Self {
            ports: Set::new("nat_ports", vec![Field::IifName], false, SetKind::Set),
            gateway4: pair("host_gateway4", Field::Daddr4),
            gateway6: pair("host_gateway6", Field::Daddr6),
        }
    }

    fn add(&mut self, e: &Endpoint, n: &Network) {
        if n.driver != Driver::Nat {
            return;
        }
        let port = exact(ifname_bytes(e.switch_port.as_str()));
        self.ports.elements.insert(vec![port.clone()].into(), None);
        let set = match n.gateway {
            Some(IpAddr::V4(_)) => &mut self.gateway4,
            Some(IpAddr::V6(_)) => &mut self.gateway6,
            None => return,
        };
        if let Some(gw) = n.gateway {
            set.elements.insert(vec![port, ip_key(gw)].into(), None);
        }
    }
}

/// Adds the DNAT chain of each IPv4 mapping of `e` and its element in
/// `ports_any` or `ports_ip4`.
fn add_mappings(t: &mut Table, pm_any: &mut Set, pm_ip: &mut Set, e: &Endpoint) {
    let IpAddr::V4(_) = e.ip_address.addr else {
        return;
    };
    for (i, m) in e.port_mappings.iter().enumerate() {
        let chain = mapping_chain(e, i);
        let proto = m.protocol.number().unwrap_or(6);
        let tail = vec![
            exact(vec![proto]),
            exact(be_bytes(u128::from(m.host_port), 2)),
        ];
        let jump = Some(Verdict::Jump(chain.as_str().into()));
        match m.host_ip {
            None => {
                pm_any.elements.insert(tail.into(), jump);
            }
            Some(ip @ IpAddr::V4(_)) => {
                let mut key = vec![ip_key(ip)];
                key.extend(tail);
                pm_ip.elements.insert(key.into(), jump);
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

/// Builds the table for `networks` and `endpoints` (each with its network).
pub fn build(networks: &[&Network], endpoints: &[(&Endpoint, &Network)]) -> Table {
    let mut t = Table::new(Family::Inet, TABLE);
    let (mut v4, mut v6) = (Subnets::new(true), Subnets::new(false));
    for n in networks {
        for c in &n.subnets {
            let family = if c.is_ipv4() { &mut v4 } else { &mut v6 };
            family.add(c, n.driver == Driver::Nat);
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
    let mut reach = HostReach::new();
    for (e, n) in endpoints {
        add_mappings(&mut t, &mut pm_any, &mut pm_ip, e);
        reach.add(e, n);
    }
    t.add_chain(prerouting_or_output("prerouting", Hook::Prerouting));
    t.add_chain(prerouting_or_output("output", Hook::Output));
    t.add_chain(mark());
    t.add_chain(postrouting());
    t.add_chain(forward());
    t.add_chain(input());
    // v6's nat_subnets6 is not used (no IPv6 masquerade) and not added.
    let sets = [v4.all, v4.nat, v4.same, v6.all, v6.same, pm_any, pm_ip];
    let reach = [reach.ports, reach.gateway4, reach.gateway6];
    for s in sets.into_iter().chain(reach) {
        t.add_set(s);
    }
    t
}

const IPV4: Match = Match::NfProto(NfProto::Ipv4);
const IPV6: Match = Match::NfProto(NfProto::Ipv6);

fn ported() -> Match {
    Match::L4Proto {
        protos: ProtoList::from_slice(&[Protocol::TCP.number().unwrap_or(6), 17]),
        negate: false,
    }
}

/// Port-mapping dispatch: only ever for local destinations.
fn prerouting_or_output(name: &str, hook: Hook) -> Chain {
    let mut c = Chain::base(name, hook, -100, ChainKind::Nat);
    for (key, map) in [
        (vec![Field::L4Proto, Field::Dport], "ports_any"),
        (
            vec![Field::Daddr4, Field::L4Proto, Field::Dport],
            "ports_ip4",
        ),
    ] {
        c.rules.push(Rule::new(
            vec![IPV4, Match::FibDaddrLocal, ported()],
            Action::Vmap {
                key,
                map: map.into(),
            },
        ));
    }
    c
}

/// Marks DNATed connections for routing (l2tunnel: see the module doc).
/// Filter type at -90: after the DNAT of prerouting (-100), before the
/// routing decision that follows the hook.
fn mark() -> Chain {
    let mut c = Chain::base("routing_mark", Hook::Prerouting, -90, ChainKind::Filter);
    c.rules.push(
        Rule::new(vec![Match::CtStatusDnat], Action::SetMarkBits(DNAT_MARK))
            .with_comment("published ports are delivered by the host"),
    );
    c
}

fn postrouting() -> Chain {
    let mut post = Chain::base("postrouting", Hook::Postrouting, 100, ChainKind::Nat);
    post.rules.push(
        Rule::new(
            vec![
                IPV4,
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
                IPV4,
                lookup(vec![Field::Saddr4], "nat_subnets4", false),
                lookup(vec![Field::Daddr4], "subnets4", true),
            ],
            Action::Masquerade,
        )
        .with_comment("outbound"),
    );
    post
}

fn forward() -> Chain {
    let mut fwd = Chain::base("forward", Hook::Forward, -10, ChainKind::Filter);
    fwd.rules.push(Rule::verdict(
        vec![Match::CtState(
            CtStates::ESTABLISHED.union(CtStates::RELATED),
        )],
        Verdict::Accept,
    ));
    fwd.rules
        .push(Rule::verdict(vec![Match::CtStatusDnat], Verdict::Accept));
    for (family, s, d, n) in [
        (IPV4, Field::Saddr4, Field::Daddr4, "4"),
        (IPV6, Field::Saddr6, Field::Daddr6, "6"),
    ] {
        let subnets = format!("subnets{n}");
        fwd.rules.push(
            Rule::verdict(
                vec![
                    family,
                    lookup(vec![s], &subnets, false),
                    lookup(vec![d], &subnets, false),
                    lookup(vec![s, d], &format!("same_network{n}"), true),
                ],
                Verdict::Drop,
            )
            .with_comment(format!("networks are isolated (ipv{n})")),
        );
    }
    fwd
}

/// Host reach from nat endpoints: their gateway only.
fn input() -> Chain {
    let mut c = Chain::base("input", Hook::Input, -10, ChainKind::Filter);
    c.rules.push(Rule::verdict(
        vec![Match::CtState(
            CtStates::ESTABLISHED.union(CtStates::RELATED),
        )],
        Verdict::Accept,
    ));
    for (family, d, set) in [
        (IPV4, Field::Daddr4, "host_gateway4"),
        (IPV6, Field::Daddr6, "host_gateway6"),
    ] {
        c.rules.push(Rule::verdict(
            vec![family, lookup(vec![Field::IifName, d], set, false)],
            Verdict::Accept,
        ));
    }
    c.rules.push(Rule::verdict(
        vec![
            IPV6,
            lookup(vec![Field::IifName], "nat_ports", false),
            Match::L4Proto {
                protos: ProtoList::from_slice(&[58]),
                negate: false,
            },
            Match::Icmpv6Type(NEIGHBOUR_DISCOVERY.to_vec()),
        ],
        Verdict::Accept,
    ));
    c.rules.push(
        Rule::verdict(
            vec![lookup(vec![Field::IifName], "nat_ports", false)],
            Verdict::Drop,
        )
        .with_comment("nat endpoints reach the host only at their gateway"),
    );
    c
}
