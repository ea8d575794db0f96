//! The routed ports (nat here; l2bridge and l2tunnel ports are made alike):
//! the host ignores router messages on its own, and ARP claims from a
//! tenant land only on the tenant's own port.

use std::net::{IpAddr, UdpSocket};
use std::time::Duration;

use super::frames::{arp, Sniffer};
use super::tenant::{mac_text, redirect_attack, router_advert_attack};
use super::world;
use crate::common::{ip, unique_u32, PROBE};
use bulkhead_dataplane::{netns, sysctl};

/// Second layer: with the port guard's rules deleted, bulkhead's
/// `accept_ra=0` and `accept_redirects=0` on the port (and on the nat
/// switch) still keep the host from taking a tenant's router
/// advertisement or redirect; turned back on, the same frames configure
/// the host.
#[test]
fn l2_nat_port_ignores_router_messages_without_the_guard() {
    let Some(w) = world("nat") else {
        return;
    };
    let switch = ip(&[
        "-n",
        w.h.host_name(),
        "-o",
        "link",
        "show",
        "type",
        "bridge",
    ]);
    let switch = switch
        .split(':')
        .nth(1)
        .map(str::trim)
        .filter(|n| n.starts_with("bhn"))
        .unwrap_or_else(|| panic!("no nat switch: {switch}"))
        .to_owned();
    for dev in [w.victim.dev.as_str(), switch.as_str()] {
        for k in [
            "ipv6/conf/{}/accept_ra",
            "ipv6/conf/{}/accept_redirects",
            "ipv4/conf/{}/accept_redirects",
        ] {
            let name = format!("net/{}", k.replace("{}", dev));
            let v = sysctl::read(Some(w.h.host()), &name).expect("sysctl");
            assert_eq!(v, "0", "{name}");
        }
    }
    w.flush_guard();
    assert!(
        !router_advert_attack(&w),
        "RA taken with the sysctl in place"
    );
    assert!(
        !redirect_attack(&w),
        "redirect taken with the sysctl in place"
    );
    w.port_learns_from_routers();
    assert!(
        router_advert_attack(&w),
        "RA not taken even with accept_ra=1"
    );
    assert!(
        redirect_attack(&w),
        "redirect not taken even with accept_redirects=1"
    );
}

/// ARP on a routed port needs no sender binding: a tenant A that claims
/// its neighbour B's address (ARP request from B's address, A's MAC) gets
/// its claim into the host's neighbour table — on A's own port only, which
/// the host never uses for B (B has its /32 route on its own port). The
/// host's traffic for B still reaches B, never A.
#[test]
fn l2_nat_arp_claims_stay_on_the_attackers_own_port() {
    let Some(w) = world("nat") else {
        return;
    };
    let b = w.h.endpoint("b", "n", &[], None);
    let b_port = w.h.engine.endpoint("b").expect("b").switch_port.to_string();
    let Some(IpAddr::V4(gw)) = w.h.engine.network("n").expect("network").gateway else {
        panic!("nat network without an IPv4 gateway");
    };
    let host = w.h.host_name();
    let b_ip = b.ip.to_string();
    w.send(&arp(w.victim.mac, 1, w.a_mac, b.ip, [0; 6], gw));
    assert!(
        w.victim_shows(
            &["neigh", "show", &b_ip, "dev", &w.victim.dev],
            &mac_text(w.a_mac)
        ),
        "the claim reached the host's table on A's port (the attack ran)"
    );
    let m = format!("bulkhead-l2-arp-{:08x}", unique_u32()).into_bytes();
    let (at_a, at_b) = (Sniffer::open(&w.a.ns), Sniffer::open(&b.ns));
    let tx = netns::run_in(Some(w.h.host()), || UdpSocket::bind("0.0.0.0:0"))
        .and_then(|s| s)
        .expect("udp in host");
    tx.send_to(&m, (b.ip, 4447)).expect("send to B");
    assert!(at_b.saw(&m, PROBE), "the host's datagram for B reaches B");
    assert!(!at_a.saw(&m, Duration::from_millis(100)), "and never A");
    let entry = ip(&["-n", host, "neigh", "show", &b_ip, "dev", &b_port]);
    assert!(!entry.contains(&mac_text(w.a_mac)), "B's port: {entry}");
}
