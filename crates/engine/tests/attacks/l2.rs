//! Attacks: l2 — what a tenant sends out of its switch port at L2/L3 (see
//! `docs/security.md`, `docs/nftables.md` "The port guard").
//!
//! One world per driver: an attacker endpoint A and a victim. On the routed
//! drivers (nat, l2bridge, l2tunnel) the victim is the host namespace, seen
//! through A's switch port; on the bridged ones (transparent, overlay) it
//! is a neighbour endpoint B on the same bridge. A sends hand-made frames
//! from inside its namespace ([`frames`]). Each test runs every attack
//! twice: against bulkhead as programmed (every attack must fail), then
//! against a weakened bulkhead — the port-guard chain flushed and, on the
//! routed ports, `accept_ra`/`accept_redirects` turned back on — where
//! every attack must succeed, so that no assertion here can pass vacuously.
//! The five drivers run as five tests, concurrently.

mod frames;

use std::net::{Ipv4Addr, Ipv6Addr, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::*;
use bulkhead_dataplane::{netns, sysctl};
use frames::*;

/// How long an attack is given to take effect.
const EFFECT: Duration = Duration::from_millis(800);

/// Whoever A's frames would hurt.
struct Victim {
    ns: PathBuf,
    ns_name: String,
    /// The victim's interface that A's frames arrive at.
    dev: String,
    mac: Mac,
    ip4: Ipv4Addr,
    ll: Ipv6Addr,
    /// The host namespace (routed drivers): seen through sockets, since a
    /// sniffer there sees frames before the switch table drops them.
    host: bool,
}

struct World {
    h: Harness,
    a: Ep,
    a_mac: Mac,
    a_ll: Ipv6Addr,
    victim: Victim,
    subnet_spare: Ipv4Addr,
}

fn run(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("spawn");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn port_of(h: &Harness, name: &str) -> String {
    h.engine
        .endpoint(name)
        .expect("endpoint")
        .switch_port
        .to_string()
}

fn ll_of(ns_name: &str, dev: &str) -> Ipv6Addr {
    link_local(ns_name, dev, Duration::from_secs(3))
        .unwrap_or_else(|| panic!("{dev} in {ns_name}: no link-local address"))
}

fn world(driver: &'static str) -> Option<World> {
    let h = Harness::new(&format!("l2{driver}"))?;
    let bridged = matches!(driver, "transparent" | "overlay");
    let (subnet, a_ip, b_ip, spare) = match driver {
        "overlay" => (
            "10.211.0.0/24",
            "10.211.0.10",
            "10.211.0.11",
            "10.211.0.250",
        ),
        _ => ("192.0.2.0/24", "192.0.2.10", "192.0.2.11", "192.0.2.250"),
    };
    let a = match driver {
        "nat" => {
            h.nat_network("n", "10.212.0.0/24", None);
            h.endpoint("a", "n", &[], None)
        }
        _ => {
            let (gw, vni) = match driver {
                "overlay" => (None, Some(4011)),
                _ => (Some("192.0.2.254"), None),
            };
            l2_network(&h, "n", driver, subnet, gw, UPLINK_DEV, vni);
            endpoint_at(&h, "a", "n", a_ip)
        }
    };
    let a_mac = mac_of(&a.ns_name, "eth0");
    let a_ll = ll_of(&a.ns_name, "eth0");
    assert_eq!(
        a_ll,
        bulkhead_policy::compile::link_local(a_mac),
        "EUI-64 link-local"
    );
    let victim = if bridged {
        let b = endpoint_at(&h, "b", "n", b_ip);
        // B stands for any neighbour on the segment (a LAN host, a VM):
        // without a firewall of its own, so that only the switch port
        // stands between A and it (B's own table would drop a redirect,
        // which conntrack finds invalid).
        run(&["ip", "netns", "exec", &b.ns_name, "nft", "flush", "ruleset"]);
        Victim {
            ns: b.ns.clone(),
            mac: mac_of(&b.ns_name, "eth0"),
            ll: ll_of(&b.ns_name, "eth0"),
            ip4: b.ip,
            dev: "eth0".into(),
            ns_name: b.ns_name,
            host: false,
        }
    } else {
        let port = port_of(&h, "a");
        Victim {
            ns: h.host().to_path_buf(),
            ns_name: h.host_name().into(),
            mac: mac_of(h.host_name(), &port),
            ll: ll_of(h.host_name(), &port),
            ip4: UPLINK,
            dev: port,
            host: true,
        }
    };
    // the victim routes a prefix via A (what a redirect would change)
    let via = a_ll.to_string();
    ip(&[
        "-n",
        &victim.ns_name,
        "-6",
        "route",
        "add",
        "2001:db8:99::/64",
        "via",
        &via,
        "dev",
        &victim.dev,
    ]);
    let subnet_spare = spare.parse().expect("ipv4");
    Some(World {
        h,
        a,
        a_mac,
        a_ll,
        victim,
        subnet_spare,
    })
}

/// What the victim sees of one probe: a socket in the host, or a sniffer
/// on the neighbour's interfaces.
enum Seen {
    Socket(UdpSocket),
    Frames(Sniffer),
}

impl World {
    fn is_host(&self) -> bool {
        self.victim.host
    }

    fn send(&self, frame: &[u8]) {
        send(&self.a.ns, "eth0", frame);
    }

    fn watch(&self, port: u16) -> Seen {
        if !self.victim.host {
            return Seen::Frames(Sniffer::open(&self.victim.ns));
        }
        let s = netns::run_in(Some(&self.victim.ns), move || UdpSocket::bind(("::", port)))
            .and_then(|s| s)
            .unwrap_or_else(|e| panic!("bind [::]:{port} in the host: {e}"));
        s.set_read_timeout(Some(Duration::from_millis(20)))
            .expect("timeout");
        Seen::Socket(s)
    }

    /// Sends `frame` (carrying `nonce`) and says whether it reached the victim.
    fn arrives(&self, port: u16, nonce: &[u8], frame: Vec<u8>) -> bool {
        let seen = self.watch(port);
        self.send(&frame);
        match seen {
            Seen::Frames(s) => s.saw(nonce, PROBE),
            Seen::Socket(s) => {
                let until = Instant::now() + PROBE;
                let mut buf = [0u8; 2048];
                while Instant::now() < until {
                    if let Ok(n) = s.recv(&mut buf) {
                        if buf[..n].windows(nonce.len()).any(|w| w == nonce) {
                            return true;
                        }
                    }
                }
                false
            }
        }
    }

    /// Polls `ip ARGS` in the victim's namespace until its output contains
    /// `needle` (or `EFFECT` passes).
    fn victim_shows(&self, args: &[&str], needle: &str) -> bool {
        let until = Instant::now() + EFFECT;
        loop {
            let mut full = vec!["ip", "-n", &self.victim.ns_name];
            full.extend_from_slice(args);
            if run(&full).contains(needle) {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The port guard removed: the guard chain flushed, and on the host's
    /// routed port RA and redirects accepted again.
    fn weaken(&self) {
        let chain: &[&str] = if self.is_host() {
            &["inet", "bulkhead", "prerouting"]
        } else {
            &["bridge", "bulkhead_l2", "prerouting"]
        };
        let mut args = vec![
            "ip",
            "netns",
            "exec",
            self.h.host_name(),
            "nft",
            "flush",
            "chain",
        ];
        args.extend_from_slice(chain);
        run(&args);
        if self.is_host() {
            let dev = &self.victim.dev;
            for (k, v) in [("accept_ra", "1"), ("accept_redirects", "1")] {
                let name = format!("net/ipv6/conf/{dev}/{k}");
                sysctl::write(Some(self.h.host()), &name, v).expect("sysctl");
            }
        }
    }
}

fn nonce() -> Vec<u8> {
    format!("bulkhead-l2-{:08x}", unique_u32()).into_bytes()
}

/// A router advertisement for a fresh prefix: the victim autoconfigures
/// an address in it, or takes A as its default router.
fn router_advert_attack(w: &World) -> bool {
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
fn redirect_attack(w: &World) -> bool {
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

fn mac_text(m: Mac) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Every attack that applies to the world, by name: whether it succeeded.
fn attacks(w: &World) -> Vec<(&'static str, bool)> {
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

/// Every attack fails against bulkhead and succeeds once the guard is
/// removed.
fn guard_stops_everything(driver: &'static str) {
    let Some(w) = world(driver) else {
        return;
    };
    let stopped = attacks(&w);
    w.weaken();
    let weakened = attacks(&w);
    let leaks: Vec<_> = stopped
        .iter()
        .filter(|(_, ok)| *ok)
        .map(|(n, _)| *n)
        .collect();
    let vacuous: Vec<_> = weakened
        .iter()
        .filter(|(_, ok)| !*ok)
        .map(|(n, _)| *n)
        .collect();
    assert!(
        leaks.is_empty(),
        "{driver}: succeeded against bulkhead: {leaks:?}"
    );
    assert!(
        vacuous.is_empty(),
        "{driver}: failed even without the guard: {vacuous:?}"
    );
}

#[test]
fn l2_nat_port_guard_stops_tenant_frames() {
    guard_stops_everything("nat");
}

#[test]
fn l2_l2bridge_port_guard_stops_tenant_frames() {
    guard_stops_everything("l2bridge");
}

#[test]
fn l2_l2tunnel_port_guard_stops_tenant_frames() {
    guard_stops_everything("l2tunnel");
}

#[test]
fn l2_transparent_port_guard_stops_tenant_frames() {
    guard_stops_everything("transparent");
}

#[test]
fn l2_overlay_port_guard_stops_tenant_frames() {
    guard_stops_everything("overlay");
}
