//! Orchestration of adoption and fail-closed ports against the recording
//! fake kernel (the real kernel: `tests/attacks/adoption.rs`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bulkhead_dataplane::fake::FakeKernel;
use bulkhead_dataplane::kernel::{NetnsId, Protected};
use bulkhead_model::{EndpointSpec, NamespaceSpec};
use bulkhead_store::MemoryStore;

use crate::{Config, Engine, EngineError};

const POD: NetnsId = NetnsId { dev: 4, ino: 1001 };
const HOST: NetnsId = NetnsId { dev: 4, ino: 1 };

fn engine() -> (Engine, Arc<FakeKernel>, Arc<MemoryStore>) {
    let kernel = Arc::new(FakeKernel::new());
    kernel.protect(HOST, Protected::Host);
    kernel.set_netns_id(Path::new("/var/run/netns/host-alias"), HOST);
    kernel.set_netns_id(Path::new("/var/run/netns/pod"), POD);
    let store = Arc::new(MemoryStore::new());
    let e = crate::test_kit::engine_on(kernel.clone(), store.clone(), "10.77.0.0/24", &[]);
    (e, kernel, store)
}

fn adopt(e: &Engine, name: &str, path: &str, container: &str) -> crate::Result<bool> {
    e.adopt_namespace(
        NamespaceSpec {
            name: name.into(),
            isolation: None,
            ..NamespaceSpec::default()
        },
        path,
        Some(container),
    )
    .map(|(_, new)| new)
}

fn endpoint(e: &Engine, name: &str, ns: &str) -> crate::Result<bulkhead_model::Endpoint> {
    e.create_endpoint(EndpointSpec {
        name: name.into(),
        network: "n".into(),
        namespace: ns.into(),
        ..Default::default()
    })
}

fn applied_in(k: &FakeKernel, path: &Path) -> usize {
    k.applied()
        .iter()
        .filter(|(p, _)| p.as_deref() == Some(path))
        .count()
}

#[test]
fn protected_and_already_held_namespaces_are_refused_by_field() {
    let (e, k, _) = engine();
    let err = adopt(&e, "h", "/var/run/netns/host-alias", "c1").unwrap_err();
    assert!(matches!(err, EngineError::Invalid(_)), "{err}");
    let line = err.to_string();
    assert!(
        line.contains("netns_path") && line.contains("host-alias") && line.contains("host"),
        "{line}"
    );
    assert!(!line.contains('\n'));
    assert!(adopt(&e, "p", "/var/run/netns/pod", "c1").unwrap());
    // Idempotent for the same name and namespace; another container joins.
    assert!(!adopt(&e, "p", "/var/run/netns/pod", "c1").unwrap());
    assert!(!adopt(&e, "p", "/var/run/netns/pod", "c2").unwrap());
    // The same namespace under another path and name: refused.
    k.set_netns_id(Path::new("/var/run/netns/pod-again"), POD);
    let err = adopt(&e, "q", "/var/run/netns/pod-again", "c3").unwrap_err();
    let line = err.to_string();
    assert!(
        line.contains("netns_path") && line.contains("\"p\"") && line.contains("c1"),
        "{line}"
    );
    // Not a namespace at all.
    let err = adopt(&e, "r", "/var/run/netns/none", "c4").unwrap_err();
    assert!(err.to_string().contains("netns_path"), "{err}");
    assert_eq!(e.namespaces().len(), 1);
}

#[test]
fn a_rebound_path_is_never_programmed() {
    let (e, k, _) = engine();
    adopt(&e, "p", "/var/run/netns/pod", "c1").unwrap();
    let pod = PathBuf::from("/var/run/netns/pod");
    endpoint(&e, "a", "p").expect("a");
    let before = applied_in(&k, &pod);
    assert_eq!(before, 1, "the firewall went into the pod");
    // The runtime's path now names another namespace (a swapped bind mount).
    k.set_netns_id(&pod, NetnsId { dev: 4, ino: 2002 });
    let err = endpoint(&e, "b", "p").unwrap_err().to_string();
    assert!(err.contains("not the adopted"), "{err}");
    let err = e.delete_endpoint("a").unwrap_err().to_string();
    assert!(err.contains("not the adopted"), "{err}");
    assert_eq!(applied_in(&k, &pod), before, "nothing programmed there");
}

