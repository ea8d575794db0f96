//! What HNS (or bulkhead) refuses in an HCN endpoint is refused with an
//! error naming the HCN field path and quoting the value.

mod hcn_support;

use bulkhead_model::hcn::parse_document;
use hcn_support::{acl_endpoint, endpoint_with, rejects, rule};
use serde_json::{json, Value};

#[test]
fn acl_settings() {
    let f = |k: &str| format!("Policies[2].Settings.{k}");
    rejects(
        &acl_endpoint(rule(json!({"LocalAddresses": "Any"}))),
        &f("LocalAddresses"),
        "Any",
        "\"Any\" is not accepted",
    );
    rejects(
        &acl_endpoint(rule(json!({"RemoteAddresses": "10.0.0.0/33"}))),
        &f("RemoteAddresses"),
        "10.0.0.0/33",
        "CIDR",
    );
    rejects(
        &acl_endpoint(rule(json!({"Priority": 65536}))),
        &f("Priority"),
        "65536",
        "0-65535",
    );
    rejects(
        &acl_endpoint(rule(json!({"Priority": -1}))),
        &f("Priority"),
        "-1",
        "0-65535",
    );
    rejects(
        &acl_endpoint(rule(json!({"Priority": 1.5}))),
        &f("Priority"),
        "1.5",
        "0-65535",
    );
    rejects(
        &acl_endpoint(rule(json!({"Protocols": "257"}))),
        &f("Protocols"),
        "257",
        "0-255",
    );
    rejects(
        &acl_endpoint(rule(json!({"Protocols": "6,17"}))),
        &f("Protocols"),
        "6,17",
        "any",
    );
    rejects(
        &acl_endpoint(rule(json!({"Protocols": "1", "LocalPorts": "80"}))),
        &f("LocalPorts"),
        "80",
        "ports need protocol",
    );
    rejects(
        &acl_endpoint(rule(json!({"Protocols": "58", "RemotePorts": "1-2"}))),
        &f("RemotePorts"),
        "1-2",
        "ports need protocol",
    );
    rejects(
        &acl_endpoint(rule(json!({"LocalPorts": "80-70"}))),
        &f("LocalPorts"),
        "80-70",
        "ranges",
    );
    rejects(
        &acl_endpoint(rule(json!({"Action": "Pass"}))),
        &f("Action"),
        "Pass",
        "TierAcl",
    );
    rejects(
        &acl_endpoint(rule(json!({"Direction": "Both"}))),
        &f("Direction"),
        "Both",
        "in or out",
    );
    rejects(
        &acl_endpoint(rule(json!({"RuleType": "Vfp"}))),
        &f("RuleType"),
        "Vfp",
        "host or switch",
    );
    rejects(
        &acl_endpoint(rule(json!({"Id": "has space"}))),
        &f("Id"),
        "has space",
        "1-128 characters",
    );
    // v1 single-value keys are honoured, so a v1 rule is not silently widened.
    rejects(
        &acl_endpoint(rule(
            json!({"Protocols": null, "Protocol": 1, "LocalPort": 80}),
        )),
        &f("LocalPorts"),
        "80",
        "ports need",
    );
}

#[test]
fn acl_settings_of_the_wrong_type() {
    let doc = acl_endpoint(json!({ "Action": "Allow", "Direction": "In", "Priority": "100" }));
    let e = parse_document(doc.to_string().as_bytes()).unwrap_err();
    assert_eq!(e.field, "Policies[2].Settings");
    assert!(
        e.allowed
            .starts_with("ACL settings (invalid type: string \"100\""),
        "{e}"
    );
}

#[test]
fn duplicate_rule_ids_and_mappings() {
    let mut doc = acl_endpoint(rule(json!({"Id": "r"})));
    doc["Policies"][1] = json!({ "Type": "ACL", "Settings": rule(json!({"Id": "r"})) });
    rejects(&doc, "Policies[2].Settings.Id", "r", "once per endpoint");
    let mut doc = acl_endpoint(rule(json!({})));
    doc["Policies"][1] = json!({ "Type": "PortMapping", "Settings": { "InternalPort": 81, "ExternalPort": 8080, "Protocol": "tcp" } });
    rejects(
        &doc,
        "Policies[1].Settings.ExternalPort",
        "8080",
        "once per protocol and VIP",
    );
}

