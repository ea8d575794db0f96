//! `bulkhead-bench endpoints`: endpoint create/delete latency on the real
//! kernel against the targets (spec: create p50 ≤ 2 ms, p99 ≤ 10 ms; delete
//! p50 ≤ 2 ms; 1,000 endpoints ≤ 2.5 s in total and flat: the median of the
//! last 100 creates ≤ 1.5× the median of the first 100).
//!
//! For each count N, each driver (`--drivers`, default all five) and each
//! store (redb, the daemon's configuration with fsync; memory, to show the
//! store's share), a fresh world (see [`crate::world`]): one network (/16)
//! of that driver, N namespaces, one endpoint in each. The drivers other
//! than nat get an uplink made for the run inside the throwaway host
//! namespace (a veth pair `bhbup0`/`bhbup1`, nothing else attached). A create is timed from the engine call to its return (API to done;
//! the namespace is made beforehand, untimed), likewise each delete (all
//! endpoints first; the namespaces are removed afterwards, untimed).

use std::time::Instant;

use bulkhead_model::{EndpointSpec, NamespaceSpec, NetworkSpec};

use crate::world::{median, quantile, rss_kib, StoreKind, World};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Endpoint counts to run, comma separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 100, 1000])]
    counts: Vec<usize>,
    /// Stores to run with (redb: fsync'd file, the daemon's; memory).
    #[arg(long, value_delimiter = ',', default_values_t = ["redb".to_string(), "memory".to_string()])]
    stores: Vec<String>,
    /// Network drivers to run (nat, transparent, l2bridge, l2tunnel, overlay).
    #[arg(long, value_delimiter = ',', default_values_t = DRIVERS.map(String::from))]
    drivers: Vec<String>,
}

const DRIVERS: [&str; 5] = ["nat", "transparent", "l2bridge", "l2tunnel", "overlay"];

/// The benchmark's network of `driver`, with an uplink for the L2 drivers.
fn network(world: &World, driver: &str) -> Result<NetworkSpec, String> {
    let mut spec = NetworkSpec {
        name: "bench".into(),
        driver: driver.into(),
        subnets: vec!["10.200.0.0/16".into()],
        ..Default::default()
    };
    if driver != "nat" {
        let h = world.host_name();
        crate::world::run(&[
            "-n", h, "link", "add", "bhbup0", "type", "veth", "peer", "name", "bhbup1",
        ])?;
        crate::world::run(&["-n", h, "addr", "add", "10.200.255.253/16", "dev", "bhbup0"])?;
        crate::world::run(&["-n", h, "link", "set", "bhbup0", "up"])?;
        crate::world::run(&["-n", h, "link", "set", "bhbup1", "up"])?;
        spec.uplink = Some("bhbup0".into());
        spec.gateway = Some("10.200.255.254".into());
    }
    if driver == "overlay" {
        spec.vni = Some("4242".into());
    }
    Ok(spec)
}

struct Row {
    n: usize,
    driver: String,
    store: StoreKind,
    create: Vec<f64>,
    delete: Vec<f64>,
    total_create: f64,
    rss_before: u64,
    rss_after: u64,
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn one(n: usize, driver: &str, store: StoreKind) -> Result<Row, String> {
    let world = World::new("ep", store)?;
    let e = &world.engine;
    let rss_before = rss_kib();
    e.create_network(network(&world, driver)?)
        .map_err(|e| format!("create {driver} network: {e}"))?;
    let mut create = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("e{i}");
        e.create_namespace(NamespaceSpec {
            name: name.clone(),
            isolation: None,
            ..NamespaceSpec::default()
        })
        .map_err(|e| format!("create namespace {name}: {e}"))?;
        let spec = EndpointSpec {
            name: name.clone(),
            network: "bench".into(),
            namespace: name.clone(),
            ..Default::default()
        };
        let t = Instant::now();
        e.create_endpoint(spec)
            .map_err(|e| format!("create endpoint {name}: {e}"))?;
        create.push(ms(t.elapsed()));
    }
    let total_create = create.iter().sum();
    let rss_after = rss_kib();
    let mut delete = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("e{i}");
        let t = Instant::now();
        e.delete_endpoint(&name)
            .map_err(|e| format!("delete endpoint {name}: {e}"))?;
        delete.push(ms(t.elapsed()));
    }
    // Namespaces last: the kernel tears a namespace down in a background
    // worker that holds the rtnl lock, which would land on the next timed
    // delete and measure the kernel's namespace cleanup instead.
    for i in 0..n {
        let name = format!("e{i}");
        e.delete_namespace(&name)
            .map_err(|e| format!("delete namespace {name}: {e}"))?;
    }
    // Nothing left behind: no pins with our prefix, no switch ports.
    let left = bulkhead_dataplane::netns::list(&world.prefix).map_err(|e| e.to_string())?;
    if !left.is_empty() {
        eprintln!("warning: {} namespaces left behind", left.len());
    }
    Ok(Row {
        n,
        driver: driver.to_owned(),
        store,
        create,
        delete,
        total_create,
        rss_before,
        rss_after,
    })
}

