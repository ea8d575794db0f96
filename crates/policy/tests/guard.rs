//! The port guard of the switch table (spec §9), interpreted: what a tenant
//! may send out of its switch port whatever its ACLs say. The same rules
//! run in the bridged drivers' table; `crates/engine/tests/attacks/l2.rs`
//! sends the real frames.

use std::net::{IpAddr, Ipv6Addr};

use bulkhead_model::{AclMode, AclProfile, Direction, Driver, Isolation, MacAddress};
use bulkhead_policy::compile::link_local;
use bulkhead_policy::interp::{run, Context};
use bulkhead_policy::ir::{Hook, Verdict};
use bulkhead_policy::{compile_switch, EndpointFacts, EndpointPolicy, Packet, SwitchPortPolicy};

const MAC: [u8; 6] = [2, 0x42, 10, 0, 0, 2];
const PORT: &str = "bhp0";

fn table() -> bulkhead_policy::ir::Table {
    let facts = EndpointFacts {
        driver: Driver::Nat,
        isolation: Isolation::Process,
        profile: AclProfile::Current,
        acl_mode: AclMode::Layered,
        addresses: vec!["10.0.0.2".parse().unwrap(), "fd00::2".parse().unwrap()],
        port_mappings: vec![],
    };
    compile_switch(&[SwitchPortPolicy {
        port: PORT.into(),
        mac: MacAddress(MAC),
        policy: EndpointPolicy::new(facts, vec![]).unwrap(),
    }])
    .unwrap()
}

/// The prerouting verdict for a packet from the port (with `mac`).
fn from_port(p: Packet, mac: [u8; 6], target: Option<Ipv6Addr>) -> Verdict {
    let mut ctx = Context::from_packet(&p);
    ctx.iif = Some(PORT.into());
    ctx.ether_saddr = Some(mac);
    ctx.nd_target = target;
    run(&table(), Hook::Prerouting, &ctx)
}

fn icmpv6(src: &str, dst: &str, ty: u8) -> Packet {
    let mut p = Packet::new(
        Direction::Out,
        src.parse::<IpAddr>().unwrap(),
        dst.parse().unwrap(),
        58,
    );
    p.icmp_type = Some(ty);
    p
}

fn udp(src: &str, dst: &str, sport: u16, dport: u16) -> Packet {
    Packet::new(
        Direction::Out,
        src.parse().unwrap(),
        dst.parse().unwrap(),
        17,
    )
    .with_ports(sport, dport)
}

#[test]
fn router_messages_never_leave_a_port() {
    let ll = link_local(MAC).to_string();
    for ty in [134, 137] {
        for src in [ll.as_str(), "fd00::2"] {
            assert_eq!(
                from_port(icmpv6(src, "ff02::1", ty), MAC, None),
                Verdict::Drop,
                "type {ty} from {src}"
            );
        }
    }
}

#[test]
fn link_local_sources_are_the_ports_own_and_carry_nd_only() {
    let ll = link_local(MAC).to_string();
    let own = Some(link_local(MAC));
    for ty in [133, 135, 136] {
        assert_eq!(
            from_port(icmpv6(&ll, "ff02::1", ty), MAC, own),
            Verdict::Accept
        );
        assert_eq!(
            from_port(icmpv6("fe80::1", "ff02::1", ty), MAC, own),
            Verdict::Drop,
            "type {ty} from a link-local address not the port's"
        );
    }
    assert_eq!(
        from_port(icmpv6(&ll, "ff02::1", 128), MAC, None),
        Verdict::Drop,
        "echo from link-local"
    );
    assert_eq!(
        from_port(udp(&ll, "ff02::1", 5000, 5000), MAC, None),
        Verdict::Drop
    );
    assert_eq!(
        from_port(icmpv6("::", "ff02::1:ff00:2", 135), MAC, None),
        Verdict::Accept
    );
    assert_eq!(
        from_port(icmpv6("::", "ff02::16", 143), MAC, None),
        Verdict::Drop
    );
}

#[test]
fn neighbour_advertisements_name_only_the_ports_addresses() {
    let ll = link_local(MAC).to_string();
    let na = || icmpv6(&ll, "ff02::1", 136);
    for own in [link_local(MAC), "fd00::2".parse().unwrap()] {
        assert_eq!(from_port(na(), MAC, Some(own)), Verdict::Accept, "{own}");
    }
    for other in ["fd00::3", "fe80::1"] {
        let t = other.parse().unwrap();
        assert_eq!(from_port(na(), MAC, Some(t)), Verdict::Drop, "{other}");
        let bound = icmpv6("fd00::2", "ff02::1", 136);
        assert_eq!(
            from_port(bound, MAC, Some(t)),
            Verdict::Drop,
            "{other} from fd00::2"
        );
    }
}

#[test]
fn dhcp_servers_are_refused_and_clients_pass() {
    for (src, dst, sport, dport) in [
        ("10.0.0.2", "255.255.255.255", 67, 68),
        ("10.0.0.2", "10.0.0.9", 67, 67),
        ("10.0.0.2", "10.0.0.9", 4000, 68),
        ("fd00::2", "ff02::1", 547, 546),
        ("fd00::2", "fd00::9", 4000, 546),
    ] {
        assert_eq!(
            from_port(udp(src, dst, sport, dport), MAC, None),
            Verdict::Drop,
            "{src}:{sport} -> {dst}:{dport}"
        );
    }
    assert_eq!(
        from_port(udp("10.0.0.2", "255.255.255.255", 68, 67), MAC, None),
        Verdict::Accept
    );
    assert_eq!(
        from_port(udp("fd00::2", "ff02::1:2", 546, 547), MAC, None),
        Verdict::Accept
    );
    // a spoofed MAC still falls to anti-spoofing
    assert_eq!(
        from_port(
            udp("10.0.0.2", "10.0.0.9", 68, 67),
            [2, 0, 0, 0, 0, 9],
            None
        ),
        Verdict::Drop
    );
}
