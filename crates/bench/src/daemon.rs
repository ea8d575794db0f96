//! `bulkhead-bench daemon`: the real `bulkheadd` binary's memory, at rest
//! and with N endpoints (targets: idle RSS ≤ 20 MiB; 1,000 endpoints
//! ≤ 64 MiB), and the create latency its API callers see.
//!
//! The daemon is the `bulkheadd` next to this executable (cargo builds both
//! into `target/release`; `bench/run` builds it), started with
//! `nsenter --net=/run/netns/bhb-dmn-<pid> bulkheadd --state-dir DIR
//! --socket SOCK --netns-prefix bhb<pid>dmn-` (through `env
//! --default-signal`, see [`Daemon::start`]) inside a throwaway host
//! namespace, so it treats that namespace as the host and its namespace
//! pins never meet anyone else's. It is driven over its socket by the API
//! client ([`bulkhead_api::Client`], what the CLI uses): one nat network,
//! then per endpoint a namespace and an endpoint in it, then everything
//! deleted again, and the daemon stopped with SIGTERM. VmRSS/VmHWM come
//! from `/proc/<pid>/status` (env and nsenter exec, so the child's pid is
//! the daemon's). The daemon is killed and
//! the namespaces removed on drop (also on an error) and on Ctrl-C
//! ([`crate::world::track_child`]).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bulkhead_api::{Client, EndpointSpec, NamespaceSpec, NetworkSpec};
use bulkhead_dataplane::netns::{self, NetnsGuard};

use crate::world::{quantile, status_kib, track_child, untrack_child};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Endpoints (each in its own namespace) created through the API.
    #[arg(long, default_value_t = 1000)]
    pub endpoints: usize,
    /// Concurrent API clients in the concurrency phase (0: skip it).
    #[arg(long, default_value_t = 50)]
    pub clients: usize,
    /// Namespace + endpoint creates per concurrent client.
    #[arg(long, default_value_t = 4)]
    pub per_client: usize,
    /// Directory for the daemon's state (default: a temporary directory
    /// under $TMPDIR). On a tmpfs (`/dev/shm`) the store's fsync costs
    /// nothing: the figures are then the engine and the API without it.
    #[arg(long)]
    pub state_in: Option<PathBuf>,
    /// The daemon's `--warm-namespaces` (default: the daemon's default).
    #[arg(long, value_name = "N")]
    pub warm_namespaces: Option<u32>,
    /// A pause between two sequential create cycles, in milliseconds (a
    /// client that does something else between calls; the daemon refills
    /// its namespace pool in such pauses).
    #[arg(long, value_name = "MS", default_value_t = 0.0)]
    pub pause_ms: f64,
}

/// A running daemon in its throwaway host namespace; on drop: killed,
/// its namespace pins removed, then the host namespace (field order).
pub(crate) struct Daemon {
    child: Option<Child>,
    prefix: String,
    dir: tempfile::TempDir,
    _host: NetnsGuard,
}

impl Daemon {
    /// Starts the daemon with its state in a temporary directory under
    /// `state_in` (`None`: $TMPDIR).
    pub(crate) fn start(state_in: Option<&Path>) -> Result<Self, String> {
        Self::start_in(crate::peers::host("dmn")?, "dmn", state_in, &[])
    }

