//! Fabrics around throwaway hosts, for the L2 drivers and the overlay.
//!
//! A simulated LAN behind a host's uplink, all in throwaway namespaces:
//!
//! ```text
//!   host ns: <uplink> 198.51.100.1/24 <-- veth --> lan ns: bridge lan0 198.51.100.254 (router)
//!                                                   ports: lanh (to the host; hairpin when asked)
//!                                                          lanp <-- veth --> peer ns: eth0 198.51.100.2/24
//! ```
//!
//! and an underlay veth joining two hosts. Removed with their namespaces.

use std::net::Ipv4Addr;

use bulkhead_dataplane::netns::NetnsGuard;
use bulkhead_dataplane::testing;

use crate::cmd::ip;
use crate::netns::{wait_up, Host};

/// The host's own address on the simulated LAN.
pub const LAN_HOST: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
/// The LAN peer host.
pub const LAN_PEER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
/// The LAN router (the L2 networks' gateway).
pub const LAN_ROUTER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 254);
/// The LAN subnet.
pub const LAN_SUBNET: &str = "198.51.100.0/24";

/// A LAN (switch + router namespace and a peer namespace) behind `uplink`
/// of a host namespace; removed on drop.
#[derive(Debug)]
pub struct Lan {
    pub uplink: String,
    pub peer: NetnsGuard,
    pub lan: NetnsGuard,
}

impl Lan {
    /// Builds the LAN; with `hairpin`, the switch sends frames back out of
    /// the port they came in by (what l2tunnel needs from the fabric).
    pub fn attach(h: &Host, tag: &str, uplink: &str, hairpin: bool) -> Lan {
        let lan = NetnsGuard::create(&testing::unique_name(&format!("{tag}-lan")))
            .expect("create lan netns");
        let peer = NetnsGuard::create(&testing::unique_name(&format!("{tag}-peer")))
            .expect("create peer netns");
        let (hn, l, p) = (h.host_name(), lan.name(), peer.name());
        ip(&["-n", l, "link", "set", "lo", "up"]);
        ip(&["-n", p, "link", "set", "lo", "up"]);
        ip(&["-n", l, "link", "add", "lan0", "type", "bridge"]);
        ip(&["-n", l, "addr", "add", "198.51.100.254/24", "dev", "lan0"]);
        ip(&["-n", l, "link", "set", "lan0", "up"]);
        ip(&[
            "-n", hn, "link", "add", uplink, "type", "veth", "peer", "name", "lanh", "netns", l,
        ]);
        ip(&["-n", hn, "addr", "add", "198.51.100.1/24", "dev", uplink]);
        ip(&["-n", hn, "link", "set", uplink, "up"]);
        ip(&["-n", l, "link", "set", "lanh", "master", "lan0", "up"]);
        if hairpin {
            let slave = ["link", "set", "lanh", "type", "bridge_slave"];
            ip(&[&["-n", l][..], &slave, &["hairpin", "on"]].concat());
        }
        ip(&[
            "-n", l, "link", "add", "lanp", "type", "veth", "peer", "name", "eth0", "netns", p,
        ]);
        ip(&["-n", l, "link", "set", "lanp", "master", "lan0", "up"]);
        ip(&["-n", p, "addr", "add", "198.51.100.2/24", "dev", "eth0"]);
        ip(&["-n", p, "link", "set", "eth0", "up"]);
        ip(&["-n", p, "route", "add", "default", "via", "198.51.100.254"]);
        wait_up(p, "eth0");
        wait_up(l, "lanh");
        Lan {
            uplink: uplink.to_owned(),
            peer,
            lan,
        }
    }
}

/// Joins the host namespaces of `a` and `b` by a veth `bhtu0` (the
/// underlay): `a` gets 10.99.0.1/24, `b` 10.99.0.2/24.
pub fn underlay(a: &Host, b: &Host) {
    let (an, bn) = (a.host_name(), b.host_name());
    ip(&[
        "-n", an, "link", "add", "bhtu0", "type", "veth", "peer", "name", "bhtu0", "netns", bn,
    ]);
    for (h, addr) in [(an, "10.99.0.1/24"), (bn, "10.99.0.2/24")] {
        ip(&["-n", h, "addr", "add", addr, "dev", "bhtu0"]);
        ip(&["-n", h, "link", "set", "bhtu0", "up"]);
    }
    wait_up(an, "bhtu0");
    wait_up(bn, "bhtu0");
}

/// Makes the router namespace `ns_name` (a LAN's) forward, and route
/// `prefixes` via `via` (the host), as a fabric that knows the host's
/// subnets would: a LAN peer's packets then reach the host's rules rather
/// than a missing route.
pub fn route_via(ns_name: &str, via: &str, prefixes: &[&str]) {
    for p in prefixes {
        ip(&["-n", ns_name, "route", "add", p, "via", via]);
    }
    crate::cmd::sysctl(ns_name, "net.ipv4.ip_forward=1");
}
