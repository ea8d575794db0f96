//! Records keep the disk format: bodies written before the model types were
//! embedded (every field listed in the record, `netns_path: ""` for a vm
//! namespace) still open, and what is written now has the same keys.

use bulkhead_store::{Kind, MemoryStore, Reader, Record, StoreExt};
use serde_json::{json, Value};

use super::{EndpointRecord, NamespaceRecord, NetworkRecord};

/// A body as an older bulkhead wrote it, under `schema`.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
struct Old<const K: u8, const S: u32>(Value);

impl<const K: u8, const S: u32> Record for Old<K, S> {
    const KIND: Kind = match K {
        0 => Kind::Networks,
        1 => Kind::Namespaces,
        _ => Kind::Endpoints,
    };
    const SCHEMA: u32 = S;
    fn key(&self) -> String {
        self.0["id"].as_str().unwrap_or_default().to_owned()
    }
}

const NET: &str = "8d2f1e1c-5b0a-4c1e-9a51-0f4b3c2d1e01";
const NS: &str = "8d2f1e1c-5b0a-4c1e-9a51-0f4b3c2d1e02";
const VM: &str = "8d2f1e1c-5b0a-4c1e-9a51-0f4b3c2d1e03";
const EP: &str = "8d2f1e1c-5b0a-4c1e-9a51-0f4b3c2d1e04";

fn network() -> Value {
    json!({"id": NET, "name": "n", "driver": "nat", "subnets": ["10.1.0.0/24"],
           "gateway": "10.1.0.1", "uplink": null, "vni": null, "acl_profile": "current"})
}

fn namespace(id: &str, isolation: &str, path: &str) -> Value {
    json!({"id": id, "compartment_id": 2, "name": format!("ns-{isolation}"),
           "isolation": isolation, "netns_path": path, "containers": [], "adopted": false})
}

fn endpoint() -> Value {
    json!({"id": EP, "name": "e", "network": NET, "namespace": NS, "ifname": "eth0",
           "ip_address": {"addr": "10.1.0.2", "prefix": 24}, "mac_address": "02:00:0a:01:00:02",
           "switch_port": "bhp8d2f1e1c5b", "port_mappings": [], "acl_mode": "layered",
           "acls": [{"id": "r1", "action": "block", "direction": "in", "protocol": "tcp",
                     "local_addresses": "", "remote_addresses": "10.0.0.0/8",
                     "local_ports": "80", "remote_ports": "", "rule_type": "host",
                     "priority": 100}],
           "container_id": "c1"})
}

#[test]
fn bodies_written_before_the_embedding_still_open() {
    let store = MemoryStore::new();
    store
        .transaction(|t| {
            t.put(&Old::<0, 1>(network()))?;
            t.put(&Old::<1, 2>(namespace(NS, "process", "/run/netns/bh-p")))?;
            t.put(&Old::<1, 2>(namespace(VM, "vm", "")))?;
            t.put(&Old::<2, 1>(endpoint()))
        })
        .unwrap();
    let (nets, nss, eps) = store
        .read(|t| {
            Ok((
                t.list::<NetworkRecord>()?,
                t.list::<NamespaceRecord>()?,
                t.list::<EndpointRecord>()?,
            ))
        })
        .unwrap();
    assert_eq!(nets[0].0.subnets[0].to_string(), "10.1.0.0/24");
    let path_of = |id: &str| {
        nss.iter()
            .find(|n| n.namespace.id.to_string() == id)
            .map(|n| n.namespace.netns_path.clone())
    };
    assert_eq!(path_of(NS), Some(Some("/run/netns/bh-p".into())));
    assert_eq!(path_of(VM), Some(None), "an empty path is none");
    assert_eq!(eps[0].container_id.as_deref(), Some("c1"));
    assert_eq!(eps[0].acls[0].priority, 100);
    assert_eq!(eps[0].ip_address.to_string(), "10.1.0.2/24");
}

#[test]
fn records_encode_the_keys_they_always_had() {
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    let net: NetworkRecord = serde_json::from_value(network()).unwrap();
    assert_eq!(serde_json::to_value(&net).unwrap(), network());
    let ep: EndpointRecord = serde_json::from_value(endpoint()).unwrap();
    assert_eq!(serde_json::to_value(&ep).unwrap(), endpoint());
    let ns: NamespaceRecord =
        serde_json::from_value(namespace(NS, "process", "/run/netns/bh-p")).unwrap();
    let written = serde_json::to_value(&ns).unwrap();
    assert_eq!(written, namespace(NS, "process", "/run/netns/bh-p"));
    // A vm namespace now omits the path it used to write as "".
    let mut vm = ns.clone();
    vm.namespace.netns_path = None;
    let mut want = keys(&written);
    want.retain(|k| k != "netns_path");
    assert_eq!(keys(&serde_json::to_value(&vm).unwrap()), want);
}

