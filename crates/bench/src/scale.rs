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

use std::time::Duration;

use crate::peers::{self, Mode, Row};
use crate::world::{median, quantile};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Endpoints created one after another per side.
    #[arg(long, default_value_t = 1000)]
    pub count: usize,
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
    peers::check_installed()?;
    type Job = Box<dyn Fn() -> Result<Row, String>>;
    let jobs: Vec<Job> = vec![
        Box::new(move || peers::bulkhead(n, false, Mode::Fill)),
        Box::new(move || peers::netavark(n, false, Mode::Fill)),
        Box::new(move || peers::cni(n, false, false, Mode::Fill)),
    ];
    let mut rows = Vec::new();
    for job in jobs {
        rows.push(job()?);
        // The kernel frees N namespaces (and their veths) in the background
        // after the run; let it finish before the next side is timed.
        std::thread::sleep(Duration::from_millis(1000 + 10 * n as u64));
    }
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
    for r in &rows {
        let s = stats(r);
        println!(
            "| {:<8} | {:<8} | {:>7.2} s | {:>6.2} ms | {:>6.2} ms | {:>12.2} ms | {:>12.2} ms | {:>5.2} | {:>15.1}× |",
            r.peer,
            r.variant,
            s.total / 1e3,
            s.p50,
            s.p99,
            s.first,
            s.last,
            s.last / s.first,
            s.total / base.total,
        );
    }
    println!();
    println!(
        "total: sum of the N creates; flat: median of the last {k} ÷ median of the first {k};"
    );
    println!(
        "bulkhead: engine call to return (redb, fsync); peers: `nsenter --net=HOST PLUGIN` spawn to exit."
    );
    Ok(())
}
