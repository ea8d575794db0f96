//! Anti-spoofing on bridged switch ports (transparent and overlay), as one
//! nf_tables table `bridge bulkhead_l2` in the host namespace.
//!
//! Why a bridge-family table: with br_netfilter, bridged IPv4 meets the
//! inet hooks (so the switch table's forward dispatch by address works), but
//! br_netfilter sets the input device to the bridge before the inet
//! prerouting hook runs, so `iifname` there is `bhn…`, never the port, and
//! the switch table's `iifname . ether saddr . ip saddr` binding cannot see
//! which port a frame came in by (verified with packets: a foreign source
//! passed). In the bridge family `iifname` is the bridge port.
//!
//! ```text
//! chain prerouting (filter, priority -300)
//!   iifname != @ports accept
//!   <port guard (bulkhead_policy::compile::anti_spoofing_head), is_v6 = meta protocol ip6>
//!   meta protocol ip drop                                   # switch:anti-spoofing
//!   meta protocol ip6 drop                                  # switch:anti-spoofing
//!   meta protocol arp iifname . ether saddr . arp saddr ether . arp saddr ip @arp_bindings accept
//!   meta protocol arp drop                                  # switch:arp-spoofing
//!   iifname . ether saddr != @port_macs drop                # the rest: own MAC only
//! ```
//!
//! ARP is bound like IP: the sender hardware and protocol addresses must be
//! the port's own MAC and IPv4 address (a container claiming a neighbour's
//! address would otherwise rewrite the LAN's neighbour tables). ARP probes
//! (sender 0.0.0.0) and ARP from IPv6-only endpoints are dropped.
//!
//! Contract: like the other host-namespace tables, a fixed skeleton
//! (`build` of no endpoint) plus one disjoint fragment of set elements per
//! bridged port; a packet walks a constant number of rules. Pure: the
//! engine gathers the inputs and applies the table; golden files
//! (`tests/golden/antispoof-*.nft`) and interpreter tests
//! (`tests/antispoof.rs`) hold it.

use bulkhead_model::{Driver, Endpoint, Network};

use super::{anti_spoofing_head, guard_elements, guard_sets};
use crate::ir::{
    ifname_bytes, Chain, ChainKind, Family, Field, Hook, Match, Rule, Set, SetKind, Table, Verdict,
};

pub const TABLE: &str = "bulkhead_l2";

const IPV4: u16 = 0x0800;
const IPV6: u16 = 0x86dd;
const ARP: u16 = 0x0806;

fn point(b: Vec<u8>) -> (Vec<u8>, Vec<u8>) {
    (b.clone(), b)
}

fn lookup(key: Vec<Field>, set: &str, negate: bool) -> Match {
    Match::Lookup {
        key,
        set: set.into(),
        negate,
    }
}

/// Whether endpoints of `driver` sit on a bridge port.
pub fn bridged(driver: Driver) -> bool {
    matches!(driver, Driver::Transparent | Driver::Overlay)
}

/// The bridge table's prerouting chain: the switch table's anti-spoofing
/// rules (here `iifname` is the bridge port, which inet prerouting cannot
/// see with br_netfilter), then drops for IP from an unbound source, ARP
/// whose sender is not the port's own, and any other frame from a MAC the
/// port is not bound to.
fn prerouting() -> Chain {
    let mut c = Chain::base("prerouting", Hook::Prerouting, -300, ChainKind::Filter);
    c.rules = anti_spoofing_head("ports", Match::EtherType(IPV4), Match::EtherType(IPV6));
    c.rules.extend([
        Rule::verdict(vec![Match::EtherType(IPV4)], Verdict::Drop)
            .with_comment("switch:anti-spoofing"),
        Rule::verdict(vec![Match::EtherType(IPV6)], Verdict::Drop)
            .with_comment("switch:anti-spoofing"),
        Rule::verdict(
            vec![
                Match::EtherType(ARP),
                lookup(
                    vec![
                        Field::IifName,
                        Field::EtherSaddr,
                        Field::ArpSha,
                        Field::ArpSpa,
                    ],
                    "arp_bindings",
                    false,
                ),
            ],
            Verdict::Accept,
        ),
        Rule::verdict(vec![Match::EtherType(ARP)], Verdict::Drop)
            .with_comment("switch:arp-spoofing"),
        Rule::verdict(
            vec![lookup(
                vec![Field::IifName, Field::EtherSaddr],
                "port_macs",
                true,
            )],
            Verdict::Drop,
        )
        .with_comment("switch:anti-spoofing-mac"),
    ]);
    c
}

/// The table for the bridged ones of `endpoints` (each with its network).
pub fn build(endpoints: &[(&Endpoint, &Network)]) -> Table {
    let mut t = Table::new(Family::Bridge, TABLE);
    let mut ports = Set::new("ports", vec![Field::IifName], false, SetKind::Set);
    let mut macs = Set::new(
        "port_macs",
        vec![Field::IifName, Field::EtherSaddr],
        false,
        SetKind::Set,
    );
    let mut v4 = Set::new(
        "bindings_v4",
        vec![Field::IifName, Field::EtherSaddr, Field::Saddr4],
        false,
        SetKind::Set,
    );
    let mut v6 = Set::new(
        "bindings_v6",
        vec![Field::IifName, Field::EtherSaddr, Field::Saddr6],
        false,
        SetKind::Set,
    );
    let mut arp = Set::new(
        "arp_bindings",
        vec![
            Field::IifName,
            Field::EtherSaddr,
            Field::ArpSha,
            Field::ArpSpa,
        ],
        false,
        SetKind::Set,
    );
    let [mut nd_sources, mut nd_targets] = guard_sets();
    for (e, n) in endpoints {
        if !bridged(n.driver) {
            continue;
        }
        let dev = point(ifname_bytes(e.switch_port.as_str()));
        let mac = point(e.mac_address.0.to_vec());
        ports.elements.insert(vec![dev.clone()].into(), None);
        macs.elements
            .insert(vec![dev.clone(), mac.clone()].into(), None);
        let port = e.switch_port.as_str();
        let v6_addr = match e.ip_address.addr {
            std::net::IpAddr::V6(a) => Some(a),
            std::net::IpAddr::V4(_) => None,
        };
        for (set, key) in guard_elements(port, e.mac_address.0, v6_addr) {
            let set = if set == nd_sources.name {
                &mut nd_sources
            } else {
                &mut nd_targets
            };
            set.elements.insert(key, None);
        }
        let (set, addr) = match e.ip_address.addr {
            std::net::IpAddr::V4(a) => {
                let key = vec![
                    dev.clone(),
                    mac.clone(),
                    mac.clone(),
                    point(a.octets().into()),
                ];
                arp.elements.insert(key.into(), None);
                (&mut v4, a.octets().to_vec())
            }
            std::net::IpAddr::V6(a) => (&mut v6, a.octets().to_vec()),
        };
        set.elements
            .insert(vec![dev, mac, point(addr)].into(), None);
    }
    for s in [ports, macs, v4, v6, arp, nd_sources, nd_targets] {
        t.add_set(s);
    }
    t.add_chain(prerouting());
    t
}
