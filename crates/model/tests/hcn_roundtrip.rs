//! HCN v2 documents from the field (hcsshim, Azure CNI, Calico, HNS
//! read-backs) parse into the expected values, and `parse(emit(x)) == x`.

use std::path::Path;

use bulkhead_model::hcn::{emit_document, emit_document_json, parse_document, ImportDocument};
use bulkhead_model::{
    AclMode, AclProfile, Action, Direction, Driver, Endpoint, Id, IfAddr, IfName, Isolation,
    MacAddress, Name, Namespace, Network, PortMapping, Protocol, RuleType,
};

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/hcn")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Parses a fixture, emits it, parses the emitted form and checks both
/// parses agree; returns the first.
fn round_trip(name: &str) -> ImportDocument {
    let doc = parse_document(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let json = emit_document_json(&doc);
    let again =
        parse_document(json.as_bytes()).unwrap_or_else(|e| panic!("{name} emitted: {e}\n{json}"));
    assert!(
        doc.same_objects(&again),
        "{name}: round trip changed the document\n{json}"
    );
    assert!(
        again.ignored.is_empty(),
        "{name}: emitted document has ignored parts: {:?}",
        again.ignored
    );
    doc
}

#[test]
fn hcsshim_integration_acl() {
    let doc = round_trip("hcsshim_acl_endpoint.json");
    let ep = &doc.endpoints[0];
    assert_eq!(
        ep.acl_mode,
        AclMode::Replace,
        "HCN imports replace the default profile"
    );
    let r = &ep.acls[0];
    assert_eq!(r.id.as_str(), "acl-0");
    assert_eq!(
        (r.action, r.direction, r.rule_type, r.priority),
        (Action::Allow, Direction::In, RuleType::Switch, 200)
    );
    assert_eq!(r.protocol, Protocol::TCP);
    assert_eq!(r.local_addresses.to_string(), "192.168.100.0/24,10.0.0.21");
    assert_eq!(r.remote_ports.to_string(), "80,8080");
    let out = emit_document(&doc);
    let s = &out["Endpoints"][0]["Policies"][0]["Settings"];
    assert_eq!(s["Protocols"], "6");
    assert_eq!(s["LocalAddresses"], "192.168.100.0/24,10.0.0.21");
    assert_eq!(s["RuleType"], "Switch");
    assert_eq!(s["Priority"], 200);
    assert_eq!(out["Endpoints"][0]["SchemaVersion"]["Major"], 2);
}

#[test]
fn azure_cni_default_ladder() {
    let doc = round_trip("azure_cni_ladder.json");
    let ep = &doc.endpoints[0];
    assert_eq!(ep.acls.len(), 3);
    let block = &ep.acls[0];
    assert_eq!(
        (block.action, block.direction, block.priority),
        (Action::Block, Direction::Out, 200)
    );
    assert_eq!(block.remote_addresses.to_string(), "168.63.129.16");
    assert_eq!(block.remote_ports.to_string(), "80");
    for allow in &ep.acls[1..] {
        // No RuleType → Switch; no Protocols → any.
        assert_eq!(
            (allow.action, allow.rule_type, allow.priority),
            (Action::Allow, RuleType::Switch, 65500)
        );
        assert_eq!(allow.protocol, Protocol::Any);
    }
    assert_eq!(ep.ip_address, Some("10.240.0.15".parse().unwrap()));
    assert_eq!(ep.prefix_length, Some(16));
    assert_eq!(ep.mac_address.unwrap().to_hcn(), "00-15-5D-8A-11-0F");
    let ignored: Vec<&str> = doc.ignored.iter().map(|i| i.field.as_str()).collect();
    assert_eq!(ignored, ["Dns", "Policies[0]"]);
    let out = emit_document(&doc);
    let allow = &out["Endpoints"][0]["Policies"][1]["Settings"];
    assert_eq!(allow["Protocols"], "256");
    assert_eq!(allow["RuleType"], "Switch");
    assert_eq!(out["Endpoints"][0]["MacAddress"], "00-15-5D-8A-11-0F");
}

#[test]
fn calico_felix_ladder() {
    let doc = round_trip("calico_felix_ladder.json");
    let acls = &doc.endpoints[0].acls;
    let ids: Vec<&str> = acls.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "host-allow-in",
            "host-allow-out",
            "allow-host-to-endpoint",
            "pol-ingress-web-0",
            "pol-egress-dns",
            "default-deny-in",
            "default-deny-out"
        ]
    );
    assert_eq!(
        (acls[0].rule_type, acls[0].priority),
        (RuleType::Host, 0),
        "absent Priority is hcsshim's omitted 0"
    );
    assert_eq!(acls[3].local_ports.to_string(), "80,443,8000-8080");
    assert_eq!(acls[6].protocol, Protocol::Any, "empty Protocols is any");
    let out = emit_document(&doc);
    assert_eq!(
        out["Endpoints"][0]["Policies"][6]["Settings"]["Protocols"],
        "256"
    );
    assert_eq!(
        out["Endpoints"][0]["Policies"][0]["Settings"]["RuleType"],
        "Host"
    );
}

