//! Rule rows: a one-rule change is one row write, the order survives adds,
//! removes and reloads, an endpoint's delete takes its rows, and a state
//! written before the split (rules inside the record) opens and migrates.

use bulkhead_model::AclRule;
use bulkhead_store::{Kind, MemoryStore, Reader, Record, StoreExt};
use serde_json::{json, Value};

use super::*;

const EP: &str = "8d2f1e1c-5b0a-4c1e-9a51-0f4b3c2d1e04";
const OTHER: &str = "8d2f1e1c-5b0a-4c1e-9a51-0f4b3c2d1e05";

fn rule(id: &str, port: u16) -> Value {
    json!({"id": id, "action": "block", "direction": "in", "protocol": "tcp",
           "local_addresses": "", "remote_addresses": "10.0.0.0/8",
           "local_ports": port.to_string(), "remote_ports": "", "rule_type": "host",
           "priority": 100})
}

fn body(id: &str, rules: &[Value]) -> Value {
    json!({"id": id, "name": format!("e{}", &id[id.len() - 1..]), "network": EP,
           "namespace": EP, "ifname": "eth0",
           "ip_address": {"addr": "10.1.0.2", "prefix": 24}, "mac_address": "02:00:0a:01:00:02",
           "switch_port": "bhp8d2f1e1c5b", "port_mappings": [], "acl_mode": "layered",
           "acls": rules, "container_id": null})
}

fn record(id: &str, rules: &[Value]) -> EndpointRecord {
    serde_json::from_value(body(id, rules)).unwrap()
}

fn acl(id: &str, port: u16) -> AclRule {
    serde_json::from_value(rule(id, port)).unwrap()
}

/// An endpoint body as stored, whatever its schema.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
struct Raw<const S: u32>(Value);

impl<const S: u32> Record for Raw<S> {
    const KIND: Kind = Kind::Endpoints;
    const SCHEMA: u32 = S;
    fn key(&self) -> String {
        self.0["id"].as_str().unwrap_or_default().to_owned()
    }
}

fn ids(r: &EndpointRecord) -> Vec<String> {
    r.acls.iter().map(|a| a.id.to_string()).collect()
}

fn load(store: &MemoryStore) -> Vec<EndpointRecord> {
    let (records, stale) = store.read(|t| load_endpoints(t)).unwrap();
    assert!(stale.is_empty(), "{stale:?}");
    records
}

#[test]
fn one_rule_changes_are_one_row_and_keep_the_order() {
    let store = MemoryStore::new();
    let mut r = record(EP, &[rule("a", 1), rule("b", 2), rule("c", 3)]);
    let id = r.id;
    store.transaction(|t| put_endpoint(t, &mut r)).unwrap();
    assert_eq!(
        ids(&r),
        ["a", "b", "c"],
        "the caller's record keeps its rules"
    );
    let body = store.read(|t| t.get::<Raw<2>>(EP)).unwrap().unwrap();
    assert_eq!(body.0["acls"], json!([]), "the record holds no rules");
    assert_eq!(ids(&load(&store)[0]), ["a", "b", "c"]);

    // An add is one put (one revision), a remove one delete.
    let before = store.read(|t| t.revision()).unwrap();
    store
        .transaction(|t| put_rule(t, &id, &acl("d", 4)))
        .unwrap();
    assert_eq!(store.read(|t| t.revision()).unwrap(), before + 1);
    let row = store.transaction(|t| delete_rule(t, &id, "b")).unwrap();
    assert_eq!(store.read(|t| t.revision()).unwrap(), before + 2);
    assert_eq!(ids(&load(&store)[0]), ["a", "c", "d"]);

    // Put back where it was; a re-added id goes last.
    store
        .transaction(|t| restore_rule(t, &row.unwrap()))
        .unwrap();
    assert_eq!(ids(&load(&store)[0]), ["a", "b", "c", "d"]);
    store.transaction(|t| delete_rule(t, &id, "a")).unwrap();
    store
        .transaction(|t| put_rule(t, &id, &acl("a", 9)))
        .unwrap();
    let loaded = load(&store);
    assert_eq!(ids(&loaded[0]), ["b", "c", "d", "a"]);
    assert_eq!(loaded[0].acls[3], acl("a", 9), "rows hold the whole rule");

    // A replace writes the new list in its order.
    let list = [acl("z", 1), acl("y", 2)];
    store.transaction(|t| put_rules(t, &id, &list)).unwrap();
    assert_eq!(ids(&load(&store)[0]), ["z", "y"]);
}

#[test]
fn deleting_an_endpoint_takes_only_its_rows() {
    let store = MemoryStore::new();
    let (mut a, mut b) = (record(EP, &[rule("r", 1)]), record(OTHER, &[rule("r", 2)]));
    store
        .transaction(|t| {
            put_endpoint(t, &mut a)?;
            put_endpoint(t, &mut b)
        })
        .unwrap();
    assert!(store.transaction(|t| delete_endpoint(t, EP)).unwrap());
    let left = load(&store);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].acls, [acl("r", 2)]);
    assert_eq!(store.read(|t| t.list::<AclRow>()).unwrap().len(), 1);
}

#[test]
fn a_schema_1_record_opens_with_its_rules_and_is_migrated() {
    let store = MemoryStore::new();
    let rules = [rule("r2", 2), rule("r1", 1), rule("r3", 3)];
    store
        .transaction(|t| {
            t.put(&Raw::<1>(body(EP, &rules)))?;
            // A row nobody owns (never written so) is dropped.
            t.put(&AclRow {
                endpoint: bulkhead_model::Id::parse("id", OTHER).unwrap(),
                seq: 1,
                rule: acl("x", 1),
            })
        })
        .unwrap();
    let (mut records, stale) = store.read(|t| load_endpoints(t)).unwrap();
    assert_eq!(ids(&records[0]), ["r2", "r1", "r3"], "read from the body");
    assert_eq!(stale.bodies.len(), 1);
    assert_eq!(stale.orphans, [format!("{OTHER}/x")]);
    store
        .transaction(|t| migrate(t, &mut records, &stale))
        .unwrap();

    let body = store.read(|t| t.get::<Raw<2>>(EP)).unwrap().unwrap();
    assert_eq!(body.0["acls"], json!([]), "rules left the body");
    let rows = store.read(|t| t.list::<AclRow>()).unwrap();
    assert_eq!(rows.len(), 3, "one row per rule, the orphan gone");
    let again = load(&store);
    assert_eq!(again, records, "the same endpoint after the migration");
    assert_eq!(ids(&again[0]), ["r2", "r1", "r3"]);
}
