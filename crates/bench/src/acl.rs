//! `bulkhead-bench acl`: one endpoint with an ACL of N rules, on the real
//! kernel, against the targets (spec: replace a 10k-rule ACL atomically
//! ≤ 50 ms; add/remove one rule ≤ 1 ms whatever the size; with 10k rules
//! TCP throughput ≥ 0.97×, packet rate ≥ 0.90×, new connections/s ≥ 0.90×
//! of no rules).
//!
//! World (see [`crate::world`]): a nat network, endpoints `a` (client) and
//! `b` (server, carrying the ACL) in their own namespaces. Rules are shaped
//! like real ACLs: inbound blocks on remote addresses (10.96.0.0/12, /32s
//! and /24s) with local port lists and ranges, then a tail of allows; none
//! matches `a`, so the probe traffic is classified by the whole ruleset and
//! allowed. Data-path figures alternate no-rules / N-rules rounds in one
//! run (median of `--rounds`), and are printed as ratios.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bulkhead_dataplane::netns;
use bulkhead_engine::EndpointOptions;
use bulkhead_model::{AclRuleSpec, EndpointSpec, NamespaceSpec, NetworkSpec};

use crate::rng::Rng;
use crate::world::{median, StoreKind, World};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// ACL size.
    #[arg(long, default_value_t = 10_000)]
    rules: usize,
    /// Seconds per data-path measurement.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Rounds of (no rules, N rules) data-path measurements.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Repetitions of each update timing (median printed).
    #[arg(long, default_value_t = 20)]
    reps: usize,
    /// Use the in-process TCP blast even when iperf3 is installed.
    #[arg(long)]
    no_iperf: bool,
    /// Seed of the rule generator.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

/// N realistic inbound rules: ~90% blocks on remote addresses and port
/// lists, then allows at the tail of the ladder.
fn rules(n: usize, seed: u64) -> Vec<AclRuleSpec> {
    let mut rng = Rng::new(seed);
    let blocks = n - n / 10;
    (0..n)
        .map(|i| {
            let block = i < blocks;
            let mut remote = Vec::new();
            for _ in 0..1 + rng.below(3) {
                let a = 0x0a60_0000 | (rng.below(1 << 20) as u32);
                let prefix = if rng.below(4) == 0 { 24 } else { 32 };
                let a = if prefix == 24 { a & !0xff } else { a };
                remote.push(format!("{}/{prefix}", Ipv4Addr::from(a)));
            }
            let ports = match rng.below(3) {
                0 => format!("{}", 1 + rng.below(65000)),
                1 => {
                    let lo = 1 + rng.below(60000);
                    format!("{lo}-{}", lo + rng.below(1000))
                }
                _ => format!(
                    "{},{},{}",
                    1 + rng.below(1024),
                    1024 + rng.below(30000),
                    30000 + rng.below(30000)
                ),
            };
            AclRuleSpec {
                id: Some(format!("r{i}")),
                action: if block { "block" } else { "allow" }.into(),
                direction: "in".into(),
                protocol: Some(if rng.below(3) == 0 { "udp" } else { "tcp" }.into()),
                remote_addresses: Some(remote.join(",")),
                local_ports: Some(ports),
                priority: Some(
                    if block {
                        100 + rng.below(50_000)
                    } else {
                        60_000 + rng.below(5_000)
                    }
                    .to_string(),
                ),
                ..Default::default()
            }
        })
        .collect()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

struct Ns {
    path: PathBuf,
    name: String,
    ip: Ipv4Addr,
}

fn endpoint(w: &World, name: &str) -> Result<Ns, String> {
    let ns = w
        .engine
        .create_namespace(NamespaceSpec {
            name: name.into(),
            isolation: None,
        })
        .map_err(|e| format!("namespace {name}: {e}"))?;
    let ep = w
        .engine
        .create_endpoint(
            EndpointSpec {
                name: name.into(),
                network: "bench".into(),
                namespace: name.into(),
                ..Default::default()
            },
            EndpointOptions::default(),
        )
        .map_err(|e| format!("endpoint {name}: {e}"))?;
    let std::net::IpAddr::V4(ip) = ep.ip_address.addr else {
        return Err("not IPv4".into());
    };
    Ok(Ns {
        path: ns.netns_path,
        name: format!("{}{name}", w.prefix),
        ip,
    })
}

fn in_ns<R: Send>(ns: &Path, f: impl FnOnce() -> R + Send) -> Result<R, String> {
    netns::run_in(Some(ns), f).map_err(|e| format!("enter {}: {e}", ns.display()))
}

/// A TCP listener in `ns` that accepts and drains every connection until
/// the returned flag is set.
fn tcp_sink(ns: &Path, port: u16) -> Result<Arc<AtomicBool>, String> {
    let l = in_ns(ns, || TcpListener::bind(("0.0.0.0", port)))?
        .map_err(|e| format!("listen :{port}: {e}"))?;
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    std::thread::spawn(move || {
        for c in l.incoming() {
            if s.load(Ordering::Relaxed) {
                break;
            }
            let Ok(mut c) = c else { continue };
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 256 * 1024];
                while matches!(c.read(&mut buf), Ok(n) if n > 0) {}
            });
        }
    });
    Ok(stop)
}

