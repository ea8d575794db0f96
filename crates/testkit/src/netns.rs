//! Throwaway namespaces and link queries.
//!
//! Names are unique to the test: a pin prefix is `bht<pid><kind><n>-` (the
//! kind letter tells the harnesses apart: `x` engine, `d` a daemon),
//! so parallel tests never see each other's objects. [`Host`] is the
//! throwaway "host" namespace a test runs bulkhead in, optionally with an
//! "outside" peer (the uplink side):
//!
//! ```text
//!   host ns: bhtup0 192.0.2.1/24  <-- veth -->  outside ns: up0 192.0.2.2/24, default via 192.0.2.1
//! ```
//!
//! Guards delete what they made on drop, also on panic; deleting a
//! namespace takes every link in it along.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bulkhead_dataplane::netns::{self, NetnsGuard};
use bulkhead_dataplane::testing;

use crate::cmd::{ip, ip_lossy};

/// The host's uplink address (in the throwaway host namespace).
pub const UPLINK: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The outside peer, behind the uplink.
pub const OUTSIDE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// The uplink device in the host namespace.
pub const UPLINK_DEV: &str = "bhtup0";

/// A number unique within this test process.
pub fn next_n() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A fresh pin prefix `bht<pid><kind><n>-` and its `n`.
pub fn unique_prefix(kind: char) -> (String, u32) {
    let n = next_n();
    (format!("bht{}{kind}{n}-", std::process::id()), n)
}

/// Names of the namespaces pinned with `prefix` (sorted).
pub fn pins(prefix: &str) -> Vec<String> {
    let mut v = netns::list(prefix).unwrap_or_default();
    v.sort();
    v
}

/// Unpins every namespace with `prefix` (best effort: for drops).
pub fn delete_pins(prefix: &str) {
    for n in pins(prefix) {
        let _ = netns::delete(&n);
    }
}

/// A throwaway host namespace (loopback up), with an optional outside peer.
#[derive(Debug)]
pub struct Host {
    // Field order is drop order: the outside goes first, then the host,
    // which takes every link in it (switch ports, uplink) along.
    outside: Option<NetnsGuard>,
    host: NetnsGuard,
}

impl Host {
    /// A host namespace named `name` (must be unique, see [`unique_prefix`]).
    pub fn named(name: &str) -> Host {
        let host = NetnsGuard::create(name).expect("create host netns");
        ip(&["-n", host.name(), "link", "set", "lo", "up"]);
        Host {
            outside: None,
            host,
        }
    }

    /// A host namespace `bht-<tag>-host-…` with an outside peer
    /// `bht-<tag>-out-…` behind the uplink [`UPLINK_DEV`].
    pub fn with_outside(tag: &str) -> Host {
        let mut h = Host::named(&testing::unique_name(&format!("{tag}-host")));
        let outside = NetnsGuard::create(&testing::unique_name(&format!("{tag}-out")))
            .expect("create outside netns");
        let (h_name, o) = (h.host.name().to_owned(), outside.name().to_owned());
        ip(&["-n", &o, "link", "set", "lo", "up"]);
        ip(&[
            "-n", &h_name, "link", "add", UPLINK_DEV, "type", "veth", "peer", "name", "up0",
            "netns", &o,
        ]);
        ip(&[
            "-n",
            &h_name,
            "addr",
            "add",
            "192.0.2.1/24",
            "dev",
            UPLINK_DEV,
        ]);
        ip(&["-n", &h_name, "link", "set", UPLINK_DEV, "up"]);
        ip(&["-n", &o, "addr", "add", "192.0.2.2/24", "dev", "up0"]);
        ip(&["-n", &o, "link", "set", "up0", "up"]);
        ip(&["-n", &o, "route", "add", "default", "via", "192.0.2.1"]);
        h.outside = Some(outside);
        h
    }

    /// The host namespace's pin.
    pub fn host(&self) -> &Path {
        self.host.path()
    }

    /// The host namespace's name (`ip -n`).
    pub fn host_name(&self) -> &str {
        self.host.name()
    }

    /// The outside peer's pin.
    pub fn outside(&self) -> &Path {
        self.outside
            .as_ref()
            .expect("a host with an outside peer")
            .path()
    }

    /// Links in the host namespace whose names start with `prefix` (sorted).
    pub fn host_links(&self, prefix: &str) -> Vec<String> {
        links(self.host_name(), prefix)
    }
}

/// Links in the pinned namespace `ns_name` whose names start with `prefix`
/// (sorted, without the `@peer` suffix).
pub fn links(ns_name: &str, prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = ip(&["-n", ns_name, "-o", "link", "show"])
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_owned())
        .filter(|n| n.starts_with(prefix))
        .collect();
    v.sort();
    v
}