    /// [`Daemon::start`] in the host namespace `host` (which the daemon
    /// then owns), with namespace pins `bhb<pid><tag>-` and `extra` daemon
    /// arguments (a cluster node's `--etcd …`: `crate::cluster`).
    pub(crate) fn start_in(
        host: NetnsGuard,
        tag: &str,
        state_in: Option<&Path>,
        extra: &[String],
    ) -> Result<Self, String> {
        let bin = crate::clients::beside_exe("bulkheadd")?;
        let pid = std::process::id();
        let dir = match state_in {
            Some(d) => tempfile::tempdir_in(d),
            None => tempfile::tempdir(),
        }
        .map_err(|e| format!("temp dir: {e}"))?;
        let log = std::fs::File::create(dir.path().join("daemon.log"))
            .map_err(|e| format!("daemon log: {e}"))?;
        let prefix = format!("bhb{pid}{tag}-");
        // The bench blocks SIGINT/SIGTERM in every thread for its Ctrl-C
        // watcher, and children inherit the mask: `env --default-signal`
        // unblocks them so the daemon sees its SIGTERM.
        let child = Command::new("env")
            .arg("--default-signal=INT,TERM")
            .arg("nsenter")
            .arg(format!("--net={}", host.path().display()))
            .arg(&bin)
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .arg("--socket")
            .arg(dir.path().join("run").join("bulkhead.sock"))
            .arg("--netns-prefix")
            .arg(&prefix)
            .args(extra)
            .env("BULKHEAD_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("spawn env nsenter {}: {e}", bin.display()))?;
        track_child(child.id());
        let mut d = Daemon {
            child: Some(child),
            prefix,
            dir,
            _host: host,
        };
        let until = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(d.socket()).is_err() {
            if let Some(status) = d.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                return Err(format!("bulkheadd exited with {status}: {}", d.log()));
            }
            if Instant::now() > until {
                return Err(format!("bulkheadd's socket never came: {}", d.log()));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(d)
    }

    pub(crate) fn socket(&self) -> PathBuf {
        self.dir.path().join("run").join("bulkhead.sock")
    }

    /// CPU time the daemon has used (user + system), ms, from
    /// `/proc/<pid>/stat` (clock ticks of 10 ms).
    pub(crate) fn cpu_ms(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).ok()?;
        // Fields after the command's closing parenthesis: state is 3rd,
        // utime 14th, stime 15th of the whole line.
        let rest = stat.rsplit_once(')')?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
        Some(ticks * 10.0)
    }

    /// The pin of the daemon's namespace `name` (one it made).
    pub(crate) fn netns_path(&self, name: &str) -> PathBuf {
        netns::path_of(&format!("{}{name}", self.prefix))
    }

    /// The throwaway namespace the daemon treats as the host.
    pub(crate) fn host_path(&self) -> &Path {
        self._host.path()
    }

    fn log(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default();
        text.trim().to_owned()
    }

    fn pid(&self) -> String {
        self.child
            .as_ref()
            .map_or_else(String::new, |c| c.id().to_string())
    }

    /// (VmRSS, VmHWM) in KiB.
    fn memory(&self) -> Result<(u64, u64), String> {
        let pid = self.pid();
        match (status_kib(&pid, "VmRSS"), status_kib(&pid, "VmHWM")) {
            (Some(rss), Some(hwm)) => Ok((rss, hwm)),
            _ => Err(format!(
                "no memory figures for bulkheadd (pid {pid}): {}",
                self.log()
            )),
        }
    }

    /// SIGTERM and wait up to 30 s for the exit (SIGKILL after that); the
    /// time it took to exit.
    fn stop(&mut self) -> Result<f64, String> {
        let Some(mut c) = self.child.take() else {
            return Ok(0.0);
        };
        let id = c.id();
        let pid = nix::unistd::Pid::from_raw(i32::try_from(id).unwrap_or(i32::MAX));
        let t = Instant::now();
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let status = loop {
            match c.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if t.elapsed() < Duration::from_secs(30) => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                _ => {
                    let _ = c.kill();
                    let _ = c.wait();
                    break None;
                }
            }
        };
        let secs = t.elapsed().as_secs_f64();
        untrack_child(id);
        match status {
            Some(s) if s.success() => Ok(secs),
            Some(s) => Err(format!("bulkheadd on SIGTERM: {s}: {}", self.log())),
            None => Err(format!(
                "bulkheadd did not exit within 30 s of SIGTERM (killed): {}",
                self.log()
            )),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            untrack_child(c.id());
        }
        if let Ok(names) = netns::list(&self.prefix) {
            for n in names {
                let _ = netns::delete(&n);
            }
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// p50 and p99 of `v`, ms.
fn p50_p99(v: &[f64]) -> (f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    (quantile(&s, 0.5), quantile(&s, 0.99))
}

struct Figures {
    rest: (u64, u64),
    full: (u64, u64),
    emptied: (u64, u64),
    health: Vec<f64>,
    ns_create: Vec<f64>,
    ep_create: Vec<f64>,
    ep_delete: Vec<f64>,
    concurrent: Option<crate::daemon_load::Concurrent>,
}

fn drive(d: &Daemon, n: usize, args: &Args) -> Result<Figures, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let client = Client::new(d.socket());
    let call = |what: String, r: Result<(), bulkhead_api::ClientError>| {
        r.map_err(|e| format!("{what}: {e}"))
    };
    // At rest: started, socket up, one health call answered, settled.
    call("health".into(), rt.block_on(client.health()).map(drop))?;
    std::thread::sleep(Duration::from_millis(500));
    let rest = d.memory()?;
    call(
        "create nat network".into(),
        rt.block_on(client.network_create(NetworkSpec {
            name: "bench".into(),
            driver: "nat".into(),
            subnets: vec!["10.200.0.0/16".into()],
            ..Default::default()
        }))
        .map(drop),
    )?;
    let (mut ns_create, mut ep_create) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut health = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        let r = rt.block_on(client.health());
        health.push(ms(t.elapsed()));
        call("health".into(), r.map(drop))?;
        let t = Instant::now();
        let r = rt.block_on(client.namespace_create(NamespaceSpec {
            name: format!("c{i}"),
            ..Default::default()
        }));
        ns_create.push(ms(t.elapsed()));
        call(format!("create namespace c{i}"), r.map(drop))?;
        let t = Instant::now();
        let r = rt.block_on(client.endpoint_create(EndpointSpec {
            name: format!("e{i}"),
            network: "bench".into(),
            namespace: format!("c{i}"),
            ..Default::default()
        }));
        ep_create.push(ms(t.elapsed()));
        call(format!("create endpoint e{i}"), r.map(drop))?;
        if args.pause_ms > 0.0 {
            std::thread::sleep(Duration::from_secs_f64(args.pause_ms / 1e3));
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let full = d.memory()?;
    let mut ep_delete = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        let r = rt.block_on(client.endpoint_remove(&format!("e{i}")));
        ep_delete.push(ms(t.elapsed()));
        call(format!("delete endpoint e{i}"), r)?;
    }
    for i in 0..n {
        call(
            format!("delete namespace c{i}"),
            rt.block_on(client.namespace_remove(&format!("c{i}"))),
        )?;
    }
    let concurrent = crate::daemon_load::concurrent(&d.socket(), args.clients, args.per_client)?;
    call(
        "delete network".into(),
        rt.block_on(client.network_remove("bench")),
    )?;
    std::thread::sleep(Duration::from_millis(500));
    let emptied = d.memory()?;
    Ok(Figures {
        rest,
        full,
        emptied,
        health,
        ns_create,
        ep_create,
        ep_delete,
        concurrent,
    })
}

pub fn run(args: &Args) -> Result<(), String> {
    let n = args.endpoints;
    if n == 0 {
        return Err("--endpoints must be at least 1".into());
    }
    let extra: Vec<String> = args
        .warm_namespaces
        .map(|w| vec!["--warm-namespaces".into(), w.to_string()])
        .unwrap_or_default();
    let mut d = Daemon::start_in(
        crate::peers::host("dmn")?,
        "dmn",
        args.state_in.as_deref(),
        &extra,
    )?;
    let f = drive(&d, n, args)?;
    let exit_secs = d.stop()?;
    let left = netns::list(&d.prefix).map_err(|e| e.to_string())?;
    drop(d);
    let bin = crate::clients::beside_exe("bulkheadd")?;
    println!(
        "bulkheadd ({}) in a throwaway host namespace, driven through its API socket",
        Path::new(&bin).display()
    );
    println!(
        "one nat network; per endpoint: create namespace, create endpoint (redb store, fsync; state in {}); {} ms between cycles; warm namespaces: {}",
        args.state_in.as_deref().map_or_else(|| "$TMPDIR".into(), |p| p.display().to_string()),
        args.pause_ms,
        args.warm_namespaces.map_or_else(|| "the daemon's default".into(), |w| w.to_string())
    );
    println!();
    println!("| bulkheadd | VmRSS | VmHWM (peak) | target |");
    println!("|:--|--:|--:|--:|");
    println!(
        "| at rest (after start) | {:.1} MiB | {:.1} MiB | ≤ 20 MiB |",
        mib(f.rest.0),
        mib(f.rest.1)
    );
    println!(
        "| with {n} endpoints | {:.1} MiB | {:.1} MiB | {} |",
        mib(f.full.0),
        mib(f.full.1),
        if n == 1000 {
            "≤ 64 MiB"
        } else {
            "(target is for 1,000)"
        }
    );
    println!(
        "| after deleting them all | {:.1} MiB | {:.1} MiB | |",
        mib(f.emptied.0),
        mib(f.emptied.1)
    );
    println!();
    println!("exit on SIGTERM: {exit_secs:.2} s");
    println!();
    println!("| API call (client's view) | p50 | p99 | target |");
    println!("|:--|--:|--:|--:|");
    let (a, b) = p50_p99(&f.ep_create);
    println!("| create endpoint | {a:.2} ms | {b:.2} ms | p50 ≤ 2 ms, p99 ≤ 10 ms |");
    let (a, b) = p50_p99(&f.ns_create);
    println!("| create namespace | {a:.2} ms | {b:.2} ms | |");
    let (a, b) = p50_p99(&f.ep_delete);
    println!("| delete endpoint | {a:.2} ms | {b:.2} ms | p50 ≤ 2 ms |");
    let (a, b) = p50_p99(&f.health);
    println!("| GET /health (the API alone) | {a:.2} ms | {b:.2} ms | |");
    println!();
    if let Some(c) = &f.concurrent {
        c.print();
        println!();
    }
    println!(
        "client: connect + one HTTP/1.1 request per call over the Unix socket, timed to the decoded answer."
    );
    if !left.is_empty() {
        println!(
            "warning: {} namespace pins left behind after the deletes (removed now)",
            left.len()
        );
    }
    Ok(())
}
