//! Builders and the rejection assertion shared by the `hcn_rejects*` tests.

#![allow(dead_code)]

use bulkhead_model::hcn::parse_document;
use serde_json::{json, Value};

pub fn acl_endpoint(settings: Value) -> Value {
    json!({
        "Name": "ep",
        "HostComputeNetwork": "a1b2c3d4-0000-4000-8000-000000000001",
        "Policies": [
            { "Type": "PortMapping", "Settings": { "InternalPort": 80, "ExternalPort": 8080, "Protocol": 6 } },
            { "Type": "QOS", "Settings": {} },
            { "Type": "ACL", "Settings": settings }
        ]
    })
}

pub fn endpoint_with(key: &str, value: Value) -> Value {
    let mut ep =
        json!({ "Name": "ep", "HostComputeNetwork": "a1b2c3d4-0000-4000-8000-000000000001" });
    ep[key] = value;
    ep
}

pub fn network(kind: &str, policies: Value, subnet: Value) -> Value {
    json!({ "Name": "n", "Type": kind, "Policies": policies, "Ipams": [{ "Type": "Static", "Subnets": [subnet] }] })
}

/// Asserts the document is refused with exactly this field, and the message
/// quotes `value` and mentions `hint`.
pub fn rejects(doc: &Value, field: &str, value: &str, hint: &str) {
    let e = parse_document(doc.to_string().as_bytes()).expect_err(&format!("accepted {doc}"));
    assert_eq!(e.field, field, "{e}");
    assert_eq!(e.value, value, "{e}");
    let msg = e.to_string();
    assert!(msg.starts_with(&format!("invalid {field} ")), "{msg}");
    assert!(msg.contains(hint), "{msg} should mention {hint:?}");
}

pub fn rule(extra: Value) -> Value {
    let mut s = json!({ "Action": "Allow", "Direction": "In", "Protocols": "6", "Priority": 100 });
    for (k, v) in extra.as_object().unwrap() {
        s[k] = v.clone();
    }
    s
}
