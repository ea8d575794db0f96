//! `bulkhead demo`: the whole tour on one machine, as root, with no set-up
//! (spec §8). It is the one command that embeds the service instead of
//! talking to bulkheadd: it opens the engine in-process on a temporary state
//! directory, inside a throwaway host namespace, so the machine's own
//! network is never touched. It creates a nat network and two endpoints,
//! sends real probes for each protocol class both ways, prints the verdict
//! matrix with the enforcement point and rule `trace` names for each cell
//! (and whether the kernel agreed), shows a custom ACL taking effect, and
//! removes everything — also when a step fails.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bulkhead_dataplane::conntrack::Conntrack;
use bulkhead_dataplane::host::HostKernel;
use bulkhead_dataplane::netns::NetnsGuard;
use bulkhead_dataplane::probe::{arrives, ProbeKind};
use bulkhead_engine::{step_label, Config, Engine, TraceReport, TraceSpec};
use bulkhead_model::{AclRuleSpec, EndpointSpec, NamespaceSpec, NetworkSpec};
use bulkhead_policy::Verdict;
use bulkhead_store::RedbStore;

/// Why the demo stopped.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("demo needs root: it creates network namespaces (run it with sudo)")]
    NotRoot,
    #[error("demo: {0}")]
    Step(String),
}

fn step<T, E: std::fmt::Display>(what: &str, r: Result<T, E>) -> Result<T, DemoError> {
    r.map_err(|e| DemoError::Step(format!("{what}: {e}")))
}

/// The probes of the matrix: one per protocol class of spec §4.
const PROBES: [(&str, ProbeKind); 7] = [
    ("tcp/80", ProbeKind::Tcp(80)),
    ("udp/53", ProbeKind::Udp(53)),
    ("icmp", ProbeKind::Icmp),
    ("igmp", ProbeKind::Raw(2)),
    ("gre", ProbeKind::Raw(47)),
    ("sctp", ProbeKind::Raw(132)),
    ("proto 253", ProbeKind::Raw(253)),
];

struct Side<'a> {
    name: &'a str,
    ip: Ipv4Addr,
    netns: PathBuf,
}

fn v4(ip: IpAddr) -> Result<Ipv4Addr, DemoError> {
    match ip {
        IpAddr::V4(a) => Ok(a),
        IpAddr::V6(_) => Err(DemoError::Step("expected an IPv4 endpoint".into())),
    }
}

/// One cell: what the kernel did, what trace says, and who decided.
fn cell(
    engine: &Engine,
    from: &Side<'_>,
    to: &Side<'_>,
    kind: ProbeKind,
) -> Result<(String, bool), DemoError> {
    // Each cell is an unsolicited packet: forget what earlier probes left in
    // connection tracking, or a reply-direction probe would ride on it.
    for ns in [&from.netns, &to.netns] {
        step(
            "forget connections",
            Conntrack::open(Some(ns)).and_then(|mut c| c.delete_by_addr(IpAddr::V4(from.ip))),
        )?;
    }
    let arrived = step("probe", arrives(&from.netns, &to.netns, to.ip, kind))?;
    let port = kind.port().map(|p| p.to_string());
    let t: TraceReport = step(
        "trace",
        engine.trace(&TraceSpec::new(
            from.name,
            to.name,
            &kind.protocol().to_string(),
            port.as_deref(),
        )),
    )?;
    let allowed = t.verdict == Verdict::Allow;
    let decider = t
        .decider()
        .map(step_label)
        .unwrap_or_else(|| "no enforcement point".into());
    let observed = if arrived { "allow" } else { "block" };
    let agree = arrived == allowed;
    Ok((
        format!(
            "{observed:<5} {decider}{}",
            if agree { "" } else { "  (trace disagrees!)" }
        ),
        agree,
    ))
}

fn matrix(engine: &Engine, a: &Side<'_>, b: &Side<'_>) -> Result<bool, DemoError> {
    let head_ab = format!("{} -> {}", a.name, b.name);
    println!("  {:<10} {:<58} {} -> {}", "PROBE", head_ab, b.name, a.name);
    let mut all_agree = true;
    for (label, kind) in PROBES {
        let (ab, ok1) = cell(engine, a, b, kind)?;
        let (ba, ok2) = cell(engine, b, a, kind)?;
        all_agree &= ok1 && ok2;
        println!("  {label:<10} {ab:<58} {ba}");
    }
    Ok(all_agree)
}

