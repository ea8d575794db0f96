//! `bulkhead-bench acl`: one endpoint with an ACL of N rules (for each N of
//! `--rules`), on the real kernel, against the targets (spec: replace a
//! 10k-rule ACL atomically ≤ 50 ms; add/remove one rule ≤ 1 ms whatever the
//! size; with 10k rules TCP throughput ≥ 0.97×, packet rate with every
//! packet classified ≥ 0.90×, new connections/s ≥ 0.90× of no rules, added
//! first-packet latency ≤ 2 µs).
//!
//! World (see [`crate::world`]): a nat network, endpoints `a` (client) and
//! `b` (server, carrying the ACL) in their own namespaces. Rules are shaped
//! like real ACLs: inbound blocks on remote addresses (/32s and /24s of
//! 10.96.0.0/12 at 10k rules, one more /12 per 10k rules beyond, so the
//! overlap density stays that of 10k; see [`rules`]) with local port lists
//! and ranges, then a tail of allows; none
//! matches `a`, so the probe traffic is classified by the whole ruleset and
//! allowed. Data-path figures alternate no-rules / N-rules rounds in one
//! run (median of `--rounds`), and are printed as ratios.
//!
//! Packet rate: in `b`'s namespace the bench adds its own table
//! (`inet bulkhead_bench`, with the `nft` CLI: a measuring device, not an
//! operation path) whose input chain, at priority 10 (after bulkhead's host
//! firewall at 0), ends UDP to port 9000 in `counter drop`. The dropped
//! packets' conntrack entries are never confirmed, so every packet of the
//! single flood flow is new and classified by the ACL; the rate is the
//! counter's packets per second (read over netlink, in-process) while `a`
//! floods with `sendmmsg` (batches of 64). Added first-packet latency is 1/rate(N rules) − 1/rate(no
//! rules); the connection-rate loop also gives the median `connect()` time.
//!
//! Updates: replace × up to 5, add one / remove one × `--reps`; a kind of
//! update stops repeating once one of them, or its repetitions together,
//! took longer than `--max-update-secs`, and the table says so. An ACL the
//! engine refuses is printed with the engine's message.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bulkhead_dataplane::netns;
use bulkhead_model::{AclRuleSpec, EndpointSpec, NamespaceSpec, NetworkSpec};

use crate::rng::Rng;
use crate::world::{median, StoreKind, World};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// ACL sizes, comma separated.
    #[arg(long, value_delimiter = ',', default_values_t = [10_000usize, 100_000])]
    pub rules: Vec<usize>,
    /// Seconds per data-path measurement.
    #[arg(long, default_value_t = 2.0)]
    pub seconds: f64,
    /// Rounds of (no rules, N rules) data-path measurements.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Repetitions of each add/remove timing (median printed; replace runs
    /// up to 5 times).
    #[arg(long, default_value_t = 20)]
    pub reps: usize,
    /// Stop repeating an update once one, or its repetitions together, took
    /// longer than this.
    #[arg(long, default_value_t = 120.0)]
    pub max_update_secs: f64,
    /// Use the in-process TCP blast even when iperf3 is installed.
    #[arg(long)]
    pub no_iperf: bool,
    /// Seed of the rule generator.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

/// The first remote address the rules draw from (10.96.0.0).
const REMOTE_BASE: u32 = 0x0a60_0000;
/// Remote addresses per 10,000 rules: a /12 (10.96.0.0/12 at 10k).
const REMOTE_PER_10K: u64 = 1 << 20;
/// The bench network (10.201.0.0/16), which no rule may cover (its
/// endpoints' traffic must meet the whole ruleset and be allowed).
const SKIP: (u32, u32) = (0x0ac9_0000, 0x1_0000);

/// The remote address space for `n` rules: one /12 per 10,000 rules (so
/// the overlap density — rules covering one address — stays that of the
/// 10k-rule ACL as N grows, as in real ladders, which are mostly /32s of
/// ever more hosts), up to 10.96.0.0–10.255.255.255 less the bench
/// network (9.94× at 100k).
fn remote_span(n: usize) -> u64 {
    let max = (0x0b00_0000 - u64::from(REMOTE_BASE)) - u64::from(SKIP.1);
    (REMOTE_PER_10K * (n as u64).div_ceil(10_000).max(1)).min(max)
}

