//! What HNS (or bulkhead) refuses in an HCN network, namespace or list
//! document is refused with an error naming the HCN field path and quoting
//! the value.

mod hcn_support;

use bulkhead_model::hcn::parse_document;
use hcn_support::{acl_endpoint, endpoint_with, network, rejects, rule};
use serde_json::{json, Value};

#[test]
fn network_types_and_policies() {
    let subnet = json!({ "IpAddressPrefix": "10.1.0.0/24" });
    let uplink =
        json!([{ "Type": "NetAdapterName", "Settings": { "NetworkAdapterName": "eth0" } }]);
    for kind in ["ICS", "Private", "Internal", "Mirrored"] {
        rejects(
            &network(kind, json!([]), subnet.clone()),
            "Type",
            kind,
            &format!("no {kind} networks"),
        );
    }
    rejects(
        &network("Bridge", json!([]), subnet.clone()),
        "Type",
        "Bridge",
        "NAT, Transparent, L2Bridge, L2Tunnel or Overlay",
    );
    rejects(
        &network("L2Bridge", json!([]), subnet.clone()),
        "Policies",
        "",
        "NetAdapterName",
    );
    rejects(
        &network(
            "Transparent",
            json!([{ "Type": "NetAdapterName", "Settings": { "NetworkAdapterName": "Ethernet 2" } }]),
            subnet.clone(),
        ),
        "Policies[0].Settings.NetworkAdapterName",
        "Ethernet 2",
        "interface name",
    );
    rejects(
        &network("Overlay", uplink.clone(), subnet.clone()),
        "Ipams",
        "",
        "VSID",
    );
    let vsid = |id: Value| json!({ "IpAddressPrefix": "10.1.0.0/24", "Policies": [{ "Type": "VSID", "Settings": { "IsolationId": id } }] });
    rejects(
        &network("Overlay", uplink.clone(), vsid(json!(0))),
        "Ipams[0].Subnets[0].Policies[0].Settings.IsolationId",
        "0",
        "VXLAN id",
    );
    rejects(
        &network("Overlay", uplink.clone(), vsid(json!(16777216))),
        "Ipams[0].Subnets[0].Policies[0].Settings.IsolationId",
        "16777216",
        "VXLAN id",
    );
    rejects(
        &network("NAT", json!([]), vsid(json!(5000))),
        "Ipams[0].Subnets[0].Policies[0].Settings.IsolationId",
        "5000",
        "only overlay",
    );
    let vlan = json!({ "IpAddressPrefix": "10.1.0.0/24", "Policies": [{ "Type": "VLAN", "Settings": { "IsolationId": 7 } }] });
    rejects(
        &network("L2Bridge", uplink.clone(), vlan),
        "Ipams[0].Subnets[0].Policies[0]",
        "VLAN",
        "tag",
    );
    rejects(
        &network(
            "NAT",
            json!([{ "Type": "NetworkACL", "Settings": {} }]),
            subnet.clone(),
        ),
        "Policies[0]",
        "NetworkACL",
        "each endpoint",
    );
    rejects(
        &network(
            "NAT",
            json!([]),
            json!({ "IpAddressPrefix": "10.1.0.0/33" }),
        ),
        "Ipams[0].Subnets[0].IpAddressPrefix",
        "10.1.0.0/33",
        "CIDR",
    );
    rejects(
        &network(
            "NAT",
            json!([]),
            json!({ "IpAddressPrefix": "10.1.0.0/31" }),
        ),
        "Ipams[0].Subnets[0].IpAddressPrefix",
        "10.1.0.0/31",
        "prefix length",
    );
    let gw = json!({ "IpAddressPrefix": "10.1.0.0/24", "Routes": [{ "NextHop": "10.2.0.1", "DestinationPrefix": "0.0.0.0/0" }] });
    rejects(
        &network("NAT", json!([]), gw),
        "Ipams[0].Subnets[0].Routes[0].NextHop",
        "10.2.0.1",
        "inside subnet",
    );
    let mut dhcp = network("Transparent", uplink, subnet.clone());
    dhcp["Ipams"][0]["Type"] = json!("Dhcp");
    rejects(&dhcp, "Ipams[0].Type", "Dhcp", "Static");
    let mut no_ipam = network("NAT", json!([]), subnet.clone());
    no_ipam["Ipams"] = json!([]);
    rejects(&no_ipam, "Ipams", "", "at least one subnet");
    let mut legacy = network("NAT", json!([]), subnet);
    legacy["SchemaVersion"] = json!({ "Major": 1, "Minor": 0 });
    rejects(&legacy, "SchemaVersion.Major", "1", "v1");
}

