//! `bridge bulkhead_l2` ([`bulkhead_policy::compile::antispoof`]) for one
//! host of every driver: golden files, and its prerouting hook
//! interpreted: a bridged port sends only from its own MAC and address
//! (IP and ARP); other ports are not its business. Frames on the kernel:
//! the engine's `tests/attacks/l2.rs`.

mod world;

use std::net::IpAddr;

use bulkhead_model::{Direction, Endpoint};
use bulkhead_policy::compile::antispoof::{build, TABLE};
use bulkhead_policy::interp::{run, Context};
use bulkhead_policy::ir::{Family, Hook, Verdict};
use bulkhead_policy::{CtState, Packet};
use world::{golden, without, World};

#[test]
fn tables_match_golden_files() {
    let w = World::new();
    let t = build(&w.pairs());
    assert_eq!((t.family, t.name.as_str()), (Family::Bridge, TABLE));
    golden("antispoof-skeleton", &build(&[]));
    golden("antispoof-host", &t);
}

#[test]
fn only_bridged_ports_are_bound_and_each_is_one_fragment() {
    let w = World::new();
    let t = build(&w.pairs());
    let ports = &t.sets["ports"].elements;
    assert_eq!(ports.len(), 3, "transparent, overlay (v4), overlay (v6)");
    for p in w.pairs() {
        let alone = build(&[p]);
        let own = alone.sets["ports"].elements.len();
        assert_eq!(
            own,
            usize::from(matches!(p.1.name.as_str(), "tra" | "over" | "over6"))
        );
    }
}

/// A frame from `e`'s switch port with source `src` and MAC `mac`.
fn from_port(e: &Endpoint, src: &str, mac: [u8; 6]) -> Context {
    let src: IpAddr = src.parse().expect("src");
    let dst: IpAddr = if src.is_ipv4() {
        "10.9.9.9".parse().expect("dst")
    } else {
        "fd09::9".parse().expect("dst")
    };
    let mut c = Context::from_packet(&Packet::new(Direction::Out, src, dst, 6));
    c.ct = CtState::New;
    c.iif = Some(e.switch_port.to_string());
    c.ether_saddr = Some(mac);
    c
}

fn verdict(c: &Context) -> Verdict {
    run(&build(&World::new().pairs()), Hook::Prerouting, c)
}

#[test]
fn a_bridged_port_sends_from_its_own_mac_and_address_only() {
    let w = World::new();
    // Without the anti-spoofing drops, a foreign source passes.
    let weak = without(&build(&w.pairs()), "switch:anti-spoofing");
    let (e, _) = w.on("tra");
    let spoofed = from_port(e, "10.2.0.99", e.mac_address.0);
    assert_eq!(run(&weak, Hook::Prerouting, &spoofed), Verdict::Accept);
    for net in ["tra", "over", "over6"] {
        let (e, _) = w.on(net);
        let own = e.ip_address.addr.to_string();
        let mac = e.mac_address.0;
        let other = if e.ip_address.addr.is_ipv4() {
            "10.2.0.99"
        } else {
            "fd03::99"
        };
        assert_eq!(verdict(&from_port(e, &own, mac)), Verdict::Accept, "{net}");
        assert_eq!(verdict(&from_port(e, other, mac)), Verdict::Drop, "{net}");
        let mut foreign = mac;
        foreign[5] ^= 0x40;
        assert_eq!(verdict(&from_port(e, &own, foreign)), Verdict::Drop);
    }
}

#[test]
fn arp_names_the_ports_own_mac_and_ipv4_address() {
    let w = World::new();
    let (e, _) = w.on("tra");
    let IpAddr::V4(own) = e.ip_address.addr else {
        panic!("ipv4 endpoint")
    };
    let mac = e.mac_address.0;
    let weak = without(&build(&w.pairs()), "switch:arp-spoofing");
    let mut claim = from_port(e, "10.2.0.3", mac);
    claim.arp = Some((mac, "10.2.0.3".parse().expect("spa")));
    assert_eq!(run(&weak, Hook::Prerouting, &claim), Verdict::Accept);
    let arp = |sha: [u8; 6], spa: &str| {
        let mut c = from_port(e, spa, mac);
        c.arp = Some((sha, spa.parse().expect("spa")));
        verdict(&c)
    };
    assert_eq!(arp(mac, &own.to_string()), Verdict::Accept);
    assert_eq!(arp(mac, "10.2.0.3"), Verdict::Drop, "a neighbour's address");
    assert_eq!(arp(mac, "0.0.0.0"), Verdict::Drop, "probe");
    assert_eq!(arp([2, 0, 0, 0, 9, 9], &own.to_string()), Verdict::Drop);
    // An IPv6-only endpoint has no ARP binding.
    let (e6, _) = w.on("over6");
    let mut c = from_port(e6, "fd03::2", e6.mac_address.0);
    c.arp = Some((e6.mac_address.0, "10.3.0.2".parse().expect("spa")));
    assert_eq!(verdict(&c), Verdict::Drop);
}

#[test]
fn other_ports_pass_untouched() {
    let w = World::new();
    for net in ["n", "bridge", "l2tunnel"] {
        let (e, _) = w.on(net);
        let spoofed = from_port(e, "10.99.0.1", [2, 9, 9, 9, 9, 9]);
        assert_eq!(verdict(&spoofed), Verdict::Accept, "{net}");
    }
}