/// The `off`-th address of the remote space (skipping the bench network).
fn remote_addr(off: u32) -> u32 {
    let a = REMOTE_BASE + off;
    if a >= SKIP.0 {
        a + SKIP.1
    } else {
        a
    }
}

/// N realistic inbound rules: ~90% blocks on remote addresses (/32s and
/// /24s drawn from [`remote_span`]) and port lists, then allows at the
/// tail of the ladder.
pub(crate) fn rules(n: usize, seed: u64) -> Vec<AclRuleSpec> {
    let mut rng = Rng::new(seed);
    let blocks = n - n / 10;
    let span = remote_span(n);
    (0..n)
        .map(|i| {
            let block = i < blocks;
            let mut remote = Vec::new();
            for _ in 0..1 + rng.below(3) {
                let a = remote_addr(rng.below(span) as u32);
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

pub(crate) struct Ns {
    pub(crate) path: PathBuf,
    name: String,
    pub(crate) ip: Ipv4Addr,
}

pub(crate) fn endpoint(w: &World, name: &str) -> Result<Ns, String> {
    let ns = w
        .engine
        .create_namespace(NamespaceSpec {
            name: name.into(),
            isolation: None,
            ..NamespaceSpec::default()
        })
        .map_err(|e| format!("namespace {name}: {e}"))?;
    let ep = w
        .engine
        .create_endpoint(EndpointSpec {
            name: name.into(),
            network: "bench".into(),
            namespace: name.into(),
            ..Default::default()
        })
        .map_err(|e| format!("endpoint {name}: {e}"))?;
    let std::net::IpAddr::V4(ip) = ep.ip_address.addr else {
        return Err("not IPv4".into());
    };
    Ok(Ns {
        path: ns
            .netns_path
            .ok_or(format!("namespace {name}: no netns path"))?,
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

/// Loads the bench's own table into `b`'s namespace over netlink (no `nft`
/// process): UDP to :9000 is counted and dropped after bulkhead's host
/// firewall (priority 0) has classified it —
/// `table inet bulkhead_bench { chain input { type filter hook input
/// priority 10; policy accept; udp dport 9000 counter drop } }`.
pub(crate) fn load_bench_table(ns: &Path) -> Result<(), String> {
    use bulkhead_dataplane::nft::{
        Batch, Chain, ChainType, Expr, Family, Hook, MetaKey, NftSocket, PayloadBase, Policy, Reg,
        Rule, Table, Verdict,
    };
    let t = Table::new(Family::Inet, "bulkhead_bench");
    let mut b = Batch::new();
    b.add_table(&t)
        .add_chain(
            &t,
            &Chain::base("input", ChainType::Filter, Hook::Input, 10, Policy::Accept),
        )
        .add_rule(
            &t,
            &Rule::new(
                "input",
                vec![
                    Expr::Meta {
                        key: MetaKey::L4Proto,
                        dreg: Reg::R1,
                    },
                    Expr::cmp_eq(Reg::R1, [17u8]),
                    Expr::Payload {
                        base: PayloadBase::Transport,
                        offset: 2,
                        len: 2,
                        dreg: Reg::R1,
                    },
                    Expr::cmp_eq(Reg::R1, 9000u16.to_be_bytes()),
                    Expr::Counter,
                    Expr::Verdict(Verdict::Drop),
                ],
            ),
        );
    NftSocket::open(Some(ns))
        .and_then(|mut s| s.commit(b))
        .map_err(|e| format!("load the bench table: {e}"))
}

/// The bench counter's packets, read over netlink from the bench table's
/// one chain (`nft list counter` reads the namespace's whole ruleset: a
/// minute of CPU at 100k rules).
fn rx_packets(b: &Ns) -> Result<u64, String> {
    use bulkhead_dataplane::nft::{Family, NftSocket, Table};
    let mut sock = NftSocket::open(Some(&b.path)).map_err(|e| e.to_string())?;
    let t = Table::new(Family::Inet, "bulkhead_bench");
    let rules = sock
        .list_rules(&t, Some("input"))
        .map_err(|e| format!("read the bench counter: {e}"))?;
    rules
        .iter()
        .find_map(|r| r.counter())
        .map(|(packets, _)| packets)
        .ok_or_else(|| "no counter in the bench table".into())
}

/// Single-flow UDP flood a→b:9000 (64-byte payloads, `sendmmsg` batches of
/// 64) into the bench's `counter drop`; packets per second counted there.
pub(crate) fn packet_rate(a: &Ns, b: &Ns, secs: f64) -> Result<f64, String> {
    use nix::sys::socket::{sendmmsg, MsgFlags, MultiHeaders, SockaddrIn};
    use std::io::IoSlice;
    use std::os::fd::AsRawFd;
    const BATCH: usize = 64;
    let tx = in_ns(&a.path, || UdpSocket::bind(("0.0.0.0", 0)))?.map_err(|e| e.to_string())?;
    tx.connect((b.ip, 9000)).map_err(|e| e.to_string())?;
    let payload = [0u8; 64];
    let slices = vec![[IoSlice::new(&payload)]; BATCH];
    let addrs: Vec<Option<SockaddrIn>> = vec![None; BATCH];
    let mut headers = MultiHeaders::<SockaddrIn>::preallocate(BATCH, None);
    let fd = tx.as_raw_fd();
    let mut flood = |how_long: Duration| {
        let start = Instant::now();
        while start.elapsed() < how_long {
            // ENOBUFS and the like: the next batch tries again.
            let _ = sendmmsg(fd, &mut headers, &slices, &addrs, [], MsgFlags::empty());
        }
    };
    flood(Duration::from_millis(100));
    let before = rx_packets(b)?;
    let start = Instant::now();
    flood(Duration::from_secs_f64(secs));
    let elapsed = start.elapsed().as_secs_f64();
    let after = rx_packets(b)?;
    Ok(after.saturating_sub(before) as f64 / elapsed)
}

/// New TCP connections per second a→b:5203 (connect, close with RST so no
/// TIME_WAIT exhausts the ports, repeat) and the median `connect()` time
/// (µs).
fn conn_rate(a: &Ns, b: &Ns, secs: f64) -> Result<(f64, f64), String> {
    let to = SocketAddr::V4(SocketAddrV4::new(b.ip, 5203));
    in_ns(&a.path, || {
        let start = Instant::now();
        let mut n = 0u64;
        let mut connect = Vec::new();
        while start.elapsed().as_secs_f64() < secs {
            let t = Instant::now();
            if let Ok(s) = TcpStream::connect(to) {
                connect.push(t.elapsed().as_secs_f64() * 1e6);
                let s = socket2::Socket::from(s);
                let _ = s.set_linger(Some(Duration::ZERO));
                drop(s);
                n += 1;
            }
        }
        (n as f64 / start.elapsed().as_secs_f64(), median(&connect))
    })
}

struct Path3 {
    gbit: f64,
    pps: f64,
    conns: f64,
    connect_us: f64,
}

fn datapath(a: &Ns, b: &Ns, args: &Args, iperf: bool) -> Result<Path3, String> {
    let gbit = throughput(a, b, args.seconds, iperf)?;
    let pps = packet_rate(a, b, args.seconds)?;
    let (conns, connect_us) = conn_rate(a, b, args.seconds)?;
    Ok(Path3 {
        gbit,
        pps,
        conns,
        connect_us,
    })
}

/// The medians of each figure over rounds.
fn medians(v: &[Path3]) -> Path3 {
    let med = |f: fn(&Path3) -> f64| median(&v.iter().map(f).collect::<Vec<_>>());
    Path3 {
        gbit: med(|p| p.gbit),
        pps: med(|p| p.pps),
        conns: med(|p| p.conns),
        connect_us: med(|p| p.connect_us),
    }
}

/// One kind of update, repeated within the budget.
struct Timed {
    /// Each repetition, ms.
    ms: Vec<f64>,
    planned: usize,
    total_secs: f64,
    /// Why repetitions stopped early.
    stopped: Option<String>,
    /// The engine's error, if it refused.
    error: Option<String>,
    /// CPU time of the calling thread per repetition, ms (see [`cpu_ns`]).
    cpu_ms: Vec<f64>,
}

/// Nanoseconds the calling thread has run on a CPU, user and kernel (the
/// nf_tables commit runs in the thread's `sendmsg`), from
/// `CLOCK_THREAD_CPUTIME_ID`: unlike wall time it does not count waiting
/// for a CPU on a loaded machine, and unlike `/proc/thread-self/schedstat`
/// (updated at scheduler ticks, 4 ms on this kernel) it reads the running
/// thread's time to the nanosecond. 0 if unreadable.
pub(crate) fn cpu_ns() -> u64 {
    use nix::time::{clock_gettime, ClockId};
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

impl Timed {
    fn new(planned: usize) -> Self {
        Self {
            ms: Vec::new(),
            planned,
            total_secs: 0.0,
            stopped: None,
            error: None,
            cpu_ms: Vec::new(),
        }
    }

    /// Records one repetition of `secs`; false when no more should run.
    fn record(&mut self, secs: f64, budget: f64) -> bool {
        self.ms.push(secs * 1e3);
        self.total_secs += secs;
        if self.ms.len() >= self.planned {
            return false;
        }
        if secs > budget {
            self.stopped = Some(format!("one took {secs:.0} s > {budget:.0} s budget"));
        } else if self.total_secs > budget {
            self.stopped = Some(format!(
                "{:.0} s together > {budget:.0} s budget",
                self.total_secs
            ));
        }
        self.stopped.is_none()
    }

    /// Median CPU time of the calling thread, or "-".
    fn cpu_cell(&self) -> String {
        if self.cpu_ms.is_empty() {
            return "-".into();
        }
        dur(median(&self.cpu_ms))
    }

    fn cell(&self) -> String {
        if let Some(e) = &self.error {
            return if self.ms.is_empty() {
                format!("refused: {e}")
            } else {
                format!("failed on rep {}: {e}", self.ms.len() + 1)
            };
        }
        if self.ms.is_empty() {
            return "not run".into();
        }
        let max = self.ms.iter().copied().fold(0.0, f64::max);
        let mut c = format!("{} (max {})", dur(median(&self.ms)), dur(max));
        if self.ms.len() < self.planned {
            c.push_str(&format!(
                "; {} of {} reps: {}",
                self.ms.len(),
                self.planned,
                self.stopped.as_deref().unwrap_or("stopped")
            ));
        }
        c
    }
}

/// `ms` as ms below 10 s, else s.
fn dur(ms: f64) -> String {
    if ms < 10_000.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{:.1} s", ms / 1e3)
    }
}

/// What one ACL size gave.
struct Size {
    n: usize,
    replace: Timed,
    add: Timed,
    remove: Timed,
    /// Data-path medians (no rules, N rules) and rounds run, or why not.
    path: Result<(Path3, Path3, usize), String>,
}

fn one_size(w: &World, a: &Ns, b: &Ns, n: usize, args: &Args, iperf: bool) -> Size {
    let budget = args.max_update_secs;
    let mut replace = Timed::new(args.reps.clamp(1, 5));
    let mut add = Timed::new(args.reps.max(1));
    let mut remove = Timed::new(args.reps.max(1));
    let mut seed = None;
    for r in 0..replace.planned {
        let set = rules(n, args.seed + r as u64);
        let (t, c) = (Instant::now(), cpu_ns());
        if let Err(e) = w.engine.replace_acls("b", set) {
            replace.error = Some(format!("{e} (after {:.1} s)", t.elapsed().as_secs_f64()));
            break;
        }
        replace.cpu_ms.push(cpu_ns().saturating_sub(c) as f64 / 1e6);
        seed = Some(args.seed + r as u64);
        if !replace.record(t.elapsed().as_secs_f64(), budget) {
            break;
        }
    }
    let Some(seed) = seed else {
        return Size {
            n,
            replace,
            add,
            remove,
            path: Err("the ACL was not installed".into()),
        };
    };
    for r in 0..add.planned {
        let id = format!("extra{r}");
        let spec = AclRuleSpec {
            id: Some(id.clone()),
            action: "block".into(),
            direction: "in".into(),
            protocol: Some("tcp".into()),
            remote_addresses: Some(format!("10.99.{}.0/24", r % 256)),
            local_ports: Some("8080".into()),
            priority: Some("500".into()),
            ..Default::default()
        };
        let (t, c) = (Instant::now(), cpu_ns());
        if let Err(e) = w.engine.add_acl("b", spec) {
            add.error = Some(format!("{e} (after {:.1} s)", t.elapsed().as_secs_f64()));
            break;
        }
        add.cpu_ms.push(cpu_ns().saturating_sub(c) as f64 / 1e6);
        let more_add = add.record(t.elapsed().as_secs_f64(), budget);
        let (t, c) = (Instant::now(), cpu_ns());
        if let Err(e) = w.engine.remove_acl("b", &id) {
            remove.error = Some(format!("{e} (after {:.1} s)", t.elapsed().as_secs_f64()));
            break;
        }
        remove.cpu_ms.push(cpu_ns().saturating_sub(c) as f64 / 1e6);
        let more_remove = remove.record(t.elapsed().as_secs_f64(), budget);
        if !more_add || !more_remove {
            break;
        }
    }
    if add.stopped.is_some() && remove.stopped.is_none() {
        remove.stopped = Some("stopped with add one".into());
    }
    if remove.stopped.is_some() && add.stopped.is_none() {
        add.stopped = Some("stopped with remove one".into());
    }
    let full = rules(n, seed);
    // A replace over the budget: one data-path round only.
    let rounds = if median(&replace.ms) > budget * 1e3 {
        1
    } else {
        args.rounds.max(1)
    };
    let mut base = Vec::new();
    let mut with = Vec::new();
    let mut err = None;
    for _ in 0..rounds {
        let round = (|| {
            w.engine
                .replace_acls("b", vec![])
                .map_err(|e| format!("clear the ACL: {e}"))?;
            let p0 = datapath(a, b, args, iperf)?;
            w.engine
                .replace_acls("b", full.clone())
                .map_err(|e| format!("replace the ACL: {e}"))?;
            let p1 = datapath(a, b, args, iperf)?;
            Ok::<_, String>((p0, p1))
        })();
        match round {
            Ok((p0, p1)) => {
                base.push(p0);
                with.push(p1);
            }
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    if let Err(e) = w.engine.replace_acls("b", vec![]) {
        err.get_or_insert(format!("clear the ACL: {e}"));
    }
    let path = match err {
        Some(e) if with.is_empty() => Err(e),
        _ => Ok((medians(&base), medians(&with), with.len())),
    };
    Size {
        n,
        replace,
        add,
        remove,
        path,
    }
}

/// An iperf3 server we started; killed (by its own pid) on drop.
struct IperfServer(Child);

impl Drop for IperfServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        crate::world::untrack_child(self.0.id());
    }
}

pub fn run(args: &Args) -> Result<(), String> {
    if args.rules.is_empty() || args.rules.contains(&0) {
        return Err("--rules needs one or more sizes ≥ 1".into());
    }
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
    load_bench_table(&b.path)?;
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
        crate::world::track_child(child.id());
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
    let mut sizes = Vec::new();
    for &n in &args.rules {
        eprintln!("bulkhead-bench acl: {n} rules…");
        sizes.push(one_size(&w, &a, &b, n, args, have_iperf));
    }
    stop_blast.store(true, Ordering::Relaxed);
    stop_conn.store(true, Ordering::Relaxed);

    println!("ACL of N rules on one endpoint (host firewall), real kernel, redb store");
    println!("targets: replace a 10k-rule ACL ≤ 50 ms; add/remove one rule ≤ 1 ms whatever N");
    println!();
    println!(
        "| rules | replace whole ACL | add one rule (N present) | remove one rule (N present) |"
    );
    println!("|--:|:--|:--|:--|");
    for s in &sizes {
        println!(
            "| {} | {} | {} | {} |",
            s.n,
            s.replace.cell(),
            s.add.cell(),
            s.remove.cell()
        );
    }
    println!();
    println!(
        "| rules | first install (wall / CPU) | replace, CPU | add one, CPU | remove one, CPU |"
    );
    println!("|--:|--:|--:|--:|--:|");
    for s in &sizes {
        // The first replace installs the ACL on an endpoint without one.
        let first = match (s.replace.ms.first(), s.replace.cpu_ms.first()) {
            (Some(w), Some(c)) => format!("{} / {}", dur(*w), dur(*c)),
            _ => "-".into(),
        };
        println!(
            "| {} | {first} | {} | {} | {} |",
            s.n,
            s.replace.cpu_cell(),
            s.add.cpu_cell(),
            s.remove.cpu_cell()
        );
    }
    println!();
    println!(
        "CPU: medians of the calling thread's time on a CPU (user and kernel, the commit included; \
         CLOCK_THREAD_CPUTIME_ID), which a loaded machine does not inflate"
    );
    println!(
        "median (max) of up to 5 replaces and {} add/remove pairs; a kind stops repeating past {} s",
        args.reps.max(1),
        args.max_update_secs
    );
    println!();
    let tool = if have_iperf {
        "iperf3"
    } else {
        "in-process blast"
    };
    println!(
        "data path a → b: no rules vs N rules, alternating, medians of {} rounds of {} s each",
        args.rounds.max(1),
        args.seconds
    );
    println!();
    println!("| rules | measure | no rules | N rules | N vs none | target |");
    println!("|--:|:--|--:|--:|--:|--:|");
    for s in &sizes {
        let n = s.n;
        let (p0, p1, rounds) = match &s.path {
            Ok(p) => p,
            Err(e) => {
                println!("| {n} | not measured: {e} | | | | |");
                continue;
            }
        };
        println!(
            "| {n} | TCP throughput, one stream ({tool}) | {:.2} Gbit/s | {:.2} Gbit/s | {:.3}× | ≥ 0.97× |",
            p0.gbit,
            p1.gbit,
            p1.gbit / p0.gbit
        );
        println!(
            "| {n} | UDP packet rate, one flow, every packet classified | {:.0} kpps | {:.0} kpps | {:.3}× | ≥ 0.90× |",
            p0.pps / 1e3,
            p1.pps / 1e3,
            p1.pps / p0.pps
        );
        println!(
            "| {n} | added first-packet latency (1/rate N − 1/rate none) | | | {:+.2} µs | ≤ 2 µs |",
            (1.0 / p1.pps - 1.0 / p0.pps) * 1e6
        );
        println!(
            "| {n} | new TCP connections/s | {:.0} | {:.0} | {:.3}× | ≥ 0.90× |",
            p0.conns,
            p1.conns,
            p1.conns / p0.conns
        );
        println!(
            "| {n} | connect() median | {:.1} µs | {:.1} µs | {:+.1} µs | |",
            p0.connect_us,
            p1.connect_us,
            p1.connect_us - p0.connect_us
        );
        if *rounds != args.rounds.max(1) {
            println!(
                "| {n} | (medians of {rounds} round(s) only: a replace took longer than the budget, or a round failed) | | | | |"
            );
        }
    }
    println!();
    println!(
        "packet rate: a `sendmmsg` flood (batches of 64) counted and dropped by a bench table"
    );
    println!(
        "after the host firewall (input priority 10), so its conntrack entry is never confirmed"
    );
    println!("and every packet is classified by the ACL.");
    Ok(())
}
