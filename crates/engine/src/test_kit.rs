//! Fixtures for the engine's unit tests: an engine on the recording fake
//! kernel and an in-memory store, with one nat network `n` and process
//! namespaces made by name. Tests that need more shape the fake (host
//! addresses, namespace identities) before calling [`engine_on`].

use std::sync::Arc;

use bulkhead_dataplane::fake::FakeKernel;
use bulkhead_model::{NamespaceSpec, NetworkSpec};
use bulkhead_store::MemoryStore;

use crate::{Config, Engine};

/// An engine on `kernel` and `store` with the nat network `n` on `subnet`
/// and a process namespace for each of `namespaces`.
pub(crate) fn engine_on(
    kernel: Arc<FakeKernel>,
    store: Arc<MemoryStore>,
    subnet: &str,
    namespaces: &[&str],
) -> Engine {
    let (e, _) = Engine::open(kernel, store, Config::default()).expect("open");
    e.create_network(NetworkSpec {
        name: "n".into(),
        driver: "nat".into(),
        subnets: vec![subnet.into()],
        ..Default::default()
    })
    .expect("network");
    for ns in namespaces {
        e.create_namespace(NamespaceSpec {
            name: (*ns).into(),
            isolation: None,
            ..NamespaceSpec::default()
        })
        .expect("namespace");
    }
    e
}

/// [`engine_on`] a fresh fake kernel and store; the kernel is returned to
/// inspect what the engine asked of it.
pub(crate) fn engine(subnet: &str, namespaces: &[&str]) -> (Engine, Arc<FakeKernel>) {
    let kernel = Arc::new(FakeKernel::new());
    let e = engine_on(
        kernel.clone(),
        Arc::new(MemoryStore::new()),
        subnet,
        namespaces,
    );
    (e, kernel)
}
