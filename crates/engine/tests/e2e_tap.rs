//! TAP options of vm endpoints on the real kernel (`--tap-owner`,
//! `--tap-group`, `--tap-queues`): the TAP is opened as a non-root user by
//! a thread that drops its own credentials ([`TapGuest::open_as`]).

mod common;

use bulkhead_model::{EndpointSpec, NamespaceSpec};
use bulkhead_testkit::tap::TapGuest;
use common::*;

const OWNER: u32 = 4242;
const GROUP: u32 = 4343;
const STRANGER: u32 = 4444;

fn vm(
    h: &Harness,
    name: &str,
    owner: Option<&str>,
    group: Option<&str>,
    queues: Option<&str>,
) -> String {
    h.engine
        .create_namespace(NamespaceSpec {
            name: name.into(),
            isolation: Some("vm".into()),
            ..Default::default()
        })
        .expect("vm namespace");
    h.engine
        .create_endpoint(EndpointSpec {
            name: name.into(),
            network: "n".into(),
            namespace: name.into(),
            tap_owner: owner.map(Into::into),
            tap_group: group.map(Into::into),
            tap_queues: queues.map(Into::into),
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("create {name}: {e}"))
        .switch_port
        .to_string()
}

fn errno(r: std::io::Result<TapGuest>) -> Option<i32> {
    r.err().map(|e| e.raw_os_error().unwrap_or(-1))
}

/// Weakened: a TAP made without owner or group (`ip tuntap add`) is opened
/// by any user. bulkhead's default vm TAP refuses a non-root user; the
/// owner's TAP opens for the owner (all four queues) and not for another
/// uid; the group's TAP opens for a member only.
#[test]
fn tap_owner_group_and_queues_decide_who_attaches() {
    let Some(h) = Harness::new("tapo") else {
        return;
    };
    let host = h.host();
    ip(&[
        "-n",
        h.host_name(),
        "tuntap",
        "add",
        "dev",
        "bhtplain",
        "mode",
        "tap",
    ]);
    assert_eq!(
        errno(TapGuest::open_as(
            host, "bhtplain", STRANGER, STRANGER, false
        )),
        None,
        "weakened setup: an ownerless TAP must open for anyone"
    );
    h.nat_network("n", "10.230.0.0/24", None);
    let plain = vm(&h, "vplain", None, None, None);
    assert_eq!(
        errno(TapGuest::open_as(host, &plain, STRANGER, STRANGER, false)),
        Some(libc::EPERM),
        "a default vm TAP is root's"
    );
    assert!(TapGuest::open(host, &plain, false).is_ok(), "root opens it");

    let owned = vm(&h, "vowned", Some("4242"), None, Some("4"));
    let queues: Vec<TapGuest> = (0..4)
        .map(|i| {
            TapGuest::open_as(host, &owned, OWNER, OWNER, true)
                .unwrap_or_else(|e| panic!("owner opens queue {i}: {e}"))
        })
        .collect();
    assert_eq!(queues.len(), 4);
    assert_eq!(
        errno(TapGuest::open_as(host, &owned, STRANGER, STRANGER, true)),
        Some(libc::EPERM),
        "another uid"
    );
    assert_eq!(
        errno(TapGuest::open_as(host, &owned, OWNER, OWNER, false)),
        Some(libc::EINVAL),
        "a multi-queue TAP refuses a single-queue open"
    );

    // Reconcile re-creates a lost TAP with its stored options.
    drop(queues);
    ip(&["-n", h.host_name(), "link", "del", &owned]);
    h.engine.reconcile().expect("reconcile");
    assert!(
        TapGuest::open_as(host, &owned, OWNER, OWNER, true).is_ok(),
        "the owner opens the re-created TAP"
    );
    assert_eq!(
        errno(TapGuest::open_as(host, &owned, STRANGER, STRANGER, true)),
        Some(libc::EPERM),
        "another uid, after reconcile"
    );

    let grouped = vm(&h, "vgroup", None, Some("4343"), None);
    assert!(
        TapGuest::open_as(host, &grouped, STRANGER, GROUP, false).is_ok(),
        "a group member"
    );
    let grouped2 = vm(&h, "vgroup2", None, Some("4343"), None);
    assert_eq!(
        errno(TapGuest::open_as(
            host, &grouped2, STRANGER, STRANGER, false
        )),
        Some(libc::EPERM),
        "not a member"
    );
}

/// TAP options are refused, with the field named and nothing stored, for a
/// process endpoint and out of range.
#[test]
fn tap_options_are_for_vm_endpoints_and_in_range() {
    let Some(h) = Harness::new("tapv") else {
        return;
    };
    h.nat_network("n", "10.231.0.0/24", None);
    h.engine
        .create_namespace(NamespaceSpec {
            name: "p".into(),
            ..Default::default()
        })
        .expect("namespace");
    let e = h
        .engine
        .create_endpoint(EndpointSpec {
            name: "p".into(),
            network: "n".into(),
            namespace: "p".into(),
            tap_queues: Some("2".into()),
            ..Default::default()
        })
        .expect_err("tap options on a process endpoint");
    assert_eq!(
        e.to_string(),
        "invalid tap_queues \"2\": only for an endpoint of a vm namespace (\"p\" has isolation process)"
    );
    h.engine
        .create_namespace(NamespaceSpec {
            name: "v".into(),
            isolation: Some("vm".into()),
            ..Default::default()
        })
        .expect("vm namespace");
    let e = h
        .engine
        .create_endpoint(EndpointSpec {
            name: "v".into(),
            network: "n".into(),
            namespace: "v".into(),
            tap_queues: Some("17".into()),
            ..Default::default()
        })
        .expect_err("17 queues");
    assert_eq!(
        e.to_string(),
        "invalid tap_queues \"17\": a number of queues 1-16"
    );
    assert!(h.engine.endpoints().is_empty(), "nothing stored");
    assert!(h.host_links("bhp").is_empty(), "no port made");
}
