//! `bulkhead-bench cluster`: clusters on etcd (issue 15 item 8).
//!
//! - **Convergence**: time from `endpoint create` on node A (the API call
//!   starts the clock) until a UDP datagram from an endpoint on node B gets
//!   through to the new endpoint, p50/p99 over `--convergence` endpoints
//!   (target p50 ≤ 100 ms). The receiver listens in the new endpoint's
//!   namespace before the create; once the create returns, the prober
//!   sends a marked datagram every millisecond until one arrives (5 s
//!   limit). The prober's ARP retransmission is 10 ms (a sysctl in its own
//!   namespace): a first packet sent before node B has the neighbour entry
//!   otherwise waits out the kernel's 1 s ARP back-off, which would
//!   measure the client's kernel, not bulkhead.
//! - **Create latency under watch load**: `--endpoints` endpoints created
//!   one after another on node A, (1) alone, the other nodes idle but
//!   watching, and (2) on a fresh cluster while every other node creates as
//!   many at the same time, so node A's watch programs theirs while it
//!   creates its own; p50/p99 of A's `endpoint create` calls and the ratio
//!   (target ≤ 1.2×). All nodes share this machine's CPUs, so (2) also
//!   carries the other daemons' work.
//!
//! Everything runs in throwaway namespaces (`world`); release builds of
//! `bulkheadd` and this bench sit side by side in `target/release`.

mod publisher;
mod world;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use bulkhead_api::{Client, EndpointSpec, NamespaceSpec, NetworkSpec};
use bulkhead_dataplane::netns;

use crate::world::quantile;
use world::{Cluster, UPLINK};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Endpoints whose convergence is measured (created on node A, probed
    /// from node B).
    #[arg(long, default_value_t = 200)]
    pub convergence: usize,
    /// Endpoints per node in the create-latency phases (0: skip them).
    #[arg(long, default_value_t = 1000)]
    pub endpoints: usize,
    /// Nodes (at least 2).
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
}

type Rt = tokio::runtime::Runtime;

fn runtime() -> Result<Rt, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn p50_p99(v: &[f64]) -> (f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    (quantile(&s, 0.5), quantile(&s, 0.99))
}

/// The overlay network `ov` (a /16: room for every phase's endpoints).
fn overlay(rt: &Rt, c: &Client) -> Result<(), String> {
    rt.block_on(c.network_create(NetworkSpec {
        name: "ov".into(),
        driver: "overlay".into(),
        subnets: vec!["10.220.0.0/16".into()],
        uplink: Some(UPLINK.into()),
        vni: Some("4220".into()),
        ..Default::default()
    }))
    .map(drop)
    .map_err(|e| format!("create overlay: {e}"))
}

