//! transparent puts tenants on the physical LAN: a tenant claiming the LAN
//! router's addresses (ARP for its IPv4 address, a neighbour advertisement
//! for its link-local address) would take the LAN's traffic for the router.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use super::frames::{arp, icmp6, mcast_mac, neighbour_advert, send, ALL_NODES};
use super::tenant::mac_text;
use crate::common::*;

/// Whether `ip -n ns ARGS` shows `needle` within a short while.
fn shows(ns: &str, args: &[&str], needle: &str) -> bool {
    let until = Instant::now() + Duration::from_millis(800);
    loop {
        let out = ip(&[&["-n", ns][..], args].concat());
        if out.contains(needle) {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The LAN peer holds the router's IPv4 and link-local addresses (resolved
/// by a ping, and a stale entry). Endpoint A on a transparent network
/// sends a gratuitous ARP reply for the router's address and an override
/// neighbour advertisement for its link-local address. Expects the peer's
/// entries never to point at A; then, with the bridge table's port guard
/// flushed, the same frames rewrite both entries to A's MAC.
#[test]
fn l2_transparent_lan_peer_keeps_its_router() {
    let Some(h) = Harness::new("l2lan") else {
        return;
    };
    let lan = Lan::attach(&h, "l2lan", "bhtl0", false);
    l2_network(
        &h,
        "t",
        "transparent",
        LAN_SUBNET,
        Some("198.51.100.254"),
        "bhtl0",
        None,
    );
    let a = endpoint_at(&h, "a", "t", "198.51.100.10");
    let a_mac = mac_of(&a.ns_name, "eth0");
    let (peer, router_mac) = (lan.peer.name(), mac_of(lan.lan.name(), "lan0"));
    let router_ll: Ipv6Addr =
        link_local(lan.lan.name(), "lan0", Duration::from_secs(3)).expect("router link-local");
    let (r4, r6) = (LAN_ROUTER.to_string(), router_ll.to_string());
    assert!(
        ping(lan.peer.path(), LAN_ROUTER),
        "the peer reaches its router"
    );
    let attack = || {
        let stale = [
            "-6",
            "neigh",
            "replace",
            &r6,
            "lladdr",
            &mac_text(router_mac),
            "dev",
            "eth0",
            "nud",
            "stale",
        ];
        ip(&[&["-n", peer][..], &stale[..]].concat());
        send(
            &a.ns,
            "eth0",
            &arp([0xff; 6], 2, a_mac, LAN_ROUTER, a_mac, LAN_ROUTER),
        );
        let na = neighbour_advert(router_ll, a_mac);
        let ll = bulkhead_policy::compile::link_local(a_mac);
        send(
            &a.ns,
            "eth0",
            &icmp6(mcast_mac(ALL_NODES), a_mac, ll, ALL_NODES, 136, &na),
        );
        let theirs = mac_text(a_mac);
        (
            shows(peer, &["neigh", "show", &r4, "dev", "eth0"], &theirs),
            shows(peer, &["-6", "neigh", "show", &r6, "dev", "eth0"], &theirs),
        )
    };
    assert_eq!(attack(), (false, false), "(arp, na) poisoned the LAN peer");
    let host = h.host_name();
    nft(
        host,
        &["flush", "chain", "bridge", "bulkhead_l2", "prerouting"],
    );
    assert_eq!(attack(), (true, true), "(arp, na) without the port guard");
}
