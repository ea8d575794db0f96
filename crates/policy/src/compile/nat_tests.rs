//! Structural tests of `inet bulkhead_net` ([`super::nat::build`]): family
//! guards, local-only dispatch, and which endpoints the host-reach sets
//! hold. The behaviour itself is proven on the kernel by
//! `tests/attacks/ports`.

use crate::ir::{ifname_bytes, Action, Field, Hook, Key, Match, NfProto, Rule, Table};
use bulkhead_model::{
    AclMode, Endpoint, Id, IfAddr, IfName, MacAddress, Name, Network, NetworkSpec, PortMapping,
};

use super::nat::build;

fn network(name: &str, driver: &str, subnet: &str) -> Network {
    NetworkSpec {
        name: name.into(),
        driver: driver.into(),
        subnets: vec![subnet.into()],
        uplink: (driver != "nat").then(|| "eth9".into()),
        ..Default::default()
    }
    .validate(Id::random())
    .expect("network")
}

fn endpoint(n: &Network, last: u8, publish: &[&str]) -> Endpoint {
    let id = Id::random();
    let addr = match n.subnets[0].network() {
        std::net::IpAddr::V4(a) => std::net::Ipv4Addr::from(u32::from(a) + u32::from(last)).into(),
        std::net::IpAddr::V6(a) => {
            std::net::Ipv6Addr::from(u128::from(a) + u128::from(last)).into()
        }
    };
    Endpoint {
        id,
        name: Name::parse("name", &format!("e{last}")).expect("name"),
        network: n.id,
        namespace: Id::random(),
        ifname: IfName::parse("ifname", "eth0").expect("ifname"),
        ip_address: IfAddr {
            addr,
            prefix: n.subnets[0].prefix(),
        },
        mac_address: MacAddress([2, 0, 0, 0, 0, last]),
        switch_port: Endpoint::switch_port_name(&id),
        port_mappings: publish
            .iter()
            .map(|p| PortMapping::parse("publish", p).expect("mapping"))
            .collect(),
        acl_mode: AclMode::Layered,
        acls: vec![],
    }
}

/// The family a rule loads fields of, from its matches, lookups and vmap.
fn families(r: &Rule) -> (bool, bool) {
    let mut fields: Vec<Field> = Vec::new();
    for m in r.matches.iter() {
        match m {
            Match::Lookup { key, .. } => fields.extend(key),
            Match::Prefix { field, .. } | Match::Ranges { field, .. } => fields.push(*field),
            _ => {}
        }
    }
    if let Action::Vmap { key, .. } = &r.action {
        fields.extend(key);
    }
    let v4 = fields
        .iter()
        .any(|f| matches!(f, Field::Saddr4 | Field::Daddr4));
    let v6 = fields
        .iter()
        .any(|f| matches!(f, Field::Saddr6 | Field::Daddr6));
    (v4, v6)
}

fn table() -> (Table, [Endpoint; 3]) {
    let (n4, n6, l2) = (
        network("a", "nat", "10.1.0.0/24"),
        network("b", "nat", "fd01::/64"),
        network("c", "l2bridge", "192.168.5.0/24"),
    );
    let eps = [
        endpoint(&n4, 2, &["8080:80", "127.0.0.1:8081:81"]),
        endpoint(&n6, 2, &[]),
        endpoint(&l2, 9, &[]),
    ];
    let t = build(
        &[&n4, &n6, &l2],
        &[(&eps[0], &n4), (&eps[1], &n6), (&eps[2], &l2)],
    );
    (t, eps)
}

#[test]
fn every_address_match_is_guarded_by_its_family() {
    let (t, _) = table();
    let mut checked = 0;
    for c in t.chains.values() {
        for r in &c.rules {
            let (v4, v6) = families(r);
            assert!(!(v4 && v6), "{}: both families in one rule", c.name);
            let guard = |p| r.matches.first() == Some(&Match::NfProto(p));
            if v4 {
                assert!(guard(NfProto::Ipv4), "{}: {r:?}", c.name);
            }
            if v6 {
                assert!(guard(NfProto::Ipv6), "{}: {r:?}", c.name);
            }
            checked += usize::from(v4 || v6);
        }
    }
    assert!(checked >= 8, "{checked} address rules");
}

#[test]
fn port_dispatch_only_ever_matches_local_destinations() {
    let (t, _) = table();
    for hook in [Hook::Prerouting, Hook::Output] {
        let c = t
            .chains
            .values()
            .find(|c| c.base.as_ref().map(|b| b.hook) == Some(hook))
            .expect("dispatch chain");
        let vmaps: Vec<_> = c
            .rules
            .iter()
            .filter(|r| matches!(r.action, Action::Vmap { .. }))
            .collect();
        assert_eq!(vmaps.len(), 2);
        for r in vmaps {
            assert!(r.matches.contains(&Match::FibDaddrLocal), "{r:?}");
        }
    }
}

#[test]
fn host_reach_sets_hold_nat_ports_and_their_gateways() {
    let (t, eps) = table();
    let set = |name: &str| t.sets.get(name).unwrap_or_else(|| panic!("set {name}"));
    let port = |e: &Endpoint| {
        let b = ifname_bytes(e.switch_port.as_str());
        (b.clone(), b)
    };
    let ports = set("nat_ports");
    assert!(ports.elements.contains_key(&vec![port(&eps[0])].into()));
    assert!(ports.elements.contains_key(&vec![port(&eps[1])].into()));
    assert!(
        !ports.elements.contains_key(&vec![port(&eps[2])].into()),
        "l2bridge: the host is one more machine"
    );
    let gw4 = (vec![10, 1, 0, 1], vec![10, 1, 0, 1]);
    assert_eq!(
        set("host_gateway4").elements.keys().collect::<Vec<_>>(),
        [&vec![port(&eps[0]), gw4].into()]
    );
    let mut fd = vec![0xfd, 1];
    fd.extend([0; 13]);
    fd.push(1);
    assert_eq!(
        set("host_gateway6").elements.keys().collect::<Vec<_>>(),
        [&Key::from(vec![port(&eps[1]), (fd.clone(), fd)])]
    );
    assert_eq!(set("subnets6").elements.len(), 1);
    assert_eq!(set("same_network6").elements.len(), 1);
}