/// Waits until a TCP connection from `a` to `to` succeeds (link bring-up).
fn wait_reachable(a: &Path, to: SocketAddr) -> Result<(), String> {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let ok = in_ns(a, || {
            TcpStream::connect_timeout(&to, Duration::from_millis(200)).is_ok()
        })?;
        if ok {
            return Ok(());
        }
        if Instant::now() > until {
            return Err(format!("{to} never became reachable"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// TCP throughput a→b, Gbit/s: iperf3 (`server` running in b) or an
/// in-process blast into the sink on :5202.
fn throughput(a: &Ns, b: &Ns, secs: f64, iperf: bool) -> Result<f64, String> {
    if iperf {
        let out = Command::new("ip")
            .args(["netns", "exec", &a.name, "iperf3", "-c"])
            .arg(b.ip.to_string())
            .args(["-p", "5201", "-f", "g", "-t"])
            .arg(format!("{}", secs.ceil() as u64))
            .output()
            .map_err(|e| format!("iperf3: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find(|l| l.contains("receiver"))
            .ok_or_else(|| format!("iperf3: no receiver line: {text}"))?;
        let words: Vec<&str> = line.split_whitespace().collect();
        let i = words
            .iter()
            .position(|w| *w == "Gbits/sec")
            .ok_or_else(|| format!("iperf3: {line}"))?;
        return words[i - 1].parse().map_err(|_| format!("iperf3: {line}"));
    }
    let to = SocketAddr::V4(SocketAddrV4::new(b.ip, 5202));
    let mut s = in_ns(&a.path, || TcpStream::connect(to))?.map_err(|e| e.to_string())?;
    let buf = vec![0x5au8; 128 * 1024];
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        s.write_all(&buf).map_err(|e| e.to_string())?;
        sent += buf.len() as u64;
    }
    Ok(sent as f64 * 8.0 / start.elapsed().as_secs_f64() / 1e9)
}

/// Single-flow UDP flood a→b:9000 (64-byte payloads, tight send loop);
/// packets per second counted at the receiver.
fn packet_rate(a: &Ns, b: &Ns, secs: f64) -> Result<f64, String> {
    let rx = in_ns(&b.path, || UdpSocket::bind(("0.0.0.0", 9000)))?.map_err(|e| e.to_string())?;
    rx.set_read_timeout(Some(Duration::from_millis(100)))
        .map_err(|e| e.to_string())?;
    let tx = in_ns(&a.path, || UdpSocket::bind(("0.0.0.0", 0)))?.map_err(|e| e.to_string())?;
    tx.connect((b.ip, 9000)).map_err(|e| e.to_string())?;
    let count = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (c, s) = (count.clone(), stop.clone());
    let receiver = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while !s.load(Ordering::Relaxed) {
            if rx.recv(&mut buf).is_ok() {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let payload = [0u8; 64];
    // Warm-up: the flow's first packet is classified, the rest are
    // established; then count over the window.
    let _ = tx.send(&payload);
    std::thread::sleep(Duration::from_millis(50));
    let start_count = count.load(Ordering::Relaxed);
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < secs {
        for _ in 0..64 {
            let _ = tx.send(&payload);
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(50));
    let n = count.load(Ordering::Relaxed) - start_count;
    stop.store(true, Ordering::Relaxed);
    let _ = receiver.join();
    Ok(n as f64 / elapsed)
}

/// New TCP connections per second a→b:5203: connect, close (RST, so no
/// TIME_WAIT exhausts the ports), repeat.
fn conn_rate(a: &Ns, b: &Ns, secs: f64) -> Result<f64, String> {
    let to = SocketAddr::V4(SocketAddrV4::new(b.ip, 5203));
    in_ns(&a.path, || {
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed().as_secs_f64() < secs {
            if let Ok(s) = TcpStream::connect(to) {
                let s = socket2::Socket::from(s);
                let _ = s.set_linger(Some(Duration::ZERO));
                drop(s);
                n += 1;
            }
        }
        n as f64 / start.elapsed().as_secs_f64()
    })
}

struct Path3 {
    gbit: f64,
    pps: f64,
    conns: f64,
}

fn datapath(a: &Ns, b: &Ns, args: &Args, iperf: bool) -> Result<Path3, String> {
    Ok(Path3 {
        gbit: throughput(a, b, args.seconds, iperf)?,
        pps: packet_rate(a, b, args.seconds)?,
        conns: conn_rate(a, b, args.seconds)?,
    })
}

/// An iperf3 server we started; killed (by its own pid) on drop.
struct IperfServer(Child);

impl Drop for IperfServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn run(args: &Args) -> Result<(), String> {
    let n = args.rules;
    let w = World::new("acl", StoreKind::Redb)?;
    w.engine
        .create_network(NetworkSpec {
            name: "bench".into(),
            driver: "nat".into(),
            subnets: vec!["10.201.0.0/16".into()],
            ..Default::default()
        })
        .map_err(|e| format!("network: {e}"))?;
    let a = endpoint(&w, "a")?;
    let b = endpoint(&w, "b")?;
    let have_iperf = !args.no_iperf
        && Command::new("iperf3")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    let _server = if have_iperf {
        let child = Command::new("ip")
            .args(["netns", "exec", &b.name, "iperf3", "-s", "-p", "5201"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("iperf3 -s: {e}"))?;
        Some(IperfServer(child))
    } else {
        None
    };
    let stop_blast = tcp_sink(&b.path, 5202)?;
    let stop_conn = tcp_sink(&b.path, 5203)?;
    wait_reachable(&a.path, SocketAddr::V4(SocketAddrV4::new(b.ip, 5203)))?;
    if have_iperf {
        wait_reachable(&a.path, SocketAddr::V4(SocketAddrV4::new(b.ip, 5201)))?;
    }

    // Updates.
    let mut replace = Vec::new();
    for r in 0..args.reps.clamp(1, 5) {
        let set = rules(n, args.seed + r as u64);
        let t = Instant::now();
        w.engine
            .replace_acls("b", set)
            .map_err(|e| format!("replace_acls: {e}"))?;
        replace.push(ms(t.elapsed()));
    }
    let mut add = Vec::new();
    let mut remove = Vec::new();
    for r in 0..args.reps {
        let spec = AclRuleSpec {
            id: Some(format!("extra{r}")),
            action: "block".into(),
            direction: "in".into(),
            protocol: Some("tcp".into()),
            remote_addresses: Some(format!("10.99.{}.0/24", r % 256)),
            local_ports: Some("8080".into()),
            priority: Some("500".into()),
            ..Default::default()
        };
        let t = Instant::now();
        w.engine
            .add_acl("b", spec)
            .map_err(|e| format!("add_acl: {e}"))?;
        add.push(ms(t.elapsed()));
        let t = Instant::now();
        w.engine
            .remove_acl("b", &format!("extra{r}"))
            .map_err(|e| format!("remove_acl: {e}"))?;
        remove.push(ms(t.elapsed()));
    }
    let full = rules(n, args.seed);

    // Data path: alternate no rules / N rules.
    let mut base = Vec::new();
    let mut with = Vec::new();
    for _ in 0..args.rounds.max(1) {
        w.engine
            .replace_acls("b", vec![])
            .map_err(|e| format!("clear: {e}"))?;
        base.push(datapath(&a, &b, args, have_iperf)?);
        w.engine
            .replace_acls("b", full.clone())
            .map_err(|e| format!("replace: {e}"))?;
        with.push(datapath(&a, &b, args, have_iperf)?);
    }
    stop_blast.store(true, Ordering::Relaxed);
    stop_conn.store(true, Ordering::Relaxed);
    let med = |v: &[Path3], f: fn(&Path3) -> f64| median(&v.iter().map(f).collect::<Vec<_>>());
    let (g0, g1) = (med(&base, |p| p.gbit), med(&with, |p| p.gbit));
    let (p0, p1) = (med(&base, |p| p.pps), med(&with, |p| p.pps));
    let (c0, c1) = (med(&base, |p| p.conns), med(&with, |p| p.conns));

    println!("ACL of {n} rules on one endpoint (host firewall), real kernel, redb store");
    println!();
    println!("| update | median | max | target |");
    println!("|:--|--:|--:|--:|");
    let row = |what: &str, v: &[f64], target: &str| {
        let max = v.iter().copied().fold(0.0, f64::max);
        println!("| {what} | {:.2} ms | {max:.2} ms | {target} |", median(v));
    };
    row(
        &format!("replace whole ACL ({n} rules)"),
        &replace,
        "≤ 50 ms",
    );
    row(&format!("add one rule ({n} present)"), &add, "≤ 1 ms");
    row(&format!("remove one rule ({n} present)"), &remove, "≤ 1 ms");
    println!();
    println!("| data path (a → b) | no rules | {n} rules | ratio | target |");
    println!("|:--|--:|--:|--:|--:|");
    let tool = if have_iperf {
        "iperf3"
    } else {
        "in-process blast"
    };
    println!(
        "| TCP throughput, one stream ({tool}) | {g0:.2} Gbit/s | {g1:.2} Gbit/s | {:.3}× | ≥ 0.97× |",
        g1 / g0
    );
    println!(
        "| UDP single-flow packet rate (rx) | {:.0} kpps | {:.0} kpps | {:.3}× | ≥ 0.90× |",
        p0 / 1e3,
        p1 / 1e3,
        p1 / p0
    );
    println!(
        "| new TCP connections/s | {c0:.0} | {c1:.0} | {:.3}× | ≥ 0.90× |",
        c1 / c0
    );
    println!();
    println!(
        "medians of {} alternating rounds of {} s each; updates: replace × {}, add/remove × {}",
        args.rounds.max(1),
        args.seconds,
        args.reps.clamp(1, 5),
        args.reps
    );
    Ok(())
}
