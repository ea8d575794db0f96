//! A panic inside an operation (a bug, injected here on the fake kernel)
//! leaves the store changed in whole transactions and the kernel and the
//! in-memory state cut off halfway. The next operation must not go on from
//! there: it finds the lock poisoned and reconciles from the store first.
//! Also here: a namespace whose create was cut off by a crash is made again
//! from scratch by the reconcile at the next start.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use bulkhead_dataplane::fake::FakeKernel;
use bulkhead_dataplane::kernel::Kernel;
use bulkhead_model::{EndpointSpec, NamespaceSpec};
use bulkhead_store::MemoryStore;

use crate::{test_kit, Config, Engine};

fn engine() -> (Engine, Arc<FakeKernel>) {
    test_kit::engine("10.80.0.0/24", &["a", "b"])
}

fn endpoint(name: &str) -> EndpointSpec {
    EndpointSpec {
        name: name.into(),
        network: "n".into(),
        namespace: name.into(),
        ..Default::default()
    }
}

#[test]
fn the_operation_after_a_panic_sees_a_reconciled_state() {
    let (engine, kernel) = engine();
    // A delete commits first (record gone, intent stored), then unpins:
    // the panic cuts it there, with nothing to undo. The in-memory state
    // still lists the namespace and the kernel still has its pin.
    kernel.panic_next("delete_netns bh-a");
    let cut = catch_unwind(AssertUnwindSafe(|| engine.delete_namespace("a")));
    assert!(cut.is_err(), "the injected panic did not happen");
    assert!(
        engine.needs_reconcile(),
        "a panic under the lock is noticed"
    );
    assert!(kernel.netns().contains("bh-a"), "the panic came too late");
    // The next operation reconciles first: the delete is finished.
    let names: Vec<String> = engine
        .namespaces()
        .iter()
        .map(|n| n.name.to_string())
        .collect();
    assert_eq!(names, ["b"], "the next operation saw the half-done delete");
    assert!(!engine.needs_reconcile());
    assert!(!kernel.netns().contains("bh-a"), "pin left behind");
    engine
        .create_namespace(NamespaceSpec {
            name: "a".into(),
            isolation: None,
            ..NamespaceSpec::default()
        })
        .expect("the name is free again");
}

#[test]
fn a_panic_in_a_create_is_undone_and_leaks_nothing() {
    let (engine, kernel) = engine();
    // The record and the address are committed, then the kernel step
    // panics: unwinding runs the undo log, and the reconcile after it
    // finds store and kernel agreeing on no endpoint.
    kernel.panic_next("create_port");
    let pinned = || EndpointSpec {
        ip: Some("10.80.0.9".into()),
        ..endpoint("a")
    };
    let cut = catch_unwind(AssertUnwindSafe(|| engine.create_endpoint(pinned())));
    assert!(cut.is_err(), "the injected panic did not happen");
    assert!(engine.endpoints().is_empty());
    // The same name and the same address: neither is still taken.
    let again = engine
        .create_endpoint(pinned())
        .expect("a retry after the panic");
    assert!(kernel.links().contains(&again.switch_port.to_string()));
}

#[test]
fn a_marked_engine_reconciles_before_the_next_operation() {
    let (engine, kernel) = engine();
    // A kernel object of ours that no record owns, as a half-done
    // operation could leave it: the reconcile removes it.
    kernel
        .create_netns("bh-orphan")
        .map(|_| ())
        .expect("fake netns");
    assert!(kernel.netns().contains("bh-orphan"));
    engine.mark_for_reconcile();
    assert!(engine.needs_reconcile());
    assert_eq!(engine.namespaces().len(), 2);
    assert!(!engine.needs_reconcile());
    assert!(!kernel.netns().contains("bh-orphan"), "not reconciled");
}

#[test]
fn a_namespace_whose_create_was_in_flight_is_made_again_at_start() {
    let kernel = Arc::new(FakeKernel::new());
    let store = Arc::new(MemoryStore::new());
    let (engine, _) = Engine::open(kernel.clone(), store.clone(), Config::default()).expect("open");
    engine
        .create_namespace(NamespaceSpec {
            name: "a".into(),
            isolation: None,
            ..NamespaceSpec::default()
        })
        .expect("namespace");
    // A crash right after: no drop, so the create's intent stays stored
    // (its pin may be a bare file or a namespace never finished).
    std::mem::forget(engine);
    let before = kernel.calls().len();
    let (engine, report) =
        Engine::open(kernel.clone(), store.clone(), Config::default()).expect("reopen");
    let redone: Vec<String> = kernel.calls()[before..]
        .iter()
        .filter(|c| c.ends_with(" bh-a"))
        .cloned()
        .collect();
    assert_eq!(redone, ["delete_netns bh-a", "create_netns bh-a"]);
    assert_eq!(report.namespaces_created, 1);
    assert!(kernel.netns().contains("bh-a"));
    // Once the intent is cleared (the reconcile did), a start leaves it be.
    drop(engine);
    let before = kernel.calls().len();
    let (_engine, report) = Engine::open(kernel.clone(), store, Config::default()).expect("reopen");
    assert_eq!(report.namespaces_created, 0);
    assert!(!kernel.calls()[before..]
        .iter()
        .any(|c| c.ends_with(" bh-a")));
}
