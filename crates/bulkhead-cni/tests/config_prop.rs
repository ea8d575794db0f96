//! The fuzz target's check (`fuzz/fuzz_targets/cni_config.rs`) as
//! stable-Rust property tests, so CI exercises it without nightly: the
//! configuration reader never panics, for any command; every refusal is one
//! line with a configuration error code (1, 2, 6 or 7); and a configuration
//! it accepts, printed back as JSON, is accepted again as the same value.
//! Each property runs 10,000 cases, on arbitrary bytes and on generated
//! configurations that are mostly valid.

#[path = "support/config_check.rs"]
mod config_check;

use bulkhead_cni::config::BULKHEAD_KEYS;
use bulkhead_cni::env::Command;
use config_check::check;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use serde_json::{json, Map, Value};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 10_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A JSON value of the kinds a configuration field may hold (or not).
fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "[a-z0-9./:_-]{0,12}".prop_map(Value::from),
        proptest::sample::select(vec![
            "1.1.0",
            "1.0.0",
            "0.4.0",
            "bulkhead-cni",
            "nat",
            "10.9.0.0/24",
            "layered",
            "tcp",
        ])
        .prop_map(Value::from),
    ]
}

/// A `bulkhead` object: known and unknown keys with assorted values.
fn bulkhead_object() -> impl Strategy<Value = Value> {
    let mut known = BULKHEAD_KEYS.to_vec();
    known.push("other");
    let keys = proptest::sample::select(known);
    (
        "[a-z][a-z0-9-]{0,8}",
        proptest::collection::vec((keys, value()), 0..5),
    )
        .prop_map(|(network, extra)| {
            let mut m = Map::new();
            m.insert("network".into(), network.into());
            for (k, v) in extra {
                m.insert(k.into(), v);
            }
            Value::Object(m)
        })
}

/// A network configuration, mostly valid, with optional port mappings,
/// DNS, prevResult and GC attachments.
fn configuration() -> impl Strategy<Value = Vec<u8>> {
    let version = proptest::sample::select(vec!["1.1.0", "1.0.0", "0.4.0", "0.3.1", "9.9"]);
    let mapping = (
        any::<u16>(),
        any::<u16>(),
        proptest::sample::select(vec!["tcp", "udp", "x"]),
    )
        .prop_map(|(h, c, p)| json!({"hostPort": h, "containerPort": c, "protocol": p}));
    (
        version,
        "[a-z][a-z0-9._-]{0,8}",
        bulkhead_object(),
        proptest::option::of(proptest::collection::vec(mapping, 0..3)),
        proptest::option::of(value()),
        any::<bool>(),
    )
        .prop_map(|(v, name, bh, maps, extra, gc)| {
            let mut conf = json!({
                "cniVersion": v,
                "name": name,
                "type": "bulkhead-cni",
                "bulkhead": bh,
            });
            if let Some(maps) = maps {
                conf["runtimeConfig"] = json!({ "portMappings": maps });
            }
            if let Some(x) = extra {
                conf["dns"] = x;
            }
            if gc {
                conf["cni.dev/valid-attachments"] =
                    json!([{"containerID": "c1", "ifname": "eth0"}]);
            }
            serde_json::to_vec(&conf).expect("json")
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_stdin_is_refused_in_one_line_or_reread_the_same(
        c in 0usize..Command::ALL.len(),
        stdin in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        check(Command::ALL[c], &stdin);
    }

    #[test]
    fn generated_configurations_are_refused_in_one_line_or_reread_the_same(
        c in 0usize..Command::ALL.len(),
        stdin in configuration(),
    ) {
        check(Command::ALL[c], &stdin);
    }
}

/// The generator reaches the accepting path (so the round trip is checked,
/// not only the refusals).
#[test]
fn generated_configurations_are_often_accepted() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let accepted = (0..500)
        .filter(|_| {
            let stdin = configuration()
                .new_tree(&mut runner)
                .expect("tree")
                .current();
            check(Command::Add, &stdin)
        })
        .count();
    assert!(accepted > 50, "only {accepted} of 500 accepted");
}

/// Found by the fuzz target: an unknown key holding newlines. The
/// `ConfigError` text repeats the key as given; the runtime still gets one
/// line (code 2).
#[test]
fn an_unknown_key_with_newlines_is_refused_in_one_line() {
    let stdin = br#"{"cniVersion":"1.0.0","name":"n1","type":"bulkhead-cni","bulkhead":{"networktMapping3nameservers\n\n\n":["10.0.0.1"]}}"#;
    assert!(!check(Command::Add, stdin));
}
