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

/// A refused value reaches the client with its field, so clients (the CNI
/// plugin's netns refusal) test the field instead of the message's text.
#[test]
fn an_invalid_value_names_its_field_on_the_wire() {
    let e = bulkhead_engine::EngineError::Invalid(bulkhead_model::InvalidValue::new(
        "netns_path",
        "/proc/1/ns/net",
        "a container's network namespace",
    ));
    let api = crate::service::api_error(e);
    assert_eq!(api.code, ErrorCode::BadRequest);
    assert_eq!(api.field.as_deref(), Some("netns_path"));
    let body: serde_json::Value = serde_json::from_slice(&api.to_body()).unwrap();
    assert_eq!(body["error"]["field"], "netns_path");
    let conflict = crate::service::api_error(bulkhead_engine::EngineError::Conflict("x".into()));
    assert_eq!(conflict.field, None);
    assert!(!String::from_utf8(conflict.to_body())
        .unwrap()
        .contains("field"));
}