#[test]
fn port_mappings() {
    let pm = |s: Value| {
        let mut doc = acl_endpoint(rule(json!({})));
        doc["Policies"][0]["Settings"] = s;
        doc
    };
    let f = |k: &str| format!("Policies[0].Settings.{k}");
    rejects(
        &pm(json!({"InternalPort": 80, "ExternalPort": 8080, "Protocol": 1})),
        &f("Protocol"),
        "1",
        "6 (TCP) or 17 (UDP)",
    );
    rejects(
        &pm(json!({"InternalPort": 80, "ExternalPort": 8080, "Protocol": "ICMP"})),
        &f("Protocol"),
        "ICMP",
        "17 (UDP)",
    );
    rejects(
        &pm(json!({"InternalPort": 80, "ExternalPort": 8080})),
        &f("Protocol"),
        "",
        "6 (TCP)",
    );
    rejects(
        &pm(json!({"InternalPort": 0, "ExternalPort": 8080, "Protocol": 6})),
        &f("InternalPort"),
        "0",
        "1-65535",
    );
    rejects(
        &pm(json!({"InternalPort": 80, "ExternalPort": 70000, "Protocol": 6})),
        &f("ExternalPort"),
        "70000",
        "1-65535",
    );
    rejects(
        &pm(json!({"InternalPort": 80, "ExternalPort": 81, "Protocol": 6, "VIP": "host"})),
        &f("VIP"),
        "host",
        "IPv4 or IPv6",
    );
    rejects(
        &pm(json!({"InternalPort": 80, "ExternalPort": 81, "Protocol": 6, "Flags": 4})),
        &f("Flags"),
        "4",
        "NatFlags",
    );
}

#[test]
fn endpoint_fields_and_policies() {
    rejects(
        &endpoint_with("MacAddress", json!("01-00-5E-00-00-01")),
        "MacAddress",
        "01-00-5E-00-00-01",
        "unicast",
    );
    rejects(
        &endpoint_with("Name", json!("my endpoint")),
        "Name",
        "my endpoint",
        "1-63 characters",
    );
    rejects(
        &endpoint_with("HostComputeNetwork", json!("")),
        "HostComputeNetwork",
        "",
        "GUID",
    );
    rejects(
        &endpoint_with("HostComputeNamespace", json!("pod1")),
        "HostComputeNamespace",
        "pod1",
        "UUID",
    );
    rejects(
        &endpoint_with("Flags", json!(1)),
        "Flags",
        "1",
        "RemoteEndpoint",
    );
    rejects(
        &endpoint_with("Flags", json!(2)),
        "Flags",
        "2",
        "DisableInterComputeCommunication",
    );
    rejects(
        &endpoint_with("IpConfigurations", json!([{"IpAddress": "10.0.0.300"}])),
        "IpConfigurations[0].IpAddress",
        "10.0.0.300",
        "IPv4",
    );
    rejects(
        &endpoint_with(
            "IpConfigurations",
            json!([{"IpAddress": "10.0.0.3", "PrefixLength": 33}]),
        ),
        "IpConfigurations[0].PrefixLength",
        "33",
        "0-32",
    );
    rejects(
        &endpoint_with("AdditionalParams", json!({"AclMode": "strict"})),
        "AdditionalParams.AclMode",
        "strict",
        "layered or replace",
    );
    for (kind, hint) in [
        ("TierAcl", "flatten"),
        ("L4WFPPROXY", "proxy"),
        ("VLAN", "tag"),
        ("Encryption", "IPsec"),
        ("NAT", "v1"),
    ] {
        rejects(
            &endpoint_with("Policies", json!([{ "Type": kind, "Settings": {} }])),
            "Policies[0].Type",
            kind,
            hint,
        );
    }
}