#[test]
fn l2bridge_network_with_adapter() {
    let doc = round_trip("l2bridge_network.json");
    let n = &doc.networks[0];
    assert_eq!(n.driver, Driver::L2Bridge);
    assert_eq!(n.uplink.as_ref().map(IfName::as_str), Some("eth0"));
    assert_eq!(n.subnets[0].to_string(), "10.244.1.0/24");
    assert_eq!(n.gateway, Some("10.244.1.1".parse().unwrap()));
    let ignored: Vec<&str> = doc.ignored.iter().map(|i| i.field.as_str()).collect();
    assert_eq!(ignored, ["Policies[1]", "MacPool", "Dns", "Flags"]);
    let out = emit_document(&doc);
    let net = &out["Networks"][0];
    assert_eq!(net["Type"], "L2Bridge");
    assert_eq!(net["Policies"][0]["Type"], "NetAdapterName");
    assert_eq!(net["Policies"][0]["Settings"]["NetworkAdapterName"], "eth0");
    assert_eq!(
        net["Ipams"][0]["Subnets"][0]["Routes"][0]["DestinationPrefix"],
        "0.0.0.0/0"
    );
}

#[test]
fn overlay_network_with_vsid() {
    let doc = round_trip("overlay_network.json");
    let n = &doc.networks[0];
    assert_eq!((n.driver, n.vni), (Driver::Overlay, Some(4096)));
    assert_eq!(n.uplink.as_ref().map(IfName::as_str), Some("ens3"));
    // VxlanPort 4789 is bulkhead's own; HostRoute and RemoteSubnetRoute are dropped.
    assert_eq!(doc.ignored.len(), 2, "{:?}", doc.ignored);
    let out = emit_document(&doc);
    let subnet = &out["Networks"][0]["Ipams"][0]["Subnets"][0];
    assert_eq!(subnet["Policies"][0]["Type"], "VSID");
    assert_eq!(subnet["Policies"][0]["Settings"]["IsolationId"], 4096);
}

#[test]
fn nat_endpoint_port_mappings() {
    let doc = round_trip("nat_endpoint_portmapping.json");
    let maps: Vec<String> = doc.endpoints[0]
        .port_mappings
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        maps,
        ["8080:80/tcp", "192.168.1.10:8443:443/tcp", "5353:53/udp"]
    );
    assert!(doc.endpoints[0].acls.is_empty());
    let out = emit_document(&doc);
    let p = &out["Endpoints"][0]["Policies"];
    assert_eq!(p[1]["Settings"]["Protocol"], 6);
    assert_eq!(p[1]["Settings"]["VIP"], "192.168.1.10");
    assert_eq!(p[2]["Settings"]["Protocol"], 17);
}

#[test]
fn guest_namespace_is_vm() {
    let doc = round_trip("guest_namespace.json");
    let ns = &doc.namespaces[0];
    assert_eq!(ns.isolation, Isolation::Vm);
    assert_eq!(ns.compartment_id, Some(7));
    assert_eq!(ns.name.as_str(), "ns-b7e9d1f32a4c4e6a8b0d1f3a5c7e9b2d");
    assert_eq!(ns.containers.len(), 1);
    assert_eq!(
        ns.endpoints,
        [Id::parse("id", "0c6f3a52-91d4-4e0b-a3c1-2d5e7f9a1b3c").unwrap()]
    );
    let out = emit_document(&doc);
    assert_eq!(out["Namespaces"][0]["Type"], "Guest");
    assert_eq!(out["Namespaces"][0]["Resources"][1]["Type"], "Endpoint");
}

#[test]
fn list_document_links_endpoint_and_namespace() {
    let doc = round_trip("document.json");
    assert_eq!(
        (
            doc.networks.len(),
            doc.namespaces.len(),
            doc.endpoints.len()
        ),
        (1, 1, 1)
    );
    let (ns, ep) = (&doc.namespaces[0], &doc.endpoints[0]);
    assert_eq!(ep.namespace, Some(ns.id));
    assert_eq!(
        ns.endpoints,
        [ep.id],
        "the namespace lists the endpoint that names it"
    );
    assert_eq!(ep.network, doc.networks[0].id);
    let spec = ep.to_spec(&doc.networks[0].name, &ns.name);
    let req = spec.validate().unwrap();
    assert_eq!(
        (req.acl_mode, req.port_mappings.len()),
        (AclMode::Replace, 1)
    );
}

