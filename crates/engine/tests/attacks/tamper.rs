//! Attacks: tamper (see `docs/security.md`). A tenant is root in its own
//! namespace and rewrites the host firewall bulkhead put there (spec §9):
//! flushes the whole ruleset, deletes bulkhead's table, or slips an
//! `accept` in front of its rules. Without the watcher the blocked probe
//! then passes; with it the table is back as programmed within a second,
//! the probe is blocked again, and the ring lists a `tamper` and a
//! `restore` event. bulkhead's own changes are not taken for tampering.
//!
//! The host firewall is one compiled table whatever the driver (and the
//! watcher works per namespace), so one nat network covers the drivers.

use std::process::Command;
use std::time::{Duration, Instant};

use bulkhead_engine::events::EventKind;
use bulkhead_engine::WatchOptions;
use bulkhead_policy::compile::FIREWALL_TABLE as TABLE;

use crate::common::*;

/// Runs `nft ARGS` inside the tenant's namespace (as the tenant would).
fn tenant_nft(ep: &Ep, args: &[&str]) {
    nft(&ep.ns_name, args);
}

/// bulkhead's table in the tenant's namespace, without stateful values
/// (counters), or `None` when it is not there.
fn listing(ep: &Ep) -> Option<String> {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ep.ns_name,
            "nft",
            "-s",
            "list",
            "table",
            "inet",
            TABLE,
        ])
        .output()
        .expect("run nft");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn blocked(a: &Ep, b: &Ep) -> bool {
    tcp_reaches(&a.ns, &b.ns, 23, b.addr(23)).is_none()
}

#[test]
fn a_tenant_that_rewrites_its_firewall_gets_it_back_within_a_second() {
    let Some(h) = Harness::new("tamp") else {
        return;
    };
    h.nat_network("n", "10.231.0.0/24", None);
    let a = h.endpoint("a", "n", &[], None);
    let b = h.endpoint("b", "n", &[], None);
    h.acl(&b, rule("block", "in", "tcp", Some("23"), None, 100));
    assert!(blocked(&a, &b), "the block rule does not block");

    // Weakened setup (no watcher): the tenant's flush opens the port.
    tenant_nft(&b, &["flush", "ruleset"]);
    assert!(listing(&b).is_none());
    assert!(
        !blocked(&a, &b),
        "the attack must succeed without the watcher, or this test proves nothing"
    );

    // bulkhead: reconcile puts the table back; the watcher keeps it there.
    h.engine.reconcile().expect("reconcile");
    let programmed = listing(&b).expect("table after reconcile");
    assert!(blocked(&a, &b));
    let _watcher = h
        .engine
        .watch(WatchOptions {
            drops: false,
            tamper: true,
            host: Some(h.host().to_owned()),
        })
        .expect("start the watcher");

    // Our own change (a new rule) is not tampering.
    let before = h.engine.events().last_seq();
    h.acl(&b, rule("block", "in", "tcp", Some("24"), None, 101));
    std::thread::sleep(Duration::from_millis(300));
    let own = h
        .engine
        .events()
        .since(before, |e| e.kind == EventKind::Tamper);
    assert!(
        own.is_empty(),
        "bulkhead's own commit taken for tampering: {own:?}"
    );
    let programmed_now = listing(&b).expect("table");
    assert_ne!(programmed, programmed_now);

    let attacks: [&[&str]; 3] = [
        &["flush", "ruleset"],
        &["delete", "table", "inet", TABLE],
        &["insert", "rule", "inet", TABLE, "input", "accept"],
    ];
    for attack in attacks {
        let before = h.engine.events().last_seq();
        let start = Instant::now();
        tenant_nft(&b, attack);
        let mut restored = None;
        while start.elapsed() < Duration::from_secs(1) {
            if listing(&b).as_deref() == Some(programmed_now.as_str()) {
                restored = Some(start.elapsed());
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let took = restored.unwrap_or_else(|| {
            panic!(
                "`nft {}`: firewall not restored within 1 s; now:\n{:?}",
                attack.join(" "),
                listing(&b)
            )
        });
        assert!(
            blocked(&a, &b),
            "`nft {}`: probe passes after restore",
            attack.join(" ")
        );
        let events = h
            .engine
            .events()
            .since(before, |e| e.namespace.as_deref() == Some("b"));
        let tamper = events
            .iter()
            .find(|e| e.kind == EventKind::Tamper)
            .unwrap_or_else(|| {
                panic!("no tamper event for `nft {}`: {events:?}", attack.join(" "))
            });
        assert_eq!(tamper.endpoint.as_deref(), Some("b"));
        assert!(
            tamper
                .detail
                .as_deref()
                .is_some_and(|d| d.contains("by pid")),
            "{tamper:?}"
        );
        assert!(
            events.iter().any(|e| e.kind == EventKind::Restore
                && e.detail
                    .as_deref()
                    .is_some_and(|d| d.starts_with("restored"))),
            "no restore event: {events:?}"
        );
        eprintln!("`nft {}`: restored in {took:?}", attack.join(" "));
    }
}