#[test]
fn a_port_comes_up_only_after_its_tables_and_a_failure_undoes_them() {
    let (e, k, _) = engine();
    e.create_namespace(NamespaceSpec {
        name: "x".into(),
        isolation: None,
        ..NamespaceSpec::default()
    })
    .unwrap();
    let n = k.calls().len();
    let a = endpoint(&e, "a", "x").unwrap();
    let port = a.switch_port.to_string();
    let calls: Vec<String> = k.calls()[n..]
        .iter()
        .filter(|c| {
            c.starts_with("create_port") || c.starts_with("apply") || c.starts_with("enable")
        })
        .map(|c| c.split(' ').next().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(calls, ["create_port", "apply", "apply", "enable_port"]);
    assert!(k.down().is_empty());
    // Enabling fails: the endpoint is undone, tables included.
    let applies = k.applied().len();
    k.fail_next("enable_port");
    endpoint(&e, "b", "x").unwrap_err();
    assert!(e.endpoint("b").is_err());
    assert_eq!(k.links().iter().filter(|l| l.starts_with("bhp")).count(), 1);
    assert!(k.links().contains(&port));
    assert_eq!(k.applied().len(), applies + 4, "2 applies in, 2 back out");
}

#[test]
fn reconcile_brings_ports_up_after_the_tables() {
    let (e, k, store) = engine();
    adopt(&e, "p", "/var/run/netns/pod", "c1").unwrap();
    let a = endpoint(&e, "a", "p").unwrap();
    drop(e);
    // A reboot: the port is gone (the pod's namespace is the runtime's).
    let k2 = Arc::new(FakeKernel::new());
    k2.set_netns_id(Path::new("/var/run/netns/pod"), POD);
    let _ = k;
    let (e2, report) = Engine::open(k2.clone(), store, Config::default()).expect("reopen");
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let calls = k2.calls();
    let made = calls
        .iter()
        .position(|c| c.starts_with(&format!("create_port {}", a.switch_port)))
        .expect("port made");
    let up = calls
        .iter()
        .position(|c| c.starts_with(&format!("enable_port {}", a.switch_port)))
        .expect("port enabled");
    let last_apply = calls.iter().rposition(|c| c.starts_with("apply")).unwrap();
    assert!(made < last_apply && last_apply < up, "{calls:?}");
    // The pod's namespace, now another one: its port stays down.
    drop(e2);
}

#[test]
fn a_schema_1_adopted_record_gets_its_identity_unless_protected() {
    use bulkhead_store::{Reader, StoreExt};
    let kernel = Arc::new(FakeKernel::new());
    kernel.protect(HOST, Protected::Host);
    kernel.set_netns_id(Path::new("/var/run/netns/pod"), POD);
    kernel.set_netns_id(Path::new("/var/run/netns/host-alias"), HOST);
    let store = Arc::new(MemoryStore::new());
    let record = |name: &str, path: &str| crate::NamespaceRecord {
        namespace: bulkhead_model::Namespace {
            id: bulkhead_model::Id::random(),
            compartment_id: 2,
            name: bulkhead_model::Name::parse("name", name).unwrap(),
            isolation: bulkhead_model::Isolation::Process,
            netns_path: Some(PathBuf::from(path)),
            containers: vec![],
        },
        adopted: true,
        netns_id: None,
    };
    let (pod, host) = (
        record("p", "/var/run/netns/pod"),
        record("h", "/var/run/netns/host-alias"),
    );
    store
        .transaction(|t| {
            t.put(&pod)?;
            t.put(&host)
        })
        .unwrap();
    let (_e, report) = Engine::open(kernel, store.clone(), Config::default()).expect("open");
    assert!(
        report
            .errors
            .iter()
            .any(|e| e.contains("host-alias") && e.contains("host")),
        "{:?}",
        report.errors
    );
    let stored: Vec<crate::NamespaceRecord> = store.read(|t| t.list()).unwrap();
    let id_of = |name: &str| {
        stored
            .iter()
            .find(|r| r.namespace.name.as_str() == name)
            .and_then(|r| r.netns_id)
    };
    assert_eq!(id_of("p").map(NetnsId::from), Some(POD));
    assert_eq!(id_of("h"), None, "a protected namespace is never recorded");
}
