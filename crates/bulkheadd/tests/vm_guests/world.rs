//! One driver's world for the vm row: a daemon in its throwaway host
//! namespace, the fabric the driver needs (a LAN behind the uplink for
//! transparent, l2bridge and l2tunnel, hairpinning for l2tunnel; an uplink
//! veth for overlay), a network, a process endpoint and two vm endpoints
//! with a QEMU guest each on its TAP, addressed by DHCP from bulkhead.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;

use bulkhead_testkit::cmd::ip;
use bulkhead_testkit::daemon::Daemon;
use bulkhead_testkit::guest::Guest;
use bulkhead_testkit::lan::{Lan, LAN_SUBNET};
use serde_json::Value;

/// The drivers of the vm row.
pub const DRIVERS: [&str; 5] = ["nat", "transparent", "l2bridge", "l2tunnel", "overlay"];

/// The uplink of the LAN-backed drivers.
const UPLINK: &str = "bhtl0";

/// A process endpoint.
pub struct Proc {
    pub ip: Ipv4Addr,
    pub ns: PathBuf,
}

impl Proc {
    pub fn at(&self, port: u16) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(self.ip, port))
    }
}

/// A vm endpoint and its guest.
pub struct Vm {
    pub ip: Ipv4Addr,
    pub mac: String,
    pub guest: Guest,
}

impl Vm {
    pub fn at(&self, port: u16) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(self.ip, port))
    }
}

/// One driver's world; field order is drop order (guests before the
/// daemon and its namespaces).
pub struct World {
    pub driver: &'static str,
    pub vms: Vec<Vm>,
    pub p: Proc,
    pub prefix: u8,
    pub gateway: Option<String>,
    pub _lan: Option<Lan>,
    pub d: Daemon,
}

fn ipv4(v: &Value, what: &str) -> Ipv4Addr {
    let s = v.as_str().unwrap_or_else(|| panic!("{what}: {v}"));
    s.split('/')
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("{what}: {s}"))
}

/// Builds `driver`'s world (`n` keeps subnets apart) and boots its guests.
pub fn build(driver: &'static str, n: u8) -> Option<World> {
    let d = Daemon::start()?;
    let mut lan = None;
    let (subnet, addrs): (String, [Option<String>; 3]) = match driver {
        "nat" => {
            let subnet = format!("10.21{n}.0.0/24");
            d.ok(&[
                "network", "create", "vn", "--driver", "nat", "--subnet", &subnet,
            ]);
            (subnet, [None, None, None])
        }
        "overlay" => {
            // The underlay: one end of a veth pair in the host namespace.
            let h = d.host.as_str();
            ip(&[
                "-n", h, "link", "add", "bhtul0", "type", "veth", "peer", "name", "bhtul1",
            ]);
            ip(&["-n", h, "addr", "add", "192.0.2.10/24", "dev", "bhtul0"]);
            ip(&["-n", h, "link", "set", "bhtul0", "up"]);
            ip(&["-n", h, "link", "set", "bhtul1", "up"]);
            let subnet = format!("10.21{n}.0.0/24");
            d.ok(&[
                "network",
                "create",
                "vn",
                "--driver",
                "overlay",
                "--subnet",
                &subnet,
                "--uplink",
                "bhtul0",
                "--vni",
                &format!("430{n}"),
            ]);
            (subnet, [None, None, None])
        }
        _ => {
            lan = Some(Lan::attach(
                d.host_ns(),
                driver,
                UPLINK,
                driver == "l2tunnel",
            ));
            d.ok(&[
                "network",
                "create",
                "vn",
                "--driver",
                driver,
                "--subnet",
                LAN_SUBNET,
                "--gateway",
                "198.51.100.254",
                "--uplink",
                UPLINK,
            ]);
            let a = |i: u8| Some(format!("198.51.100.{}", 10 + i));
            (LAN_SUBNET.to_owned(), [a(0), a(1), a(2)])
        }
    };
    let prefix: u8 = subnet
        .split('/')
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("prefix");
    let gateway = d.json(&["network", "inspect", "vn"])["gateway"]
        .as_str()
        .map(|g| g.split('/').next().unwrap_or(g).to_owned());
    let create = |name: &str, isolation: Option<&str>, addr: &Option<String>| -> Value {
        let mut ns = vec!["namespace", "create", name];
        if let Some(i) = isolation {
            ns.extend(["--isolation", i]);
        }
        d.ok(&ns);
        let mut ep = vec![
            "endpoint",
            "create",
            name,
            "--network",
            "vn",
            "--namespace",
            name,
        ];
        if let Some(a) = addr {
            ep.extend(["--ip", a.as_str()]);
        }
        d.json(&ep)
    };
    let pj = create("p", None, &addrs[0]);
    let p = Proc {
        ip: ipv4(&pj["ip_address"], "p ip"),
        ns: PathBuf::from(format!("/run/netns/{}p", d.prefix)),
    };
    let mut vms = Vec::new();
    for (i, addr) in addrs[1..].iter().enumerate() {
        let name = format!("g{i}");
        let j = create(&name, Some("vm"), addr);
        let mac = j["mac_address"].as_str().expect("mac").to_owned();
        let tap = j["switch_port"].as_str().expect("port").to_owned();
        let guest = Guest::spawn(&format!("{driver}/{name}"), &d.host_path(), &tap, &mac);
        vms.push(Vm {
            ip: ipv4(&j["ip_address"], "vm ip"),
            mac,
            guest,
        });
    }
    let mut w = World {
        driver,
        vms,
        p,
        prefix,
        gateway,
        _lan: lan,
        d,
    };
    for vm in &mut w.vms {
        vm.guest.wait_ready();
    }
    w.address_guests();
    Some(w)
}

impl World {
    /// Each guest asks for its address by DHCP (busybox udhcpc) and must
    /// get the endpoint's, with the network's gateway as default route.
    fn address_guests(&mut self) {
        let dr = self.driver;
        for vm in &mut self.vms {
            let lease = vm.guest.dhcp();
            assert_eq!(
                lease,
                Some(vm.ip.to_string()),
                "{dr}: the guest's lease from bulkhead is its endpoint's address: {}",
                vm.guest.console()
            );
            let addr = vm.guest.ok("ip -4 addr show dev eth0");
            assert!(
                addr.contains(&format!("{}/{}", vm.ip, self.prefix)),
                "{dr}: address and prefix configured: {addr}"
            );
            if let Some(gw) = &self.gateway {
                let routes = vm.guest.ok("ip route");
                assert!(
                    routes.contains(&format!("default via {gw}")),
                    "{dr}: default route via the gateway: {routes}"
                );
            }
        }
    }

    /// Whether custom ACLs are programmable on a vm endpoint (spec §3).
    pub fn switched(&self) -> bool {
        matches!(self.driver, "l2bridge" | "l2tunnel" | "overlay")
    }

    /// Whether the driver's ports are bridge ports (anti-spoofing in
    /// `bridge bulkhead_l2`, else in `inet bulkhead`).
    pub fn bridged(&self) -> bool {
        matches!(self.driver, "transparent" | "overlay")
    }
}
