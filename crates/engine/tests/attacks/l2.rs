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
mod lan;
mod routed;
mod tenant;

use std::net::{Ipv4Addr, Ipv6Addr, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::common::*;
use bulkhead_dataplane::{netns, sysctl};
use frames::*;
use tenant::attacks;

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
    driver: &'static str,
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
        nft(&b.ns_name, &["flush", "ruleset"]);
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
    // `nft list ruleset` (the operator's view) reads what was programmed
    let listing = nft(h.host_name(), &["list", "ruleset"]);
    let mut want = vec!["switch:nd-target", "switch:router-advert-redirect"];
    if bridged {
        want.extend([
            "arp saddr ether . arp saddr ip @arp_bindings accept",
            "switch:arp-spoofing",
        ]);
    }
    for w in want {
        assert!(
            listing.contains(w),
            "{driver}: no {w:?} in nft's listing:\n{listing}"
        );
    }
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
        driver,
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
        // The previous attack's socket on this port is closed, but a child
        // that another test forked (for `ip`, `nft`) in that moment holds a
        // copy until its exec: retry briefly on "address in use".
        let until = Instant::now() + Duration::from_secs(2);
        let s = loop {
            let r = netns::run_in(Some(&self.victim.ns), move || UdpSocket::bind(("::", port)))
                .and_then(|s| s);
            match r {
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && Instant::now() < until => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                r => break r.unwrap_or_else(|e| panic!("bind [::]:{port} in the host: {e}")),
            }
        };
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
            let mut full = vec!["-n", self.victim.ns_name.as_str()];
            full.extend_from_slice(args);
            if ip(&full).contains(needle) {
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
        self.flush_guard();
        if self.is_host() {
            self.port_learns_from_routers();
        }
    }

    /// Deletes every rule of the port guard's chain and, on a nat port,
    /// of the host-reach chain behind it (`inet bulkhead_net` input: a nat
    /// endpoint reaches the host only at its gateway), which would
    /// otherwise stop the same frames one hook later.
    fn flush_guard(&self) {
        if self.driver == "nat" {
            nft(
                self.h.host_name(),
                &["flush", "chain", "inet", "bulkhead_net", "input"],
            );
        }
        let (family, table) = if self.is_host() {
            ("inet", "bulkhead")
        } else {
            ("bridge", "bulkhead_l2")
        };
        let host = self.h.host_name();
        nft(host, &["flush", "chain", family, table, "prerouting"]);
    }

    /// Undoes bulkhead's `accept_ra=0`/`accept_redirects=0` on A's port.
    fn port_learns_from_routers(&self) {
        let dev = &self.victim.dev;
        for k in ["accept_ra", "accept_redirects"] {
            let name = format!("net/ipv6/conf/{dev}/{k}");
            sysctl::write(Some(self.h.host()), &name, "1").expect("sysctl");
        }
    }
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
