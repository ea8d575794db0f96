//! `inet bulkhead_net` ([`bulkhead_policy::compile::nat`]) for one host of
//! every driver: golden files of the skeleton, the whole host and one
//! endpoint's fragment, and its hooks interpreted (network isolation, host
//! reach from nat endpoints). Packets on the kernel: the engine's
//! `tests/attacks/ports` and `e2e_nat.rs`.

mod world;

use std::net::IpAddr;

use bulkhead_model::Direction;
use bulkhead_policy::compile::nat::{build, TABLE};
use bulkhead_policy::interp::{run, Context};
use bulkhead_policy::ir::{Family, Hook, Table, Verdict};
use bulkhead_policy::{CtState, Packet};
use world::{golden, without, World};

fn host() -> Table {
    let w = World::new();
    build(&w.networks(), &w.pairs())
}

#[test]
fn tables_match_golden_files() {
    let w = World::new();
    let t = build(&w.networks(), &w.pairs());
    assert_eq!((t.family, t.name.as_str()), (Family::Inet, TABLE));
    golden("nat-skeleton", &build(&[], &[]));
    golden("nat-host", &t);
    golden("nat-fragment", &build(&[], &[w.on("n")]));
}

#[test]
fn every_part_is_skeleton_networks_or_one_endpoint() {
    // The engine programs one endpoint as diff(skeleton, fragment): the
    // whole table must be exactly the union of those parts.
    let w = World::new();
    let mut union = build(&w.networks(), &[]);
    for p in w.pairs() {
        let f = build(&[], &[p]);
        for (name, set) in f.sets {
            let all = union.sets.get_mut(&name).expect("same sets");
            all.elements.extend(set.elements);
        }
        for (name, chain) in f.chains {
            union.chains.entry(name).or_insert(chain);
        }
    }
    assert_eq!(union, host());
}

fn packet(src: &str, dst: &str, protocol: u8) -> Context {
    let src: IpAddr = src.parse().expect("src");
    let dst: IpAddr = dst.parse().expect("dst");
    let mut c = Context::from_packet(&Packet::new(Direction::Out, src, dst, protocol));
    c.ct = CtState::New;
    c
}

fn forward(src: &str, dst: &str) -> Verdict {
    run(&host(), Hook::Forward, &packet(src, dst, 6))
}

#[test]
fn networks_are_isolated_from_each_other_in_both_families() {
    // Without the isolation rules, crossing networks works.
    let weak = without(&host(), "networks are isolated");
    for (src, dst) in [("10.1.0.2", "10.2.0.2"), ("fd01::2", "fd03::2")] {
        assert_eq!(
            run(&weak, Hook::Forward, &packet(src, dst, 6)),
            Verdict::Accept
        );
    }
    assert_eq!(forward("10.1.0.2", "10.1.0.3"), Verdict::Accept, "same");
    assert_eq!(forward("10.1.0.2", "10.2.0.2"), Verdict::Drop);
    assert_eq!(forward("10.4.0.2", "10.3.0.2"), Verdict::Drop);
    assert_eq!(forward("fd01::2", "fd03::2"), Verdict::Drop);
    assert_eq!(forward("fd01::2", "fd01::3"), Verdict::Accept);
    // Outside the bulkhead subnets: not ours to isolate.
    assert_eq!(forward("10.1.0.2", "192.0.2.1"), Verdict::Accept);
    assert_eq!(forward("192.0.2.1", "10.2.0.2"), Verdict::Accept);
    // A published port's connection, and replies, cross networks.
    let mut dnat = packet("10.2.0.2", "10.1.0.2", 6);
    dnat.dnat = true;
    assert_eq!(run(&host(), Hook::Forward, &dnat), Verdict::Accept);
    let mut reply = packet("10.1.0.2", "10.2.0.2", 6);
    reply.ct = CtState::Established;
    assert_eq!(run(&host(), Hook::Forward, &reply), Verdict::Accept);
}

/// A packet from the switch port of the endpoint on network `net` to `dst`
/// (a host address), through the input hook.
fn to_host(w: &World, net: &str, dst: &str, protocol: u8, icmp: Option<u8>) -> Verdict {
    let (e, _) = w.on(net);
    let mut c = packet(&e.ip_address.addr.to_string(), dst, protocol);
    c.iif = Some(e.switch_port.to_string());
    c.icmp_type = icmp;
    run(&build(&w.networks(), &w.pairs()), Hook::Input, &c)
}

#[test]
fn nat_endpoints_reach_the_host_at_their_gateway_only() {
    let w = World::new();
    let (e, _) = w.on("n");
    let mut other_address = packet("10.1.0.2", "192.0.2.1", 6);
    other_address.iif = Some(e.switch_port.to_string());
    let weak = without(&host(), "nat endpoints reach the host only");
    assert_eq!(run(&weak, Hook::Input, &other_address), Verdict::Accept);
    assert_eq!(to_host(&w, "n", "10.1.0.1", 6, None), Verdict::Accept);
    assert_eq!(to_host(&w, "n", "192.0.2.1", 6, None), Verdict::Drop);
    assert_eq!(to_host(&w, "n", "10.2.0.1", 17, None), Verdict::Drop);
    assert_eq!(to_host(&w, "n6", "fd01::1", 6, None), Verdict::Accept);
    assert_eq!(to_host(&w, "n6", "fd00::1", 6, None), Verdict::Drop);
    // Neighbour discovery (to solicited-node multicast), not other ICMPv6.
    let nd = to_host(&w, "n6", "ff02::1:ff00:1", 58, Some(135));
    assert_eq!(nd, Verdict::Accept);
    let echo = to_host(&w, "n6", "ff02::1:ff00:1", 58, Some(128));
    assert_eq!(echo, Verdict::Drop);
    // The host is one more machine on the LAN for l2bridge endpoints.
    assert_eq!(to_host(&w, "bridge", "192.0.2.1", 6, None), Verdict::Accept);
    // Replies to connections the host opened.
    let mut reply = packet("10.1.0.2", "192.0.2.1", 6);
    reply.iif = Some(e.switch_port.to_string());
    reply.ct = CtState::Established;
    assert_eq!(run(&host(), Hook::Input, &reply), Verdict::Accept);
}

#[test]
fn mappings_dispatch_by_port_and_bound_address_ipv4_only() {
    let t = host();
    let w = World::new();
    let (e, _) = w.on("n");
    let chain = |i: usize| format!("pm_{}_{i}", e.id.short_hex(12));
    let any = &t.sets["ports_any"].elements;
    let bound = &t.sets["ports_ip4"].elements;
    // 8080/tcp and 9090/udp to any host address; 8081/udp on 127.0.0.1
    // only; the IPv6-bound mapping and the IPv6 endpoint's are not NATed.
    assert_eq!((any.len(), bound.len()), (2, 1));
    let jump = |c: String| Some(Verdict::Jump(c.into()));
    assert!(any.values().any(|v| *v == jump(chain(0))));
    assert_eq!(bound.values().next(), Some(&jump(chain(1))));
    assert!(t.chains.contains_key(chain(0).as_str()) && t.chains.contains_key(chain(1).as_str()));
    assert!(!t.chains.contains_key(chain(2).as_str()), "[::1] mapping");
}