#[test]
fn an_engine_opens_a_store_with_an_old_vm_namespace() {
    use std::sync::Arc;
    let store = Arc::new(MemoryStore::new());
    store
        .transaction(|t| {
            t.put(&Old::<0, 1>(network()))?;
            t.put(&Old::<1, 2>(namespace(VM, "vm", "")))
        })
        .unwrap();
    let kernel = Arc::new(bulkhead_dataplane::fake::FakeKernel::new());
    let (e, report) =
        crate::Engine::open(kernel, store.clone(), crate::Config::default()).expect("open");
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(e.namespace("ns-vm").expect("vm").netns_path, None);
    // Written again, it is schema 3 without the path.
    let ns = e.namespace("ns-vm").expect("vm");
    store
        .transaction(|t| t.put(&NamespaceRecord::of(&ns, None)))
        .unwrap();
    let again: Vec<NamespaceRecord> = store.read(|t| t.list()).unwrap();
    assert_eq!(again[0].namespace, ns);
}

/// A store written before ACL rules were rows of their own (the rules
/// inside the schema-1 endpoint record) opens with the endpoint's ACL; the
/// open rewrites it as a schema-2 record without rules plus one row per
/// rule, and later changes write rows the next open reads back, in order.
#[test]
fn an_engine_opens_a_store_with_rules_inside_the_endpoint_record() {
    use crate::acl_rows::AclRow;
    use bulkhead_model::{AclRuleSpec, EndpointSpec};
    use std::sync::Arc;
    let store = Arc::new(MemoryStore::new());
    let kernel = Arc::new(bulkhead_dataplane::fake::FakeKernel::new());
    let spec = |id: &str, port: &str| AclRuleSpec {
        id: Some(id.into()),
        direction: "in".into(),
        action: "allow".into(),
        protocol: Some("tcp".into()),
        local_ports: Some(port.into()),
        ..AclRuleSpec::default()
    };
    let e = crate::test_kit::engine_on(kernel.clone(), store.clone(), "10.1.0.0/24", &["p"]);
    let ep = e
        .create_endpoint(EndpointSpec {
            name: "e".into(),
            network: "n".into(),
            namespace: "p".into(),
            ..EndpointSpec::default()
        })
        .unwrap();
    e.add_acl("e", spec("r1", "21")).unwrap();
    e.add_acl("e", spec("r9", "29")).unwrap();
    let old_rules = e.acls("e").unwrap();
    drop(e);
    // The store as the previous layout wrote it.
    let key = ep.id.to_string();
    store
        .transaction(|t| {
            let mut body = t.get::<Old<2, 2>>(&key)?.unwrap();
            body.0["acls"] = serde_json::to_value(&old_rules).unwrap();
            t.put(&Old::<2, 1>(body.0))?;
            t.delete_prefix::<AclRow>("")
        })
        .unwrap();

    let open = || {
        let (e, report) =
            crate::Engine::open(kernel.clone(), store.clone(), crate::Config::default())
                .expect("open");
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        e
    };
    let ids = |e: &crate::Engine| -> Vec<String> {
        e.acls("e")
            .unwrap()
            .iter()
            .map(|r| r.id.to_string())
            .collect()
    };
    let e = open();
    assert_eq!(e.acls("e").unwrap(), old_rules);
    let body = store.read(|t| t.get::<Old<2, 2>>(&key)).unwrap().unwrap();
    assert_eq!(body.0["acls"], json!([]), "the rules left the record");
    assert_eq!(store.read(|t| t.list::<AclRow>()).unwrap().len(), 2);

    e.add_acl("e", spec("r2", "22")).unwrap();
    e.remove_acl("e", "r1").unwrap();
    e.add_acl("e", spec("r1", "24")).unwrap();
    let want = e.acls("e").unwrap();
    assert_eq!(ids(&e), ["r9", "r2", "r1"]);
    drop(e);
    let e = open();
    assert_eq!(e.acls("e").unwrap(), want, "the same rules, in order");
    assert_eq!(store.read(|t| t.list::<AclRow>()).unwrap().len(), 3);
}