pub fn run(args: &Args) -> Result<(), String> {
    let mut stores = Vec::new();
    for s in &args.stores {
        stores.push(match s.as_str() {
            "redb" => StoreKind::Redb,
            "memory" => StoreKind::Memory,
            other => return Err(format!("unknown store {other:?} (redb, memory)")),
        });
    }
    for d in &args.drivers {
        if !DRIVERS.contains(&d.as_str()) {
            return Err(format!("unknown driver {d:?} ({})", DRIVERS.join(", ")));
        }
    }
    println!("endpoint create/delete on the real kernel (one namespace per endpoint, /16 network)");
    println!(
        "targets: create p50 ≤ 2 ms, p99 ≤ 10 ms; delete p50 ≤ 2 ms; 1,000 ≤ 2.5 s; flatness ≤ 1.5"
    );
    println!();
    println!(
        "| {:>5} | {:<11} | {:<6} | {:>9} | {:>9} | {:>9} | {:>9} | {:>10} | {:>8} | {:>13} |",
        "N",
        "driver",
        "store",
        "create50",
        "create99",
        "delete50",
        "delete99",
        "total",
        "flat",
        "RSS MiB"
    );
    println!(
        "|------:|:------------|:-------|----------:|----------:|----------:|----------:|-----------:|---------:|--------------:|"
    );
    for &n in &args.counts {
        for (driver, &store) in args
            .drivers
            .iter()
            .flat_map(|d| stores.iter().map(move |s| (d, s)))
        {
            let r = one(n, driver, store)?;
            // Let the kernel's background namespace cleanup of this run
            // finish before the next one is timed.
            std::thread::sleep(std::time::Duration::from_millis(500 + 5 * n as u64));
            let mut c = r.create.clone();
            c.sort_by(f64::total_cmp);
            let mut d = r.delete.clone();
            d.sort_by(f64::total_cmp);
            let flat = if r.n >= 200 {
                format!(
                    "{:.2}",
                    median(&r.create[r.n - 100..]) / median(&r.create[..100])
                )
            } else {
                "-".into()
            };
            println!(
                "| {:>5} | {:<11} | {:<6} | {:>6.2} ms | {:>6.2} ms | {:>6.2} ms | {:>6.2} ms | {:>7.0} ms | {:>8} | {:>5.1} → {:>5.1} |",
                r.n,
                r.driver,
                r.store.label(),
                quantile(&c, 0.5),
                quantile(&c, 0.99),
                quantile(&d, 0.5),
                quantile(&d, 0.99),
                r.total_create,
                flat,
                r.rss_before as f64 / 1024.0,
                r.rss_after as f64 / 1024.0,
            );
        }
    }
    println!();
    println!("create/delete: the engine call (API to done); total: sum of N creates;");
    println!("flat: median of the last 100 creates / median of the first 100 (N ≥ 200);");
    println!("RSS: this process (the engine in-process) before the first create → after the last.");
    Ok(())
}
