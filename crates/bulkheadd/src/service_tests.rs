//! A panic inside an operation, injected on the fake kernel, as the API
//! sees it: a 500 without the panic's text, and a next request that finds
//! the state reconciled.

use std::sync::Arc;

use bulkhead_api::{Command, ErrorCode, NamespaceSpec, Response, Service};
use bulkhead_dataplane::fake::FakeKernel;
use bulkhead_engine::{Config, Engine};
use bulkhead_store::MemoryStore;

use super::Daemon;

fn namespace(name: &str) -> Command {
    Command::NamespaceCreate(NamespaceSpec {
        name: name.into(),
        isolation: None,
        netns_path: None,
        container_id: None,
    })
}

#[tokio::test]
async fn a_panicking_operation_answers_500_and_the_next_sees_a_reconciled_state() {
    let kernel = Arc::new(FakeKernel::new());
    let (engine, _) = Engine::open(
        kernel.clone(),
        Arc::new(MemoryStore::new()),
        Config::default(),
    )
    .expect("open");
    let daemon = Daemon::new(Arc::new(engine));
    for ns in ["a", "b"] {
        daemon.handle(namespace(ns)).await.expect("namespace");
    }
    // The delete commits, then panics before unpinning.
    kernel.panic_next("delete_netns bh-a");
    let err = daemon
        .handle(Command::NamespaceRemove { name: "a".into() })
        .await
        .expect_err("the panic must fail the request");
    assert_eq!(err.code, ErrorCode::Internal);
    assert_eq!(err.message, "internal error", "panic text leaked");
    // Reconciled at once: the pin is gone before anyone asks.
    assert!(!kernel.netns().contains("bh-a"), "not reconciled at once");
    let Ok(Response::Namespaces(list)) = daemon.handle(Command::NamespaceList).await else {
        panic!("namespace list failed");
    };
    let names: Vec<&str> = list.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["b"], "the half-done delete is visible");
    daemon
        .handle(namespace("a"))
        .await
        .expect("the name is free");
}