#[test]
fn namespaces() {
    let ns = |extra: Value| {
        let mut n = json!({ "ID": "e3f4a5b6-c7d8-4e9f-a0b1-c2d3e4f5a6b7", "Resources": [] });
        for (k, v) in extra.as_object().unwrap() {
            n[k] = v.clone();
        }
        n
    };
    rejects(
        &ns(json!({"Type": "Sandbox"})),
        "Type",
        "Sandbox",
        "Host, HostDefault, Guest or GuestDefault",
    );
    rejects(
        &ns(json!({"NamespaceId": 1})),
        "NamespaceId",
        "1",
        "1 is the host",
    );
    rejects(
        &ns(json!({"NamespaceId": -3})),
        "NamespaceId",
        "-3",
        "compartment id",
    );
    rejects(
        &ns(json!({"Resources": [{ "Type": "Disk", "Data": { "ID": "x" } }]})),
        "Resources[0].Type",
        "Disk",
        "Container or Endpoint",
    );
    rejects(
        &ns(json!({"Resources": [{ "Type": "Endpoint", "Data": { "ID": "web" } }]})),
        "Resources[0].Data.ID",
        "web",
        "UUID",
    );
    rejects(
        &ns(json!({"Resources": [{ "Type": "Container", "Data": { "ID": "a b" } }]})),
        "Resources[0].Data.ID",
        "a b",
        "container id",
    );
    rejects(&json!({ "NamespaceId": 4 }), "ID", "", "GUID (or a Name)");
}

#[test]
fn documents() {
    for bad in ["", "{", "[1,2]", "null", "\"x\""] {
        let e = parse_document(bad.as_bytes()).unwrap_err();
        assert_eq!(e.field, "document", "{bad}: {e}");
    }
    rejects(
        &json!({ "Foo": 1 }),
        "document",
        "{\"Foo\":1}",
        "HostComputeNetwork",
    );
    rejects(&json!({ "Networks": {} }), "Networks", "{}", "JSON array");
    let e = parse_document(br#"{"Name":5,"Type":"NAT","Ipams":[]}"#).unwrap_err();
    assert_eq!(e.field, "HostComputeNetwork");
    assert!(e.allowed.contains("invalid type: integer `5`"), "{e}");
    let ep = acl_endpoint(rule(json!({"LocalAddresses": "Any"})));
    let doc = json!({ "Endpoints": [endpoint_with("Name", json!("ok")), ep] });
    rejects(
        &doc,
        "Endpoints[1].Policies[2].Settings.LocalAddresses",
        "Any",
        "\"Any\"",
    );
    let doc = json!({ "Endpoints": [endpoint_with("Name", json!("a")), endpoint_with("Name", json!("a"))] });
    rejects(
        &doc,
        "Endpoints[1].ID",
        &bulkhead_model::hcn::parse_document(
            endpoint_with("Name", json!("a")).to_string().as_bytes(),
        )
        .unwrap()
        .endpoints[0]
            .id
            .to_string(),
        "once per document",
    );
    let ns_id = "e3f4a5b6-c7d8-4e9f-a0b1-c2d3e4f5a6b7";
    let other = "a1b2c3d4-0000-4000-8000-0000000000ff";
    let mut ep = endpoint_with("ID", json!("0c6f3a52-91d4-4e0b-a3c1-2d5e7f9a1b3c"));
    ep["HostComputeNamespace"] = json!(other);
    let ns = json!({ "ID": ns_id, "Resources": [{ "Type": "Endpoint", "Data": { "ID": "0c6f3a52-91d4-4e0b-a3c1-2d5e7f9a1b3c" } }] });
    rejects(
        &json!({ "Namespaces": [ns], "Endpoints": [ep] }),
        "Endpoints[0].HostComputeNamespace",
        other,
        "Namespaces[0].Resources lists",
    );
}
