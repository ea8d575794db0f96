//! `bulkhead-bench all`: every table in one run (what `bench/run` calls),
//! after a header naming the machine, the kernel, the peers' versions and
//! the date. Tables, in order: side-by-side setup/teardown (`peers`), N
//! endpoints on one host (`scale`), the real daemon's memory (`daemon`),
//! the kernel's and the disk's floor under it (`floor`), the `bulkhead`
//! CLI next to netavark (`cli`), ACL updates and data path (`acl`), the policy engine (`policy`),
//! `podman run --rm` on bulkhead-cni, netavark and the CNI bridge (`podman`). A table
//! that fails is reported and the run goes on; the exit status says
//! whether all succeeded.

use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::{acl, cli_path, daemon, floor, peers, podman, policy, scale, settle};

const TABLES: [&str; 8] = [
    "peers", "scale", "daemon", "floor", "cli", "acl", "policy", "podman",
];

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Setup/teardown cycles per peer and variant (peers table).
    #[arg(long, default_value_t = 200)]
    cycles: usize,
    /// Endpoints created one after another per side (scale table), and
    /// through the daemon's API (daemon table).
    #[arg(long, default_value_t = 1000)]
    scale: usize,
    /// ACL sizes, comma separated (acl table).
    #[arg(long, value_delimiter = ',', default_values_t = [10_000usize, 100_000])]
    rules: Vec<usize>,
    /// Seconds per data-path measurement (acl table).
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Stop repeating an ACL update past this many seconds (acl table).
    #[arg(long, default_value_t = 120.0)]
    max_update_secs: f64,
    /// Random packets for the policy engine's verdict check (policy table).
    #[arg(long, default_value_t = 1_000_000)]
    packets: usize,
    /// Tables to leave out, comma separated (peers, scale, daemon, floor,
    /// cli, acl, policy, podman).
    #[arg(long, value_delimiter = ',')]
    skip: Vec<String>,
}

/// The first `field : value` line of `text` whose field is `name`.
fn field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == name).then(|| v.trim())
    })
}

/// Trimmed stdout of `prog args`, if it ran and succeeded.
fn output(prog: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(prog).args(args).output().ok()?;
    let s = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && !s.is_empty()).then_some(s)
}

/// UTC `YYYY-MM-DD HH:MM` of now.
fn utc_now() -> String {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let t = bulkhead_api::time::UtcTime::from_unix_ms(ms);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year, t.month, t.day, t.hour, t.minute
    )
}

fn header() {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let cpu = field(&cpuinfo, "model name").unwrap_or("unknown CPU");
    let vcpus = std::thread::available_parallelism().map_or(0, usize::from);
    let mem = field(&meminfo, "MemTotal")
        .and_then(|v| v.trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or_else(
            || "?".into(),
            |kib| format!("{:.1} GiB", kib / 1024.0 / 1024.0),
        );
    let kernel = output("uname", &["-srm"]).unwrap_or_else(|| "unknown kernel".into());
    let version = |pkg: &str| {
        output("dpkg-query", &["-W", "-f", "${Version}", pkg]).unwrap_or_else(|| "?".into())
    };
    println!("# bulkhead benchmarks");
    println!();
    println!("date: {}", utc_now());
    println!("machine: {cpu}, {vcpus} vCPUs, {mem} memory");
    println!("kernel: {kernel}");
    println!(
        "peers: netavark {}, containernetworking-plugins {}; nftables {}, iperf3 {}",
        version("netavark"),
        version("containernetworking-plugins"),
        version("nftables"),
        version("iperf3")
    );
    if let Some(rev) = output("git", &["rev-parse", "--short", "HEAD"]) {
        println!("bulkhead: commit {rev}");
    }
    println!();
}

pub fn run(args: &Args) -> Result<(), String> {
    for s in &args.skip {
        if !TABLES.contains(&s.as_str()) {
            return Err(format!("--skip {s:?}: tables are {}", TABLES.join(", ")));
        }
    }
    if !nix::unistd::geteuid().is_root() {
        return Err("needs root (it makes network namespaces); run `sudo bench/run`".into());
    }
    header();
    let started = Instant::now();
    let mut failed = Vec::new();
    for table in TABLES {
        if args.skip.iter().any(|s| s == table) {
            continue;
        }
        println!("## {table}");
        println!();
        // The tables before may have left the kernel destroying namespaces.
        let (freed, waited) = settle::namespaces(Duration::from_secs(120), Duration::from_secs(5));
        if freed > 0 {
            println!(
                "(before this table: the kernel freed {freed} namespaces left by the one before, {:.1} s)",
                waited.as_secs_f64()
            );
            println!();
        }
        let t = Instant::now();
        let result = match table {
            "peers" => peers::run(&peers::Args {
                cycles: args.cycles,
            }),
            "scale" => scale::run(&scale::Args {
                count: args.scale,
                clients: 8,
                no_peers: false,
            }),
            "podman" => podman::run(&podman::Args { runs: 20 }),
            "floor" => floor::run(&floor::Args {
                runs: 200,
                dir: None,
            }),
            "cli" => cli_path::run(&cli_path::Args { cycles: 40 }),
            "daemon" => daemon::run(&daemon::Args {
                endpoints: args.scale,
                clients: 50,
                per_client: 4,
                state_in: None,
                warm_namespaces: None,
                pause_ms: 0.0,
            }),
            "acl" => acl::run(&acl::Args {
                rules: args.rules.clone(),
                seconds: args.seconds,
                rounds: 3,
                reps: 20,
                max_update_secs: args.max_update_secs,
                no_iperf: false,
                seed: 7,
            }),
            _ => policy::run(&policy::Args {
                packets: args.packets,
                seed: 42,
                reps: 5,
                max_rules: 100_000,
                dump_ir: None,
                acl_only: false,
            })
            .map_err(|e| e.to_string()),
        };
        if let Err(e) = result {
            println!("{table} failed: {e}");
            eprintln!("bulkhead-bench: {table}: {e}");
            failed.push(table);
        }
        println!();
        println!("({table}: {:.0} s)", t.elapsed().as_secs_f64());
        println!();
    }
    println!(
        "all tables in {:.1} min; method and targets: docs/benchmarks.md",
        started.elapsed().as_secs_f64() / 60.0
    );
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("failed: {}", failed.join(", ")))
    }
}