/// A runtime-style network namespace (`ip netns add`, as a container
/// runtime makes one), removed on drop unless already gone.
#[derive(Debug)]
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        // The pid follows the tag: a tag ending in a digit would hide it
        // from the sweep of dead processes' namespaces (dataplane::testing).
        assert!(
            !tag.ends_with(|c: char| c.is_ascii_digit()),
            "Netns tag {tag:?} ends in a digit"
        );
        let name = format!("bht-{tag}{}-{}", std::process::id(), next_n());
        ip(&["netns", "add", &name]);
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        Netns { name }
    }

    pub fn path(&self) -> PathBuf {
        netns::path_of(&self.name)
    }

    /// Deletes it now (as a runtime does after a container exits).
    pub fn delete(&self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if self.path().exists() {
            self.delete();
        }
    }
}

/// `ip -o link show IFNAME` in `ns_name` (empty when it does not exist).
fn link_line(ns_name: &str, ifname: &str) -> String {
    ip_lossy(&["-n", ns_name, "-o", "link", "show", ifname])
}

/// Waits (up to 3 s) until `ifname` in the pinned namespace `ns_name` has
/// operational state UP: a fresh veth drops packets until the kernel's link
/// watch has activated both ends, and probes must measure the policy.
pub fn wait_up(ns_name: &str, ifname: &str) {
    let until = Instant::now() + Duration::from_secs(3);
    while !link_line(ns_name, ifname).contains("state UP") {
        assert!(
            Instant::now() < until,
            "{ifname} in {ns_name} never came up"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The interface index of `ifname` in the pinned namespace `ns_name`.
pub fn ifindex(ns_name: &str, ifname: &str) -> u32 {
    let text = link_line(ns_name, ifname);
    text.split(':')
        .next()
        .and_then(|i| i.trim().parse().ok())
        .unwrap_or_else(|| panic!("no ifindex for {ifname} in {ns_name}: {text}"))
}

/// The word after `key` in `ifname`'s link line, parsed by `parse`.
fn link_field<T>(ns_name: &str, ifname: &str, key: &str, parse: impl Fn(&str) -> Option<T>) -> T {
    let text = link_line(ns_name, ifname);
    text.split_whitespace()
        .skip_while(|w| *w != key)
        .nth(1)
        .and_then(parse)
        .unwrap_or_else(|| panic!("no {key} for {ifname} in {ns_name}: {text}"))
}

/// The MAC address of `ifname` in the pinned namespace `ns_name`.
pub fn mac_of(ns_name: &str, ifname: &str) -> [u8; 6] {
    link_field(ns_name, ifname, "link/ether", |hex| {
        let mut mac = [0u8; 6];
        for (i, b) in hex.split(':').enumerate().take(6) {
            mac[i] = u8::from_str_radix(b, 16).ok()?;
        }
        Some(mac)
    })
}

/// The MTU of `ifname` in the pinned namespace `ns_name`.
pub fn mtu_of(ns_name: &str, ifname: &str) -> u32 {
    link_field(ns_name, ifname, "mtu", |m| m.parse().ok())
}

/// Waits up to `timeout` for `ifname` in `ns_name` to have a usable
/// (non-tentative, i.e. DAD done) fe80:: address; `None` when it never gets
/// one (IPv6 disabled there).
pub fn link_local(ns_name: &str, ifname: &str, timeout: Duration) -> Option<Ipv6Addr> {
    let until = Instant::now() + timeout;
    loop {
        let text = ip_lossy(&[
            "-n", ns_name, "-6", "-o", "addr", "show", "dev", ifname, "scope", "link",
        ]);
        for line in text.lines() {
            if line.contains("tentative") || line.contains("dadfailed") {
                continue;
            }
            let mut words = line.split_whitespace();
            if words.any(|w| w == "inet6") {
                if let Some(a) = words
                    .next()
                    .and_then(|cidr| cidr.split('/').next())
                    .and_then(|a| a.parse().ok())
                {
                    return Some(a);
                }
            }
        }
        if Instant::now() >= until {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `ip -6 neigh` line for `addr` on `ifname` in `ns_name`, if any.
pub fn neigh6(ns_name: &str, ifname: &str, addr: Ipv6Addr) -> Option<String> {
    let text = ip_lossy(&["-n", ns_name, "-6", "neigh", "show", "dev", ifname]);
    text.lines()
        .find(|l| l.split_whitespace().next() == Some(addr.to_string().as_str()))
        .map(str::to_owned)
}