fn id(n: u128) -> Id {
    Id::from_u128(n)
}

#[test]
fn stored_objects_export_and_import_unchanged() {
    let net = Network {
        id: id(1),
        name: Name::parse("name", "legacy-nat").unwrap(),
        driver: Driver::Nat,
        subnets: vec!["10.88.0.0/24".parse_cidr(), "fd00:88::/64".parse_cidr()],
        gateway: Some("10.88.0.1".parse().unwrap()),
        uplink: None,
        vni: None,
        acl_profile: AclProfile::Legacy,
    };
    let ns = Namespace {
        id: id(2),
        compartment_id: 5,
        name: Name::parse("name", "pod1").unwrap(),
        isolation: Isolation::Process,
        netns_path: Some("/run/netns/bh-pod1".into()),
        containers: vec!["c1".into(), "c2".into()],
    };
    let rule = bulkhead_model::AclRuleSpec {
        id: Some("r1".into()),
        action: "block".into(),
        direction: "in".into(),
        protocol: Some("udp".into()),
        remote_addresses: Some("10.0.0.0/8,fd00::/8".into()),
        local_ports: Some("53,1000-2000".into()),
        rule_type: Some("host".into()),
        priority: Some("10".into()),
        ..Default::default()
    }
    .validate("x")
    .unwrap();
    let ep = Endpoint {
        id: id(3),
        name: Name::parse("name", "web").unwrap(),
        network: id(1),
        namespace: id(2),
        ifname: IfName::parse("ifname", "eth1").unwrap(),
        ip_address: IfAddr {
            addr: "10.88.0.7".parse().unwrap(),
            prefix: 24,
        },
        mac_address: MacAddress::parse("mac", "02:42:0a:58:00:07").unwrap(),
        switch_port: Endpoint::switch_port_name(&id(3)),
        port_mappings: vec![PortMapping::parse("publish", "[::1]:8443:443/tcp").unwrap()],
        acl_mode: AclMode::Layered,
        acls: vec![rule],
    };
    let doc = ImportDocument::export(&[net], &[ns], &[ep]);
    let json = emit_document_json(&doc);
    let back = parse_document(json.as_bytes()).unwrap();
    assert_eq!(back, doc, "{json}");
    let out = emit_document(&doc);
    assert_eq!(
        out["Networks"][0]["AdditionalParams"]["AclProfile"],
        "legacy"
    );
    assert_eq!(
        out["Endpoints"][0]["AdditionalParams"]["AclMode"],
        "layered"
    );
    assert_eq!(out["Endpoints"][0]["MacAddress"], "02-42-0A-58-00-07");
    assert_eq!(
        out["Endpoints"][0]["Policies"][1]["Settings"]["Protocols"],
        "17"
    );
    assert_eq!(out["Namespaces"][0]["NamespaceId"], 5);
}

trait ParseCidr {
    fn parse_cidr(&self) -> bulkhead_model::Cidr;
}

impl ParseCidr for str {
    fn parse_cidr(&self) -> bulkhead_model::Cidr {
        bulkhead_model::Cidr::parse("subnet", self).unwrap()
    }
}

#[test]
fn single_objects_are_detected_by_their_keys() {
    let ns = br#"{"Type":"GuestDefault","ID":"e3f4a5b6-c7d8-4e9f-a0b1-c2d3e4f5a6b7"}"#;
    assert_eq!(
        parse_document(ns).unwrap().namespaces[0].isolation,
        Isolation::Vm
    );
    let net =
        br#"{"Name":"n","Type":"nat","Ipams":[{"Subnets":[{"IpAddressPrefix":"10.9.0.0/24"}]}]}"#;
    let doc = parse_document(net).unwrap();
    assert_eq!(
        doc.networks[0].gateway,
        Some("10.9.0.1".parse().unwrap()),
        "no default route: first host"
    );
    let again = parse_document(net).unwrap();
    assert_eq!(
        doc.networks[0].id, again.networks[0].id,
        "an id derived from the name is stable"
    );
    let ep = br#"{"Name":"e","HostComputeNetwork":"{A1B2C3D4-0000-4000-8000-000000000004}"}"#;
    assert_eq!(
        parse_document(ep).unwrap().endpoints[0].network,
        id(0xa1b2c3d4_0000_4000_8000_000000000004)
    );
}
