//! One host's networks and endpoints, for the tests of the tables built
//! from them (`nat.rs`, `antispoof.rs`): every driver, both families,
//! published ports of every form; and the golden-file check those tests
//! share (`BULKHEAD_BLESS=1` rewrites the files).
#![allow(dead_code)]

use std::net::IpAddr;
use std::path::PathBuf;

use bulkhead_model::{
    AclMode, Endpoint, Id, IfAddr, IfName, MacAddress, Name, Network, NetworkSpec, PortMapping,
};
use bulkhead_policy::ir::Table;
use bulkhead_policy::render::render;

pub fn network(name: &str, driver: &str, subnet: &str) -> Network {
    let uplink = (driver != "nat").then(|| format!("ul{name}"));
    NetworkSpec {
        name: name.into(),
        driver: driver.into(),
        subnets: vec![subnet.into()],
        vni: (driver == "overlay").then(|| "7".into()),
        uplink,
        ..Default::default()
    }
    .validate(id(0x10, name.len() as u8))
    .expect("network")
}

/// A fixed id per (kind, number), so the golden files are stable; the
/// leading hex digits (switch port and chain names) differ.
fn id(kind: u8, n: u8) -> Id {
    Id::from_u128(u128::from(kind) << 120 | u128::from(n) << 112 | u128::from(n))
}

/// Endpoint `last` of `n` (host part `last`, MAC `02:00:00:00:<net>:<last>`,
/// where `<net>` is the network name's length).
pub fn endpoint(n: &Network, last: u8, publish: &[&str]) -> Endpoint {
    let id = id(0x80 + n.name.as_str().len() as u8, last);
    let addr: IpAddr = match n.subnets[0].network() {
        IpAddr::V4(a) => std::net::Ipv4Addr::from(u32::from(a) + u32::from(last)).into(),
        IpAddr::V6(a) => std::net::Ipv6Addr::from(u128::from(a) + u128::from(last)).into(),
    };
    Endpoint {
        id,
        name: Name::parse("name", &format!("e{last}")).expect("name"),
        network: n.id,
        namespace: id,
        ifname: IfName::parse("ifname", "eth0").expect("ifname"),
        ip_address: IfAddr {
            addr,
            prefix: n.subnets[0].prefix(),
        },
        mac_address: MacAddress([2, 0, 0, 0, n.name.as_str().len() as u8, last]),
        switch_port: Endpoint::switch_port_name(&id),
        port_mappings: publish
            .iter()
            .map(|p| PortMapping::parse("publish", p).expect("mapping"))
            .collect(),
        acl_mode: AclMode::Layered,
        acls: vec![],
    }
}

/// The host: networks of every driver and family, endpoints on each.
pub struct World {
    pub networks: Vec<Network>,
    pub endpoints: Vec<(Endpoint, usize)>,
}

impl World {
    pub fn new() -> Self {
        let networks = vec![
            network("n", "nat", "10.1.0.0/24"),
            network("n6", "nat", "fd01::/64"),
            network("tra", "transparent", "10.2.0.0/24"),
            network("over", "overlay", "10.3.0.0/24"),
            network("over6", "overlay", "fd03::/64"),
            network("bridge", "l2bridge", "10.4.0.0/24"),
            network("l2tunnel", "l2tunnel", "10.5.0.0/24"),
        ];
        let on = |i: usize, last, publish: &[&str]| (endpoint(&networks[i], last, publish), i);
        let endpoints = vec![
            on(0, 2, &["8080:80", "127.0.0.1:8081:81/udp", "[::1]:8082:82"]),
            on(0, 3, &["9090:90/udp"]),
            on(1, 2, &["8083:83"]),
            on(2, 2, &[]),
            on(3, 2, &[]),
            on(4, 2, &[]),
            on(5, 2, &[]),
            on(6, 2, &[]),
        ];
        Self {
            networks,
            endpoints,
        }
    }

    pub fn networks(&self) -> Vec<&Network> {
        self.networks.iter().collect()
    }

    pub fn pairs(&self) -> Vec<(&Endpoint, &Network)> {
        self.endpoints
            .iter()
            .map(|(e, n)| (e, &self.networks[*n]))
            .collect()
    }

    /// The endpoint on network `name`, with its network.
    pub fn on(&self, name: &str) -> (&Endpoint, &Network) {
        self.pairs()
            .into_iter()
            .find(|(_, n)| n.name.as_str() == name)
            .expect("endpoint on that network")
    }
}

/// Checks (or with `BULKHEAD_BLESS=1` writes) `tests/golden/<name>.nft`.
pub fn golden(name: &str, table: &Table) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/{name}.nft"));
    let got = render(table);
    if std::env::var("BULKHEAD_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &got).expect("bless");
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        want == got,
        "{} differs (BULKHEAD_BLESS=1 to rewrite):\n{got}",
        path.display()
    );
}

/// `t` with its rules commented `comment` deleted (the weakened setup an
/// attack first succeeds against); panics if there is none.
pub fn without(t: &Table, comment: &str) -> Table {
    let mut weak = t.clone();
    let mut removed = 0;
    for chain in weak.chains.values_mut() {
        let before = chain.rules.len();
        chain
            .rules
            .retain(|r| !r.comment.as_deref().is_some_and(|c| c.starts_with(comment)));
        removed += before - chain.rules.len();
    }
    assert!(removed > 0, "no rule {comment:?}");
    weak
}
