//! The attacks themselves: each sends A's frames and says whether the
//! victim was hurt (configured, redirected, reached, or its neighbour table
//! rewritten).

use std::net::{Ipv4Addr, Ipv6Addr};

use super::frames::*;
use super::World;
use crate::common::{ip, unique_u32};
fn nonce() -> Vec<u8> {
    format!("bulkhead-l2-{:08x}", unique_u32()).into_bytes()
}

/// A router advertisement for a fresh prefix: the victim autoconfigures
/// an address in it, or takes A as its default router.
pub(super) fn router_advert_attack(w: &World) -> bool {
    let n = unique_u32();
    let (hi, lo) = (0x1000 | (n >> 16) as u16 & 0xfff, (n as u16) | 1);
    let prefix = Ipv6Addr::new(0x2001, 0xdb8, hi, lo, 0, 0, 0, 0);
    let body = router_advert(prefix, w.a_mac);
    w.send(&icmp6(
        mcast_mac(ALL_NODES),
        w.a_mac,
        w.a_ll,
        ALL_NODES,
        134,
        &body,
    ));
    let dev = w.victim.dev.as_str();
    w.victim_shows(
        &["-6", "addr", "show", "dev", dev],
        &format!("2001:db8:{hi:x}:{lo:x}:"),
    ) || w.victim_shows(&["-6", "route", "show", "default"], &w.a_ll.to_string())
}

/// A redirect from A (the victim's next hop for 2001:db8:99::/64) to a
/// router of A's choosing.
pub(super) fn redirect_attack(w: &World) -> bool {
    let n = unique_u32();
    let target = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xbad, (n >> 16) as u16, n as u16 | 1);
    let dest = Ipv6Addr::new(0x2001, 0xdb8, 0x99, 0, 0, 0, 0, 1);
    let body = redirect(target, dest, w.a_mac);
    w.send(&icmp6(
        w.victim.mac,
        w.a_mac,
        w.a_ll,
        w.victim.ll,
        137,
        &body,
    ));
    w.victim_shows(
        &["-6", "route", "get", "2001:db8:99::1"],
        &target.to_string(),
    )
}

/// A DHCPv4 offer (BOOTREPLY from port 67) broadcast by A.
fn dhcp4_offer_attack(w: &World) -> bool {
    let m = nonce();
    let mut bootp = vec![2, 1, 6, 0];
    bootp.extend_from_slice(&m);
    let f = udp4(
        BROADCAST,
        w.a_mac,
        w.a.ip,
        Ipv4Addr::BROADCAST,
        (67, 68),
        &bootp,
    );
    w.arrives(68, &m, f)
}

/// A DHCPv6 advertise (from port 547) to all nodes.
fn dhcp6_advertise_attack(w: &World) -> bool {
    let m = nonce();
    let mut msg = vec![2, 0x12, 0x34, 0x56];
    msg.extend_from_slice(&m);
    let f = udp6(
        mcast_mac(ALL_NODES),
        w.a_mac,
        w.a_ll,
        ALL_NODES,
        (547, 546),
        &msg,
    );
    w.arrives(546, &m, f)
}

fn spoof4(w: &World, src_mac: Mac, src: Ipv4Addr) -> bool {
    let m = nonce();
    let f = udp4(w.victim.mac, src_mac, src, w.victim.ip4, (4000, 4444), &m);
    w.arrives(4444, &m, f)
}

fn spoof6(w: &World, src: Ipv6Addr) -> bool {
    let m = nonce();
    let f = udp6(w.victim.mac, w.a_mac, src, w.victim.ll, (4000, 4446), &m);
    w.arrives(4446, &m, f)
}

/// ARP claiming `claimed` (an address of the victim's neighbour, whose
/// entry the victim holds): gratuitous, then a request to the victim.
fn arp_attacks(w: &World, claimed: Ipv4Addr) -> (bool, bool) {
    let dev = w.victim.dev.as_str();
    let c = claimed.to_string();
    let a_mac = mac_text(w.a_mac);
    let stale = [
        "neigh",
        "replace",
        &c,
        "lladdr",
        "02:00:00:00:0c:0c",
        "dev",
        dev,
        "nud",
        "stale",
    ];
    let show = ["neigh", "show", &c, "dev", dev];
    ip(&[&["-n", &w.victim.ns_name][..], &stale[..]].concat());
    w.send(&arp(BROADCAST, 2, w.a_mac, claimed, w.a_mac, claimed));
    let garp = w.victim_shows(&show, &a_mac);
    ip(&["-n", &w.victim.ns_name, "neigh", "del", &c, "dev", dev]);
    w.send(&arp(
        w.victim.mac,
        1,
        w.a_mac,
        claimed,
        [0; 6],
        w.victim.ip4,
    ));
    let request = w.victim_shows(&show, &a_mac);
    (garp, request)
}

/// An unsolicited neighbour advertisement (override) for `claimed`.
fn neighbour_advert_attack(w: &World, claimed: Ipv6Addr) -> bool {
    let dev = w.victim.dev.as_str();
    let c = claimed.to_string();
    let stale = [
        "-6",
        "neigh",
        "replace",
        &c,
        "lladdr",
        "02:00:00:00:0c:0c",
        "dev",
        dev,
        "nud",
        "stale",
    ];
    ip(&[&["-n", &w.victim.ns_name][..], &stale[..]].concat());
    let body = neighbour_advert(claimed, w.a_mac);
    w.send(&icmp6(
        mcast_mac(ALL_NODES),
        w.a_mac,
        w.a_ll,
        ALL_NODES,
        136,
        &body,
    ));
    w.victim_shows(&["-6", "neigh", "show", &c, "dev", dev], &mac_text(w.a_mac))
}

pub(super) fn mac_text(m: Mac) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Every attack that applies to the world, by name: whether it succeeded.
pub(super) fn attacks(w: &World) -> Vec<(&'static str, bool)> {
    let foreign_mac = [0x02, 0, 0, 0x5e, 0, 0x01];
    let mut out = vec![
        ("router advertisement", router_advert_attack(w)),
        ("redirect", redirect_attack(w)),
        ("dhcpv4 offer", dhcp4_offer_attack(w)),
        ("dhcpv6 advertise", dhcp6_advertise_attack(w)),
        ("spoofed source mac", spoof4(w, foreign_mac, w.a.ip)),
        ("spoofed ipv4 source", spoof4(w, w.a_mac, w.subnet_spare)),
        (
            "spoofed ipv6 source",
            spoof6(w, "2001:db8:ffff::bad".parse().unwrap()),
        ),
        (
            "spoofed link-local source",
            spoof6(w, "fe80::bad".parse().unwrap()),
        ),
        ("non-nd from own link-local", spoof6(w, w.a_ll)),
    ];
    if !w.is_host() {
        let (garp, request) = arp_attacks(w, w.subnet_spare);
        out.push(("gratuitous arp for a neighbour's address", garp));
        out.push(("arp request from a neighbour's address", request));
        let claimed = "fe80::c:c".parse().unwrap();
        out.push((
            "neighbour advertisement for a neighbour",
            neighbour_advert_attack(w, claimed),
        ));
    }
    out
}