/// Waits until `c` lists network `ov` (it came through the watch).
fn wait_network(rt: &Rt, c: &Client) -> Result<(), String> {
    let until = Instant::now() + Duration::from_secs(20);
    while !rt
        .block_on(c.network_list())
        .is_ok_and(|l| l.iter().any(|n| n.name == "ov"))
    {
        if Instant::now() > until {
            return Err("network ov never reached every node".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// A namespace and an endpoint `name` on `ov`; the create call's latency
/// (ms) and the endpoint's address.
fn endpoint(rt: &Rt, c: &Client, name: &str) -> Result<(f64, Ipv4Addr), String> {
    rt.block_on(c.namespace_create(NamespaceSpec {
        name: name.into(),
        ..Default::default()
    }))
    .map_err(|e| format!("namespace {name}: {e}"))?;
    let t = Instant::now();
    let ep = rt
        .block_on(c.endpoint_create(EndpointSpec {
            name: name.into(),
            network: "ov".into(),
            namespace: name.into(),
            ..Default::default()
        }))
        .map_err(|e| format!("endpoint {name}: {e}"))?;
    let took = ms(t.elapsed());
    let ip = ep.ip_address.split('/').next().unwrap_or_default();
    let ip = ip
        .parse()
        .map_err(|e| format!("endpoint {name} address {ip:?}: {e}"))?;
    Ok((took, ip))
}

/// Convergence figures (ms) and the endpoints that never converged.
fn convergence(n: usize, nodes: usize) -> Result<(Vec<f64>, usize), String> {
    let cluster = Cluster::start(nodes)?;
    let rt = runtime()?;
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let (ca, cb) = (Client::new(a.socket()), Client::new(b.socket()));
    overlay(&rt, &ca)?;
    wait_network(&rt, &cb)?;
    endpoint(&rt, &cb, "probe")?;
    let probe_ns = b.netns_path("probe");
    let probe_name = probe_ns
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned();
    let out = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &probe_name,
            "sysctl",
            "-qw",
            "net.ipv4.neigh.eth0.retrans_time_ms=10",
        ])
        .output()
        .map_err(|e| format!("sysctl: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "sysctl in the prober: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let tx = netns::run_in(Some(&probe_ns), || UdpSocket::bind(("0.0.0.0", 0)))
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("prober socket: {e}"))?;
    let (mut times, mut missed) = (Vec::with_capacity(n), 0);
    for i in 0..n {
        let name = format!("v{i}");
        rt.block_on(ca.namespace_create(NamespaceSpec {
            name: name.clone(),
            ..Default::default()
        }))
        .map_err(|e| format!("namespace {name}: {e}"))?;
        let rx = netns::run_in(Some(&a.netns_path(&name)), || {
            UdpSocket::bind(("0.0.0.0", 9000))
        })
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("receiver: {e}"))?;
        rx.set_nonblocking(true).map_err(|e| e.to_string())?;
        let marker = format!("bhb-conv-{i}");
        let t = Instant::now();
        let ep = rt
            .block_on(ca.endpoint_create(EndpointSpec {
                name: name.clone(),
                network: "ov".into(),
                namespace: name.clone(),
                ..Default::default()
            }))
            .map_err(|e| format!("endpoint {name}: {e}"))?;
        let ip: Ipv4Addr = ep
            .ip_address
            .split('/')
            .next()
            .unwrap_or_default()
            .parse()
            .map_err(|e| format!("address of {name}: {e}"))?;
        let to = SocketAddr::new(ip.into(), 9000);
        let mut buf = [0u8; 64];
        let got = loop {
            let _ = tx.send_to(marker.as_bytes(), to);
            std::thread::sleep(Duration::from_millis(1));
            if matches!(rx.recv_from(&mut buf), Ok((k, _)) if &buf[..k] == marker.as_bytes()) {
                break Some(ms(t.elapsed()));
            }
            if t.elapsed() > Duration::from_secs(5) {
                break None;
            }
        };
        match got {
            Some(v) => times.push(v),
            None => missed += 1,
        }
    }
    Ok((times, missed))
}

/// What else happens while node A creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Load {
    /// Nothing: the other nodes idle, watching.
    Idle,
    /// Every other node creates as many endpoints at the same time.
    Daemons,
    /// The light publisher writes as many remote endpoints (per A create,
    /// one per other node) straight into etcd.
    Publisher,
}

/// Node A's create latencies (ms) for `n` endpoints under `load`; and the
/// CPU time node A's daemon used meanwhile (ms).
fn create_latency(n: usize, nodes: usize, load: Load) -> Result<(Vec<f64>, f64), String> {
    let cluster = Cluster::start(nodes)?;
    let rt = runtime()?;
    let clients: Vec<Client> = cluster
        .nodes
        .iter()
        .map(|d| Client::new(d.socket()))
        .collect();
    overlay(&rt, &clients[0])?;
    for c in &clients {
        wait_network(&rt, c)?;
    }
    let cpu0 = cluster.nodes[0].cpu_ms().unwrap_or(f64::NAN);
    let mine = std::thread::scope(|s| {
        let (tick, ticks) = std::sync::mpsc::channel::<()>();
        let per_tick = u32::try_from(nodes - 1).unwrap_or(1);
        // From node B's host namespace: etcd is on the underlay only.
        let on_underlay = cluster.nodes[1].host_path();
        let publisher = (load == Load::Publisher)
            .then(|| s.spawn(move || publisher::run(on_underlay, &ticks, per_tick)));
        let others: Vec<_> = if load == Load::Daemons {
            clients[1..]
                .iter()
                .enumerate()
                .map(|(k, c)| {
                    // The other nodes' failures are counted, not fatal:
                    // they are the load, node A's creates the measurement.
                    s.spawn(move || -> Result<Vec<String>, String> {
                        let rt = runtime()?;
                        let mut failed = Vec::new();
                        for i in 0..n {
                            if let Err(e) = endpoint(&rt, c, &format!("o{k}x{i}")) {
                                failed.push(e);
                            }
                        }
                        Ok(failed)
                    })
                })
                .collect()
        } else {
            Vec::new()
        };
        let mut mine = Vec::with_capacity(n);
        for i in 0..n {
            mine.push(endpoint(&rt, &clients[0], &format!("a{i}"))?.0);
            let _ = tick.send(());
        }
        drop(tick);
        if let Some(p) = publisher {
            p.join().map_err(|_| "the publisher panicked")??;
        }
        for o in others {
            let failed = o.join().map_err(|_| "a creating thread panicked")??;
            if let Some(first) = failed.first() {
                eprintln!(
                    "bulkhead-bench: {} of another node's {n} creates failed, first: {first}",
                    failed.len()
                );
            }
        }
        Ok::<_, String>(mine)
    })?;
    // Node A's watch may still be programming the last remote endpoints.
    std::thread::sleep(Duration::from_secs(1));
    let cpu = cluster.nodes[0].cpu_ms().unwrap_or(f64::NAN) - cpu0;
    if load == Load::Publisher {
        // The made-up nodes' endpoints must have reached A's kernel, or the
        // phase measured nothing.
        let host = cluster.nodes[0].host_path().display().to_string();
        let out = std::process::Command::new("nsenter")
            .args([&format!("--net={host}"), "ip", "neigh", "show"])
            .output()
            .map_err(|e| format!("ip neigh: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let programmed = text.lines().filter(|l| l.starts_with("10.220.20")).count();
        let want = n * (nodes - 1);
        if programmed < want {
            return Err(format!(
                "node A programmed {programmed} of the publisher's {want} endpoints"
            ));
        }
    }
    Ok((mine, cpu))
}

pub fn run(args: &Args) -> Result<(), String> {
    if args.nodes < 2 {
        return Err(format!(
            "--nodes {}: at least 2 (A creates, B probes)",
            args.nodes
        ));
    }
    println!(
        "## cluster: {} nodes on one etcd (bulkheadd --etcd), overlay VXLAN",
        args.nodes
    );
    if args.convergence > 0 {
        let (times, missed) = convergence(args.convergence, args.nodes)?;
        let (p50, p99) = p50_p99(&times);
        println!();
        println!("| convergence (create on A → datagram from B arrives) | n | p50 | p99 | max | not converged in 5 s |");
        println!("|---|---|---|---|---|---|");
        let max = times.iter().copied().fold(0.0, f64::max);
        println!("| endpoint create → reachable | {} | {p50:.1} ms | {p99:.1} ms | {max:.1} ms | {missed} |", times.len());
    }
    if args.endpoints > 0 {
        let (alone, cpu_alone) = create_latency(args.endpoints, args.nodes, Load::Idle)?;
        let (loaded, cpu_loaded) = create_latency(args.endpoints, args.nodes, Load::Daemons)?;
        let (light, cpu_light) = create_latency(args.endpoints, args.nodes, Load::Publisher)?;
        let (a50, a99) = p50_p99(&alone);
        let (l50, l99) = p50_p99(&loaded);
        let (p50, p99) = p50_p99(&light);
        println!();
        println!(
            "| node A: {} endpoint creates | p50 | p99 |",
            args.endpoints
        );
        println!("|---|---|---|");
        println!("| others idle (watching) | {a50:.2} ms | {a99:.2} ms |");
        println!(
            "| others creating {} each at the same time | {l50:.2} ms | {l99:.2} ms |",
            args.endpoints
        );
        println!("| ratio | {:.2}× | {:.2}× |", l50 / a50, l99 / a99);
        println!(
            "| as many remote endpoints written straight to etcd meanwhile | {p50:.2} ms | {p99:.2} ms |"
        );
        println!("| ratio | {:.2}× | {:.2}× |", p50 / a50, p99 / a99);
        let remote = args.endpoints * (args.nodes - 1);
        println!();
        println!(
            "node A's bulkheadd CPU: {cpu_alone:.0} ms alone, {cpu_loaded:.0} ms with the others' \
             {remote} endpoints coming through its watch: {:.2} ms per remote endpoint",
            (cpu_loaded - cpu_alone) / remote as f64
        );
        println!(
            "node A's bulkheadd CPU with {remote} remote endpoints from the light publisher: \
             {cpu_light:.0} ms: {:.2} ms per remote endpoint",
            (cpu_light - cpu_alone) / remote as f64
        );
    }
    Ok(())
}