fn tour(engine: &Engine) -> Result<bool, DemoError> {
    let network = step(
        "create network",
        engine.create_network(NetworkSpec {
            name: "demo".into(),
            driver: "nat".into(),
            subnets: vec!["10.201.0.0/24".into()],
            ..Default::default()
        }),
    )?;
    println!(
        "network demo: nat, subnet {}, gateway {}",
        network.subnets[0],
        network.gateway.map_or("-".into(), |g| g.to_string())
    );
    let mut sides = Vec::new();
    for (ep, ns) in [("client", "alpha"), ("web", "beta")] {
        let namespace = step(
            "create namespace",
            engine.create_namespace(NamespaceSpec {
                name: ns.into(),
                ..NamespaceSpec::default()
            }),
        )?;
        let publish = if ep == "web" {
            vec!["8080:80".into()]
        } else {
            vec![]
        };
        let spec = EndpointSpec {
            name: ep.into(),
            network: "demo".into(),
            namespace: ns.into(),
            publish,
            ..Default::default()
        };
        let e = step("create endpoint", engine.create_endpoint(spec))?;
        println!(
            "endpoint {ep}: {} in namespace {ns} (compartment {}), switch port {}",
            e.ip_address, namespace.compartment_id, e.switch_port
        );
        let netns = step(
            "namespace path",
            namespace
                .netns_path
                .ok_or("a process namespace without a path"),
        )?;
        sides.push((ep, v4(e.ip_address.addr)?, netns));
    }
    let side = |i: usize| Side {
        name: sides[i].0,
        ip: sides[i].1,
        netns: sides[i].2.clone(),
    };
    let (client, web) = (side(0), side(1));
    println!("\nverdict matrix, default profile `current` (real packets; the deciding point and rule from trace):");
    let mut agree = matrix(engine, &client, &web)?;
    let rule = AclRuleSpec {
        id: Some("deny-client-web".into()),
        action: "block".into(),
        direction: "in".into(),
        protocol: Some("tcp".into()),
        local_ports: Some("80".into()),
        remote_addresses: Some(client.ip.to_string()),
        priority: Some("100".into()),
        ..Default::default()
    };
    step("add acl", engine.add_acl("web", rule))?;
    println!("\nafter `acl add web --direction in --action block --protocol tcp --local-ports 80 --remote-addresses {} --id deny-client-web`:", client.ip);
    agree &= matrix(engine, &client, &web)?;
    Ok(agree)
}

fn teardown(engine: &Engine) {
    for e in ["client", "web"] {
        let _ = engine.delete_endpoint(e);
    }
    for n in ["alpha", "beta"] {
        let _ = engine.delete_namespace(n);
    }
    let _ = engine.delete_network("demo");
}

/// Deletes the namespace pins this demo made, whatever state it stopped in.
fn remove_pins(prefix: &str) {
    for name in bulkhead_dataplane::netns::list(prefix).unwrap_or_default() {
        let _ = bulkhead_dataplane::netns::delete(&name);
    }
}

/// Runs the tour.
pub fn run() -> Result<(), DemoError> {
    if !nix::unistd::geteuid().is_root() {
        return Err(DemoError::NotRoot);
    }
    let pid = std::process::id();
    let prefix = format!("bhdemo{pid}-");
    let host = step(
        "create host namespace",
        NetnsGuard::create(&format!("bhdemo{pid}")),
    )?;
    let state = std::env::temp_dir().join(format!("bulkhead-demo-{pid}"));
    let result = with_engine(host.path(), &state, &prefix);
    remove_pins(&prefix);
    let _ = std::fs::remove_dir_all(&state);
    drop(host);
    match result? {
        true => println!(
            "\nkernel and trace agreed on every cell; everything the demo made is removed."
        ),
        false => {
            return Err(DemoError::Step(
                "the kernel and trace disagreed on some cells (see above)".into(),
            ))
        }
    }
    Ok(())
}

fn with_engine(host: &Path, state: &Path, prefix: &str) -> Result<bool, DemoError> {
    println!(
        "bulkhead demo: an in-process service in the throwaway host namespace {}",
        host.display()
    );
    let kernel = step("open kernel", HostKernel::open(Some(host)))?;
    let store = step("open store", RedbStore::open(state))?;
    let config = Config {
        netns_prefix: prefix.to_owned(),
    };
    let (engine, _) = step(
        "start engine",
        Engine::open(Arc::new(kernel), Arc::new(store), config),
    )?;
    let result = tour(&engine);
    teardown(&engine);
    result
}
