//! The port guard: what a tenant may send out of its switch port at L2/L3,
//! shared by the routed drivers' `inet bulkhead` table and the bridged
//! drivers' `bridge bulkhead_l2` table (spec §9, "hostile tenants").
//!
//! ```text
//!   iifname != @<ports> accept                               # not a port: untouched
//!   <v6> meta l4proto icmpv6 icmpv6 type { 134, 137 } drop   # switch:router-advert-redirect
//!   meta l4proto udp th sport { 67, 547 } drop               # switch:dhcp-server
//!   meta l4proto udp th dport { 68, 546 } drop               # switch:dhcp-server
//!   <v6> meta l4proto icmpv6 icmpv6 type 136
//!        iifname . icmpv6 taddr != @nd_targets drop          # switch:nd-target
//!   <v4> iifname . ether saddr . ip saddr @bindings_v4 accept
//!   <v6> iifname . ether saddr . ip6 saddr @bindings_v6 accept
//!   <v6> iifname . ether saddr . ip6 saddr @nd_sources
//!        meta l4proto icmpv6 icmpv6 type { 133, 135, 136 } accept   # switch:link-local-nd
//!   <v6> iifname . ether saddr @port_macs ip6 saddr ::
//!        meta l4proto icmpv6 icmpv6 type { 133, 135 } accept        # switch:unspecified-source-nd
//! ```
//!
//! Contract: a tenant never acts as a router (router advertisements,
//! redirects) or a DHCP/DHCPv6 server or relay toward anyone; it announces
//! (neighbour advertisement target) only its own addresses; link-local
//! sources are its own EUI-64 address (the kernel's default `addr_gen_mode`
//! for the MAC bulkhead gives it) and carry neighbour discovery only. Each
//! caller appends its own drop for what the head did not accept.

use std::net::Ipv6Addr;

use crate::ir::{ifname_bytes, Field, Key, Match, ProtoList, Rule, Set, SetKind, Verdict};
use crate::packet::ICMPV6;

/// `iifname . ether saddr . ip6 saddr`: a port's own link-local source.
pub const ND_SOURCES: &str = "nd_sources";
/// `iifname . icmpv6 taddr`: what a port may advertise as a neighbour.
pub const ND_TARGETS: &str = "nd_targets";

const UDP: u8 = 17;
/// ICMPv6 router advertisement and redirect: a router's messages.
const ROUTER_TYPES: [u8; 2] = [134, 137];
/// Router and neighbour solicitation, neighbour advertisement.
const LINK_LOCAL_ND: [u8; 3] = [133, 135, 136];
/// What a host sends before it has an address (DAD, router solicitation).
const UNSPECIFIED_ND: [u8; 2] = [133, 135];
const NEIGHBOUR_ADVERT: u8 = 136;
/// DHCP (67) and DHCPv6 (547) servers and relays send from these ports.
const DHCP_SERVER_PORTS: [u128; 2] = [67, 547];
/// DHCP (68) and DHCPv6 (546) clients listen on these ports.
const DHCP_CLIENT_PORTS: [u128; 2] = [68, 546];

/// The EUI-64 link-local address the kernel derives from `mac`.
pub fn link_local(mac: [u8; 6]) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a[0] = 0xfe;
    a[1] = 0x80;
    a[8..11].copy_from_slice(&[mac[0] ^ 0x02, mac[1], mac[2]]);
    a[11] = 0xff;
    a[12] = 0xfe;
    a[13..16].copy_from_slice(&mac[3..6]);
    Ipv6Addr::from(a)
}

/// The guard's own sets, without elements.
pub fn guard_sets() -> [Set; 2] {
    [
        Set::new(
            ND_SOURCES,
            vec![Field::IifName, Field::EtherSaddr, Field::Saddr6],
            false,
            SetKind::Set,
        ),
        Set::new(
            ND_TARGETS,
            vec![Field::IifName, Field::NdTarget],
            false,
            SetKind::Set,
        ),
    ]
}

fn point(b: Vec<u8>) -> (Vec<u8>, Vec<u8>) {
    (b.clone(), b)
}

