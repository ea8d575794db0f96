//! A tenant cannot be a DHCP server: a vm guest's rogue OFFERs reach no
//! other guest and no process endpoint, on every driver, while they do on a
//! plain bridge without bulkhead (spec §9, "hostile tenants";
//! `docs/adr/0007-dhcp.md`). Guests are TAPs opened from userspace.

mod common;
mod dhcp_support;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use bulkhead_testkit::dhcp::rogue_offer;
use bulkhead_testkit::tap::TapGuest;
use common::*;
use dhcp_support::*;

/// A rogue server's OFFERs (UDP 67 → 68) from `from` (its own bound MAC and
/// address, so only the DHCP rule can stop them), broadcast and unicast to
/// `to_mac`/`to_ip` and through the port's router MAC; and the same frames
/// on ports 1067 → 1068 as the control that the path itself is open.
fn rogue_frames(
    from_mac: [u8; 6],
    from_ip: Ipv4Addr,
    router_mac: [u8; 6],
    to_mac: [u8; 6],
    to_ip: Ipv4Addr,
    server_port: u16,
) -> Vec<Vec<u8>> {
    let client_port = server_port + 1;
    let offer = |dst_mac, dst| {
        let mut f = rogue_offer(from_mac, from_ip, dst_mac, dst, to_mac, to_ip);
        let udp = 14 + 20;
        f[udp..udp + 2].copy_from_slice(&server_port.to_be_bytes());
        f[udp + 2..udp + 4].copy_from_slice(&client_port.to_be_bytes());
        f
    };
    vec![
        offer([0xff; 6], Ipv4Addr::BROADCAST),
        offer(to_mac, to_ip),
        offer(router_mac, to_ip),
    ]
}

/// What `rx` (bound to a client port) receives from `from` within SILENCE.
fn datagrams_from(rx: &std::net::UdpSocket, from: Ipv4Addr) -> usize {
    rx.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let until = std::time::Instant::now() + SILENCE;
    let mut buf = [0u8; 2048];
    let mut n = 0;
    while std::time::Instant::now() < until {
        if let Ok((_, src)) = rx.recv_from(&mut buf) {
            n += usize::from(src.ip() == IpAddr::V4(from));
        }
    }
    n
}

const XID_ROGUE: u32 = 0x0bad_0bad;

fn is_rogue(f: &[u8], server_port: u16) -> bool {
    bulkhead_testkit::tap::is_udp(f, server_port, server_port + 1)
        && f.len() > 14 + 28 + 8
        && f[14 + 28 + 4..14 + 28 + 8] == XID_ROGUE.to_be_bytes()
}

/// Weakened setup: two TAPs on a plain bridge (no bulkhead). A guest's
/// rogue OFFER reaches the other guest: the attack works without the guard.
fn rogue_offer_crosses_a_plain_bridge() {
    let ns = bulkhead_dataplane::netns::NetnsGuard::create(
        &bulkhead_dataplane::testing::unique_name("dhplain"),
    )
    .expect("netns");
    let n = ns.name();
    ip(&["-n", n, "link", "add", "br0", "type", "bridge"]);
    ip(&["-n", n, "link", "set", "br0", "up"]);
    for t in ["ta", "tb"] {
        ip(&["-n", n, "tuntap", "add", "dev", t, "mode", "tap"]);
        ip(&["-n", n, "link", "set", t, "master", "br0", "up"]);
    }
    let a = TapGuest::open(ns.path(), "ta", false).expect("open ta");
    let b = TapGuest::open(ns.path(), "tb", false).expect("open tb");
    wait_up(n, "ta");
    wait_up(n, "tb");
    let (amac, bmac) = ([2, 0, 0, 0, 0, 0xa], [2, 0, 0, 0, 0, 0xb]);
    for f in rogue_frames(
        amac,
        Ipv4Addr::new(10, 9, 0, 1),
        amac,
        bmac,
        Ipv4Addr::new(10, 9, 0, 2),
        67,
    ) {
        a.send(&f).expect("send");
    }
    assert!(
        b.recv_matching(ANSWER, |f| is_rogue(f, 67)).is_some(),
        "weakened setup: the rogue OFFER must reach the other guest on a plain bridge"
    );
}

/// One driver: guest A (vm endpoint, bound) sends rogue OFFERs to guest B
/// (vm) and to process endpoint P. The control frames (1067 → 1068) reach
/// P; no OFFER (67 → 68) reaches P or B's TAP.
fn rogue_offer_is_dropped_at_the_port(driver: &str) {
    let tag = format!("dr{}", &driver[..3]);
    let Some(h) = Harness::new(&tag) else { return };
    let (_lan, p_ip) = network(&h, driver, &tag);
    let [ia, ib] = vm_ips(driver);
    let va = vm_at(&h, "va", ia);
    let vb = vm_at(&h, "vb", ib);
    let p = endpoint_at(&h, "p", "d", p_ip);
    let p_mac = h.engine.endpoint("p").expect("p").endpoint.mac_address.0;
    let (ga, gb) = (guest(&h, &va), guest(&h, &vb));
    let (a_mac, a_ip) = (va.mac_address.0, v4(va.ip_address.addr));
    let router = mac_of(h.host_name(), va.switch_port.as_str());
    for server_port in [1067, 67] {
        let rx = udp_listen(&p.ns, server_port + 1);
        let to_b = rogue_frames(
            a_mac,
            a_ip,
            router,
            vb.mac_address.0,
            v4(vb.ip_address.addr),
            server_port,
        );
        for f in rogue_frames(a_mac, a_ip, router, p_mac, p.ip, server_port)
            .iter()
            .chain(&to_b)
        {
            ga.send(f).expect("send");
        }
        let at_p = datagrams_from(&rx, a_ip);
        if server_port == 67 {
            assert_eq!(
                at_p, 0,
                "{driver}: a rogue OFFER reached the process endpoint"
            );
            assert!(
                gb.recv_matching(SILENCE, |f| is_rogue(f, 67)).is_none(),
                "{driver}: a rogue OFFER reached the other guest"
            );
        } else {
            assert!(
                at_p > 0,
                "{driver}: control datagrams from the guest never reached P"
            );
        }
    }
}

#[test]
fn a_guests_rogue_dhcp_offer_reaches_no_one_on_every_driver() {
    rogue_offer_crosses_a_plain_bridge();
    let threads: Vec<_> = DRIVERS
        .iter()
        .map(|d| std::thread::spawn(move || rogue_offer_is_dropped_at_the_port(d)))
        .collect();
    let failed: Vec<&str> = DRIVERS
        .iter()
        .zip(threads)
        .filter_map(|(d, t)| t.join().is_err().then_some(*d))
        .collect();
    assert!(
        failed.is_empty(),
        "drivers {failed:?} failed (see their panics above)"
    );
}
