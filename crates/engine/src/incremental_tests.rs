//! The incremental switch-table path ([`Engine::program_switch_endpoint`])
//! against a full recompile ([`crate::tables::switch_tables`]) on random
//! sequences of operations, on the fake kernel and the memory store. (In
//! debug builds every incremental step also asserts this itself.)

use std::sync::Arc;

use bulkhead_dataplane::fake::FakeKernel;
use bulkhead_model::{AclRuleSpec, EndpointSpec, NamespaceSpec, NetworkSpec};
use bulkhead_store::MemoryStore;

use crate::tables::switch_tables;
use crate::{Config, Engine};

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

fn check(engine: &Engine) {
    let inner = engine.lock();
    let full = switch_tables(&inner.state).expect("full compile");
    assert_eq!(
        inner.programmed.switch,
        Some(full),
        "incremental != full recompile"
    );
}

fn spec(rng: &mut Rng, i: u64) -> AclRuleSpec {
    AclRuleSpec {
        id: Some(format!("x{i}")),
        action: if rng.below(2) == 0 { "allow" } else { "block" }.into(),
        direction: if rng.below(2) == 0 { "in" } else { "out" }.into(),
        protocol: Some("tcp".into()),
        remote_addresses: Some(format!("10.{}.{}.0/24", rng.below(200), rng.below(250))),
        local_ports: Some(format!("{}", 1 + rng.below(60000))),
        rule_type: Some(if rng.below(3) == 0 { "switch" } else { "host" }.into()),
        priority: Some(format!("{}", 100 + rng.below(1000))),
        ..Default::default()
    }
}

#[test]
fn incremental_switch_tables_equal_full_recompile() {
    for seed in [1u64, 7, 42] {
        let mut rng = Rng(seed * 0x9e37_79b9 + 1);
        let (engine, _) = Engine::open(
            Arc::new(FakeKernel::new()),
            Arc::new(MemoryStore::new()),
            Config::default(),
        )
        .expect("open");
        for (n, subnet) in [("n0", "10.70.0.0/16"), ("n1", "10.71.0.0/24")] {
            engine
                .create_network(NetworkSpec {
                    name: n.into(),
                    driver: "nat".into(),
                    subnets: vec![subnet.into()],
                    ..Default::default()
                })
                .expect("network");
        }
        let mut live: Vec<String> = Vec::new();
        let mut next = 0u64;
        for step in 0..120 {
            match rng.below(10) {
                0..=4 => {
                    next += 1;
                    let name = format!("e{next}");
                    engine
                        .create_namespace(NamespaceSpec {
                            name: name.clone(),
                            isolation: (rng.below(5) == 0).then(|| "vm".into()),
                            ..NamespaceSpec::default()
                        })
                        .expect("namespace");
                    let publish = if rng.below(3) == 0 {
                        vec![format!("{}:80", 20_000 + next)]
                    } else {
                        vec![]
                    };
                    engine
                        .create_endpoint(EndpointSpec {
                            name: name.clone(),
                            network: format!("n{}", rng.below(2)),
                            namespace: name.clone(),
                            publish,
                            ..Default::default()
                        })
                        .expect("endpoint");
                    live.push(name);
                }
                5..=6 if !live.is_empty() => {
                    let i = rng.below(live.len() as u64) as usize;
                    let name = live.swap_remove(i);
                    engine.delete_endpoint(&name).expect("delete endpoint");
                    engine.delete_namespace(&name).expect("delete namespace");
                }
                7 if !live.is_empty() => {
                    let name = &live[rng.below(live.len() as u64) as usize];
                    let s = spec(&mut rng, step);
                    // Switch rules exist only on vm endpoints: a refusal
                    // is a valid outcome and must change nothing.
                    let _ = engine.add_acl(name, s);
                }
                8 if !live.is_empty() => {
                    let name = &live[rng.below(live.len() as u64) as usize];
                    let acls = engine.acls(name).expect("acls");
                    if let Some(r) = acls.first() {
                        engine.remove_acl(name, r.id.as_str()).expect("remove acl");
                    }
                }
                9 if !live.is_empty() => {
                    let name = &live[rng.below(live.len() as u64) as usize];
                    let specs = (0..rng.below(6)).map(|k| spec(&mut rng, step * 100 + k));
                    let _ = engine.replace_acls(name, specs.collect());
                }
                _ => {}
            }
            check(&engine);
        }
    }
}

#[test]
fn replace_acls_is_validated_whole_and_names_rules() {
    let (engine, _) = Engine::open(
        Arc::new(FakeKernel::new()),
        Arc::new(MemoryStore::new()),
        Config::default(),
    )
    .expect("open");
    engine
        .create_network(NetworkSpec {
            name: "n".into(),
            driver: "nat".into(),
            subnets: vec!["10.72.0.0/24".into()],
            ..Default::default()
        })
        .expect("network");
    engine
        .create_namespace(NamespaceSpec {
            name: "a".into(),
            isolation: None,
            ..NamespaceSpec::default()
        })
        .expect("namespace");
    engine
        .create_endpoint(EndpointSpec {
            name: "a".into(),
            network: "n".into(),
            namespace: "a".into(),
            ..Default::default()
        })
        .expect("endpoint");
    let mut rng = Rng(3);
    let host_only = |mut s: AclRuleSpec| {
        s.rule_type = Some("host".into());
        s
    };
    let mut specs: Vec<AclRuleSpec> = (0..3).map(|i| host_only(spec(&mut rng, i))).collect();
    specs[1].id = None;
    let rules = engine.replace_acls("a", specs.clone()).expect("replace");
    assert_eq!(rules.len(), 3);
    assert_eq!(rules[1].id.as_str(), "rule-1");
    // One bad rule: nothing changes.
    let mut bad = specs.clone();
    bad[2].local_ports = Some("not-a-port".into());
    assert!(engine.replace_acls("a", bad).is_err());
    assert_eq!(engine.acls("a").expect("acls").len(), 3);
    // Duplicate ids are refused.
    let mut dup = specs;
    dup[0].id = Some("x1".into());
    dup[2].id = Some("x1".into());
    assert!(engine.replace_acls("a", dup).is_err());
    assert!(engine.replace_acls("a", vec![]).expect("clear").is_empty());
    assert!(engine.acls("a").expect("acls").is_empty());
    check(&engine);
}
