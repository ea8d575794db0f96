//! `bulkhead-bench scale`: N endpoints (default 1,000) created one after
//! another on one host and kept, for bulkhead, netavark and the CNI bridge
//! plugin side by side (target: 1,000 endpoints ≤ 2.5 s in total, flat: the
//! median of the last 100 creates ≤ 1.5× the median of the first 100).
//!
//! The runs are [`crate::peers`]' in [`Mode::Fill`]: each side in its own
//! throwaway host namespace, its N container namespaces made beforehand,
//! untimed; bulkhead timed from the engine call to its return (redb store
//! with fsync), the peers from the spawn of `nsenter --net=HOST PLUGIN` to
//! its exit; everything removed with the namespaces afterwards, untimed.
//!
//! One more bulkhead row, `nat, K clients`: the same N creates made by K
//! threads at once against one engine (what a runtime starting many
//! containers does, and what group commit is for: concurrent operations
//! share one log sync). Its total is the wall time from the first call to
//! the last return, not a sum; its flatness compares the calls that
//! started first and last.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use bulkhead_model::EndpointSpec;

use crate::peers::{self, Mode, Row};
use crate::world::{median, quantile};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Endpoints created per side.
    #[arg(long, default_value_t = 1000)]
    pub count: usize,
    /// Clients of the concurrent bulkhead row (0: no such row).
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Leave out the peers' rows (netavark, CNI: minutes at 1,000).
    #[arg(long)]
    pub no_peers: bool,
}

/// N endpoint creates by `clients` threads at once on one engine (redb
/// store): the per-call times in start order, and the wall time, ms.
fn bulkhead_concurrent(n: usize, clients: usize) -> Result<(Row, f64), String> {
    let world = peers::bulkhead_world("sk", n)?;
    let e = &world.engine;
    let next = Mutex::new(0usize);
    let calls: Mutex<Vec<(Instant, f64)>> = Mutex::new(Vec::with_capacity(n));
    let t0 = Instant::now();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..clients)
            .map(|_| {
                s.spawn(|| loop {
                    let i = {
                        let mut k = next.lock().unwrap_or_else(|p| p.into_inner());
                        if *k >= n {
                            return Ok(());
                        }
                        *k += 1;
                        *k - 1
                    };
                    let spec = EndpointSpec {
                        name: format!("e{i}"),
                        network: "bench".into(),
                        namespace: format!("c{i}"),
                        ..Default::default()
                    };
                    let t = Instant::now();
                    e.create_endpoint(spec)
                        .map_err(|e| format!("create endpoint e{i}: {e}"))?;
                    let took = t.elapsed().as_secs_f64() * 1e3;
                    calls
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((t, took));
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|_| Err("a client panicked".into())))
            .collect::<Result<Vec<()>, String>>()
    })?;
    let wall = t0.elapsed().as_secs_f64() * 1e3;
    let mut calls = calls.into_inner().unwrap_or_else(|p| p.into_inner());
    calls.sort_by_key(|(t, _)| *t);
    Ok((
        Row {
            peer: "bulkhead",
            variant: "nat, clients",
            port: false,
            setup: calls.into_iter().map(|(_, ms)| ms).collect(),
            teardown: Vec::new(),
        },
        wall,
    ))
}

/// The window of the flatness figure: 100, or half of N when N < 200.
fn window(n: usize) -> usize {
    100.min(n / 2).max(1)
}

struct Stats {
    total: f64,
    p50: f64,
    p99: f64,
    first: f64,
    last: f64,
}

fn stats(r: &Row) -> Stats {
    let v = &r.setup;
    let k = window(v.len());
    let mut s = v.clone();
    s.sort_by(f64::total_cmp);
    Stats {
        total: v.iter().sum(),
        p50: quantile(&s, 0.5),
        p99: quantile(&s, 0.99),
        first: median(&v[..k]),
        last: median(&v[v.len().saturating_sub(k)..]),
    }
}

pub fn run(args: &Args) -> Result<(), String> {
    let n = args.count;
    if n < 2 {
        return Err("--count must be at least 2".into());
    }
    if !args.no_peers {
        peers::check_installed()?;
    }
    type Job = Box<dyn Fn() -> Result<Row, String>>;
    let mut jobs: Vec<Job> = vec![Box::new(move || peers::bulkhead(n, false, Mode::Fill))];
    if !args.no_peers {
        jobs.push(Box::new(move || peers::netavark(n, false, Mode::Fill)));
        jobs.push(Box::new(move || peers::cni(n, false, false, Mode::Fill)));
    }
    let settle = || {
        crate::settle::namespaces(
            Duration::from_secs(120),
            Duration::from_millis(1000 + 10 * n as u64),
        )
    };
    let mut rows = Vec::new();
    for job in jobs {
        rows.push(job()?);
        // The kernel frees N namespaces (and their veths) in the background
        // after the run; let it finish before the next side is timed.
        let _ = settle();
    }
    let concurrent = if args.clients > 0 {
        let got = bulkhead_concurrent(n, args.clients)?;
        let _ = settle();
        Some(got)
    } else {
        None
    };
    let k = window(n);
    println!("{n} endpoints created one after another on one host (kept), one namespace each");
    println!("target: 1,000 endpoints ≤ 2.5 s in total; flat: median of the last 100 ≤ 1.5× the first 100");
    println!();
    println!(
        "| {:<8} | {:<8} | {:>9} | {:>9} | {:>9} | {:>15} | {:>15} | {:>5} | {:>16} |",
        "peer",
        "variant",
        "total",
        "p50",
        "p99",
        format!("first {k} median"),
        format!("last {k} median"),
        "flat",
        "total ÷ bulkhead"
    );
    println!(
        "|:---------|:---------|----------:|----------:|----------:|----------------:|----------------:|------:|-----------------:|"
    );
    let base = stats(&rows[0]);
    let clients = concurrent.as_ref().map(|(r, wall)| {
        let label = format!("nat, {} clients", args.clients);
        (r, Some(*wall), label)
    });
    let listed = rows
        .iter()
        .map(|r| (r, None, r.variant.to_owned()))
        .chain(clients);
    for (r, wall, variant) in listed {
        let s = stats(r);
        let total = wall.unwrap_or(s.total);
        println!(
            "| {:<8} | {:<8} | {:>7.2} s | {:>6.2} ms | {:>6.2} ms | {:>12.2} ms | {:>12.2} ms | {:>5.2} | {:>15.1}× |",
            r.peer,
            variant,
            total / 1e3,
            s.p50,
            s.p99,
            s.first,
            s.last,
            s.last / s.first,
            total / base.total,
        );
    }
    println!();
    println!(
        "total: sum of the N creates (clients row: wall time, first call to last return); flat: median of the last {k} ÷ median of the first {k};"
    );
    println!(
        "bulkhead: engine call to return (redb, fsync); peers: `nsenter --net=HOST PLUGIN` spawn to exit."
    );
    Ok(())
}
