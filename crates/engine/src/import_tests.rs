//! HCN import on the fake kernel: an endpoint's ACL costs one store write
//! whatever its size, and a failure anywhere leaves nothing behind.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bulkhead_dataplane::fake::FakeKernel;
use bulkhead_store::{MemoryStore, ReadTxn, Store, WriteTxn};

use crate::{Config, Engine};

/// A memory store that counts write transactions.
#[derive(Debug, Default)]
struct Counting {
    inner: MemoryStore,
    writes: AtomicUsize,
}

impl Store for Counting {
    fn begin_read(&self) -> bulkhead_store::Result<ReadTxn<'_>> {
        self.inner.begin_read()
    }
    fn begin_write(&self) -> bulkhead_store::Result<WriteTxn<'_>> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.begin_write()
    }
    fn sync(&self) -> bulkhead_store::Result<()> {
        self.inner.sync()
    }
}

fn engine() -> (Engine, Arc<Counting>) {
    let store = Arc::new(Counting::default());
    let (e, _) = Engine::open(
        Arc::new(FakeKernel::new()),
        store.clone(),
        Config::default(),
    )
    .expect("open");
    (e, store)
}

fn acl(id: &str, port: u16) -> String {
    format!(
        r#"{{ "Type": "ACL", "Settings": {{ "Id": "{id}", "Protocols": "6", "Action": "Allow",
        "Direction": "In", "LocalPorts": "{port}", "RuleType": "Host", "Priority": 100 }} }}"#
    )
}

/// A document: one nat network, one namespace, and one endpoint per entry
/// of `endpoints` (name, network id, ACL policies).
fn doc(endpoints: &[(&str, &str, Vec<String>)]) -> Vec<u8> {
    let eps: Vec<String> = endpoints
        .iter()
        .enumerate()
        .map(|(i, (name, net, acls))| {
            format!(
                r#"{{ "ID": "9d8c7b6a-5f4e-4d3c-8b2a-1908172635{i:02}", "Name": "{name}",
                "HostComputeNetwork": "{net}",
                "HostComputeNamespace": "e3f4a5b6-c7d8-4e9f-a0b1-c2d3e4f5a6b7",
                "Policies": [{}] }}"#,
                acls.join(",")
            )
        })
        .collect();
    format!(
        r#"{{
  "Networks": [{{
    "ID": "a1b2c3d4-0000-4000-8000-000000000004", "Name": "hcnnat", "Type": "NAT",
    "Ipams": [{{ "Type": "Static", "Subnets": [{{ "IpAddressPrefix": "10.94.0.0/24",
      "Routes": [{{ "NextHop": "10.94.0.1", "DestinationPrefix": "0.0.0.0/0" }}] }}] }}],
    "SchemaVersion": {{ "Major": 2, "Minor": 0 }}
  }}],
  "Namespaces": [{{ "ID": "e3f4a5b6-c7d8-4e9f-a0b1-c2d3e4f5a6b7", "NamespaceId": 3, "Type": "Host" }}],
  "Endpoints": [{}]
}}"#,
        eps.join(",")
    )
    .into_bytes()
}

const NET: &str = "a1b2c3d4-0000-4000-8000-000000000004";

fn writes(endpoints: &[(&str, &str, Vec<String>)]) -> usize {
    let (e, store) = engine();
    let before = store.writes.load(Ordering::SeqCst);
    let out = e.import_hcn(&doc(endpoints)).expect("import");
    let rules: usize = endpoints.iter().map(|(_, _, a)| a.len()).sum();
    assert_eq!(out.acls, rules);
    assert_eq!(out.endpoints.len(), endpoints.len());
    assert_eq!(
        e.acls(endpoints[0].0).expect("acls").len(),
        endpoints[0].2.len()
    );
    store.writes.load(Ordering::SeqCst) - before
}

#[test]
fn an_endpoints_acl_is_one_store_write_whatever_its_size() {
    let one = writes(&[("web", NET, vec![acl("a", 80)])]);
    let many: Vec<String> = (0..12).map(|i| acl(&format!("r{i}"), 1000 + i)).collect();
    assert_eq!(writes(&[("web", NET, many)]), one);
}

fn assert_empty(e: &Engine) {
    assert!(e.networks().is_empty(), "{:?}", e.networks());
    assert!(e.namespaces().is_empty(), "{:?}", e.namespaces());
}

#[test]
fn a_failing_object_undoes_the_whole_import() {
    // An unknown network, after one endpoint was made.
    let (e, _) = engine();
    let bad = doc(&[
        ("web", NET, vec![acl("a", 80)]),
        ("db", "a1b2c3d4-0000-4000-8000-0000000000ff", vec![]),
    ]);
    let err = e.import_hcn(&bad).expect_err("unknown network");
    assert!(err.to_string().contains("0000000000ff"), "{err}");
    assert_empty(&e);
    // An ACL the engine refuses (one id twice), on the second endpoint.
    let dup = vec![acl("same", 80), acl("same", 81)];
    let bad = doc(&[("web", NET, vec![acl("a", 80)]), ("db", NET, dup)]);
    let err = e.import_hcn(&bad).expect_err("duplicate id");
    assert!(err.to_string().contains("same"), "{err}");
    assert_empty(&e);
    // The same document without the fault imports.
    let good = doc(&[("web", NET, vec![acl("a", 80)]), ("db", NET, vec![])]);
    let out = e.import_hcn(&good).expect("import");
    assert_eq!(out.endpoints, ["web", "db"]);
    assert_eq!((out.networks.len(), out.namespaces.len()), (1, 1));
}