/// One port's elements of [`guard_sets`]: its link-local address as an ND
/// source and a neighbour target, and each of its `v6` addresses as a
/// neighbour target. (set name, key) pairs.
pub fn guard_elements(
    port: &str,
    mac: [u8; 6],
    v6: impl IntoIterator<Item = Ipv6Addr>,
) -> Vec<(&'static str, Key)> {
    let dev = point(ifname_bytes(port));
    let ll = link_local(mac);
    let mut out = vec![(
        ND_SOURCES,
        vec![
            dev.clone(),
            point(mac.to_vec()),
            point(ll.octets().to_vec()),
        ]
        .into(),
    )];
    for a in std::iter::once(ll).chain(v6) {
        out.push((
            ND_TARGETS,
            vec![dev.clone(), point(a.octets().to_vec())].into(),
        ));
    }
    out
}

fn lookup(key: Vec<Field>, set: &str, negate: bool) -> Match {
    Match::Lookup {
        key,
        set: set.into(),
        negate,
    }
}

fn icmpv6(is_v6: &Match, types: &[u8]) -> Vec<Match> {
    vec![
        is_v6.clone(),
        Match::L4Proto {
            protos: ProtoList::from_slice(&[ICMPV6]),
            negate: false,
        },
        Match::Icmpv6Type(types.to_vec()),
    ]
}

fn udp_port(field: Field, ports: [u128; 2]) -> Rule {
    Rule::verdict(
        vec![
            Match::L4Proto {
                protos: ProtoList::from_slice(&[UDP]),
                negate: false,
            },
            Match::Ranges {
                field,
                ranges: ports.iter().map(|p| (*p, *p)).collect(),
            },
        ],
        Verdict::Drop,
    )
    .with_comment("switch:dhcp-server")
}

/// The port guard every switch-port table starts its prerouting chain with
/// (see the module doc). `ports_set` names the table's set of ports;
/// `is_v4`/`is_v6` say how the table's family tells the IP versions apart
/// (`meta nfproto` in inet, the EtherType in the bridge table). The table
/// holds `port_macs`, `bindings_v4`, `bindings_v6` and [`guard_sets`].
pub fn anti_spoofing_head(ports_set: &str, is_v4: Match, is_v6: Match) -> Vec<Rule> {
    let mut nd_target = icmpv6(&is_v6, &[NEIGHBOUR_ADVERT]);
    nd_target.push(lookup(
        vec![Field::IifName, Field::NdTarget],
        ND_TARGETS,
        true,
    ));
    let mut ll_nd = vec![
        is_v6.clone(),
        lookup(
            vec![Field::IifName, Field::EtherSaddr, Field::Saddr6],
            ND_SOURCES,
            false,
        ),
    ];
    ll_nd.extend(icmpv6(&is_v6, &LINK_LOCAL_ND).into_iter().skip(1));
    let mut unspecified = vec![
        is_v6.clone(),
        lookup(vec![Field::IifName, Field::EtherSaddr], "port_macs", false),
        Match::Prefix {
            field: Field::Saddr6,
            addr: vec![0; 16],
            len: 128,
        },
    ];
    unspecified.extend(icmpv6(&is_v6, &UNSPECIFIED_ND).into_iter().skip(1));
    vec![
        Rule::verdict(
            vec![lookup(vec![Field::IifName], ports_set, true)],
            Verdict::Accept,
        ),
        Rule::verdict(icmpv6(&is_v6, &ROUTER_TYPES), Verdict::Drop)
            .with_comment("switch:router-advert-redirect"),
        udp_port(Field::Sport, DHCP_SERVER_PORTS),
        udp_port(Field::Dport, DHCP_CLIENT_PORTS),
        Rule::verdict(nd_target, Verdict::Drop).with_comment("switch:nd-target"),
        Rule::verdict(
            vec![
                is_v4,
                lookup(
                    vec![Field::IifName, Field::EtherSaddr, Field::Saddr4],
                    "bindings_v4",
                    false,
                ),
            ],
            Verdict::Accept,
        ),
        Rule::verdict(
            vec![
                is_v6,
                lookup(
                    vec![Field::IifName, Field::EtherSaddr, Field::Saddr6],
                    "bindings_v6",
                    false,
                ),
            ],
            Verdict::Accept,
        ),
        Rule::verdict(ll_nd, Verdict::Accept).with_comment("switch:link-local-nd"),
        Rule::verdict(unspecified, Verdict::Accept).with_comment("switch:unspecified-source-nd"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_local_is_the_kernels_eui64() {
        // what the kernel gives a veth with this MAC (addr_gen_mode 0)
        let ll = link_local([0x02, 0x42, 0xac, 0x11, 0x00, 0x02]);
        assert_eq!(ll, "fe80::42:acff:fe11:2".parse::<Ipv6Addr>().unwrap());
    }
}
