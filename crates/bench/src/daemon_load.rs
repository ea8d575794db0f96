//! The concurrency phase of `bulkhead-bench daemon`: N API clients at once
//! (target: 50 clients, no errors, p99 ≤ 10× p50), each on its own thread
//! with its own connection per call, creating a namespace and an endpoint
//! in it `per` times, then deleting what it made. Every create's latency
//! (the client's view, queueing behind the engine's lock included) and
//! every error is counted.

use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::Instant;

use bulkhead_api::{Client, EndpointSpec, NamespaceSpec};

use crate::world::quantile;

/// What the concurrent clients saw.
pub struct Concurrent {
    clients: usize,
    creates: Vec<f64>,
    errors: Vec<String>,
    wall: f64,
}

impl Concurrent {
    pub fn print(&self) {
        let mut s = self.creates.clone();
        s.sort_by(f64::total_cmp);
        let (p50, p99) = (quantile(&s, 0.5), quantile(&s, 0.99));
        println!(
            "{} concurrent clients: {} creates (namespace and endpoint calls) in {:.2} s, {} errors",
            self.clients,
            s.len(),
            self.wall,
            self.errors.len()
        );
        println!();
        println!("| concurrent create call | p50 | p99 | p99 ÷ p50 | target |");
        println!("|:--|--:|--:|--:|--:|");
        println!(
            "| {} clients | {p50:.2} ms | {p99:.2} ms | {:.1} | no errors, p99 ≤ 10× p50 |",
            self.clients,
            p99 / p50
        );
        for e in self.errors.iter().take(5) {
            println!("error: {e}");
        }
    }
}

/// One client's creates and deletes; (latencies ms, errors).
fn client(socket: &Path, c: usize, per: usize, start: &Barrier) -> (Vec<f64>, Vec<String>) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return (vec![], vec![format!("client {c}: runtime: {e}")]),
    };
    let api = Client::new(socket);
    let (mut times, mut errors) = (Vec::new(), Vec::new());
    start.wait();
    for j in 0..per {
        let (ns, ep) = (format!("k{c}-{j}"), format!("q{c}-{j}"));
        let t = Instant::now();
        let r = rt.block_on(api.namespace_create(NamespaceSpec {
            name: ns.clone(),
            ..Default::default()
        }));
        times.push(t.elapsed().as_secs_f64() * 1e3);
        if let Err(e) = r {
            errors.push(format!("create namespace {ns}: {e}"));
            continue;
        }
        let t = Instant::now();
        let r = rt.block_on(api.endpoint_create(EndpointSpec {
            name: ep.clone(),
            network: "bench".into(),
            namespace: ns.clone(),
            ..Default::default()
        }));
        times.push(t.elapsed().as_secs_f64() * 1e3);
        if let Err(e) = r {
            errors.push(format!("create endpoint {ep}: {e}"));
        }
    }
    for j in 0..per {
        if let Err(e) = rt.block_on(api.endpoint_remove(&format!("q{c}-{j}"))) {
            errors.push(format!("delete endpoint q{c}-{j}: {e}"));
        }
        if let Err(e) = rt.block_on(api.namespace_remove(&format!("k{c}-{j}"))) {
            errors.push(format!("delete namespace k{c}-{j}: {e}"));
        }
    }
    (times, errors)
}

/// Runs `clients` clients at once against the daemon at `socket` (which
/// has the nat network "bench"); `None` when `clients` is 0.
pub fn concurrent(socket: &Path, clients: usize, per: usize) -> Result<Option<Concurrent>, String> {
    if clients == 0 || per == 0 {
        return Ok(None);
    }
    let start = Arc::new(Barrier::new(clients + 1));
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            let (socket, start) = (socket.to_path_buf(), start.clone());
            std::thread::spawn(move || client(&socket, c, per, &start))
        })
        .collect();
    start.wait();
    let t = Instant::now();
    let mut out = Concurrent {
        clients,
        creates: Vec::new(),
        errors: Vec::new(),
        wall: 0.0,
    };
    for h in handles {
        let (times, errors) = h.join().map_err(|_| "a client thread panicked")?;
        out.creates.extend(times);
        out.errors.extend(errors);
    }
    out.wall = t.elapsed().as_secs_f64();
    Ok(Some(out))
}
