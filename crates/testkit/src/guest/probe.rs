//! `bulkhead_guest::probe` for tests: the same probes, a probe that cannot
//! be run (the guest does not answer, a socket cannot be opened) panics
//! with the guest's console.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use bulkhead_guest::probe as p;

use super::Guest;

/// TCP from the guest to a listener in `ns`: the client address the
/// server saw, when both markers crossed.
#[track_caller]
pub fn tcp_from_guest(g: &mut Guest, ns: &Path, to: SocketAddr) -> Option<Ipv4Addr> {
    let r = p::tcp_from_guest(g, ns, to);
    g.must(r)
}

/// TCP from `ns` to a listener in the guest: whether both markers crossed.
#[track_caller]
pub fn tcp_to_guest(g: &mut Guest, ns: &Path, to: SocketAddr) -> bool {
    let r = p::tcp_to_guest(g, ns, to);
    g.must(r)
}

/// TCP from guest `a` to a listener in guest `b`.
#[track_caller]
pub fn tcp_guest_to_guest(a: &mut Guest, b: &mut Guest, to: SocketAddr) -> bool {
    let r = p::tcp_guest_to_guest(a, b, to);
    a.must(r)
}

/// UDP request/response from the guest to `ns`: the source address the
/// server saw, when both markers crossed.
#[track_caller]
pub fn udp_from_guest(g: &mut Guest, ns: &Path, to: SocketAddr) -> Option<Ipv4Addr> {
    let r = p::udp_from_guest(g, ns, to);
    g.must(r)
}

/// UDP from guest `a` to a closed port of guest `b`: whether `b` counted it.
#[track_caller]
pub fn udp_guest_to_guest(a: &mut Guest, b: &mut Guest, to: SocketAddr) -> bool {
    let r = p::udp_guest_to_guest(a, b, to);
    a.must(r)
}

/// The guest kernel's counter `field` of `proto` in `/proc/net/snmp`.
#[track_caller]
pub fn snmp(g: &mut Guest, proto: &str, field: &str) -> u64 {
    let r = p::snmp(g, proto, field);
    g.must(r)
}
