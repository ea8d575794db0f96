//! `Engine::trace` on the fake kernel: how a query's strings resolve
//! (endpoint, host, outside; `IP:PORT`; `--source-ip`), and that bad input
//! is one error naming the field.

use std::sync::Arc;

use bulkhead_dataplane::fake::FakeKernel;
use bulkhead_model::{EndpointSpec, NamespaceSpec, NetworkSpec};
use bulkhead_policy::Verdict;
use bulkhead_store::MemoryStore;

use super::{Target, TraceSpec};
use crate::{Config, Engine};

fn engine() -> Engine {
    let (e, _) = Engine::open(
        Arc::new(FakeKernel::new()),
        Arc::new(MemoryStore::new()),
        Config::default(),
    )
    .expect("open");
    for (n, subnet) in [("n1", "10.1.0.0/24"), ("n2", "10.2.0.0/24")] {
        e.create_network(NetworkSpec {
            name: n.into(),
            driver: "nat".into(),
            subnets: vec![subnet.into()],
            ..Default::default()
        })
        .expect("network");
    }
    for (name, net, publish) in [("ea", "n1", "8080:80"), ("eb", "n2", "8081:80")] {
        e.create_namespace(NamespaceSpec {
            name: name.into(),
            isolation: None,
            ..NamespaceSpec::default()
        })
        .expect("namespace");
        e.create_endpoint(EndpointSpec {
            name: name.into(),
            network: net.into(),
            namespace: name.into(),
            publish: vec![publish.into()],
            ..Default::default()
        })
        .expect("endpoint");
    }
    e
}

/// The example: two nat networks, `trace --from ea --to eb`.
#[test]
fn endpoints_of_two_networks_trace_as_isolated() {
    let e = engine();
    let t = e
        .trace(&TraceSpec::new("ea", "eb", "tcp", Some("80")))
        .unwrap();
    assert_eq!(t.verdict, Verdict::Block);
    assert_eq!(t.decider().unwrap().rule, "networks are isolated");
    // From an address: an endpoint's address is that endpoint.
    let q = TraceSpec::new(&t.from.to_string(), "eb", "tcp", Some("80"));
    assert_eq!(e.trace(&q).unwrap().steps, t.steps);
    // A spoofed source is dropped at the port.
    let mut q = TraceSpec::new("ea", "eb", "udp", Some("53"));
    q.source_ip = Some("10.1.0.200".into());
    let t = e.trace(&q).unwrap();
    assert_eq!(t.decider().unwrap().rule, "switch:anti-spoofing");
    // The fake kernel reports no host addresses: a nat network's gateway is
    // still the host's own, so its published port captures the packet.
    let t = e
        .trace(&TraceSpec::new("192.0.2.9", "10.1.0.1:8080", "tcp", None))
        .unwrap();
    assert_eq!(
        (t.target, t.delivered_port),
        (Target::Endpoint("ea".into()), Some(80))
    );
    // Any other address is not the host's: nothing is captured.
    let t = e
        .trace(&TraceSpec::new("ea", "198.51.100.7:8081", "tcp", None))
        .unwrap();
    assert_eq!(t.target, Target::Outside);
}

#[test]
fn bad_queries_name_the_field() {
    let e = engine();
    let err = |q: TraceSpec| e.trace(&q).unwrap_err().to_string();
    let mut q = TraceSpec::new("ea", "eb", "tcp", Some("80"));
    q.to = "nowhere".into();
    assert!(err(q).contains("to"), "to");
    let q = TraceSpec::new("ea", "10.2.0.2:80", "tcp", Some("81"));
    assert!(err(q).contains("port"), "port conflict");
    let mut q = TraceSpec::new("192.0.2.9", "eb", "tcp", Some("80"));
    q.source_ip = Some("10.9.9.9".into());
    assert!(
        err(q).contains("source-ip"),
        "source-ip without an endpoint"
    );
    let q = TraceSpec::new("ea", "eb", "icmp", Some("80"));
    assert!(err(q).contains("port"), "port with icmp");
    let q = TraceSpec::new("ea", "eb", "any", None);
    assert!(err(q).contains("protocol"), "any");
    let q = TraceSpec::new("ea", "::1", "tcp", Some("80"));
    assert!(err(q).contains("to"), "family");
}
