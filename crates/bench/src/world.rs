//! A throwaway world for the engine benchmarks: a "host" namespace
//! (`bhb-<tag>-<pid>`) in which the engine's real kernel ([`HostKernel`])
//! runs, endpoint namespaces pinned with a prefix unique to this run
//! (`bhb<pid><tag>-`), and a store in a temporary directory.
//!
//! Safety (docs `architecture.md`, "Network safety"): nothing here touches
//! the machine's own namespace; packets only go between namespaces made
//! here. Everything is removed by name when the [`World`] drops (also on a
//! panic), and on Ctrl-C by a watcher thread ([`install_ctrl_c`]) that
//! kills the child processes registered with [`track_child`] (a daemon, an
//! iperf3 server), removes every pin starting with `bhb` + this process id,
//! then exits.

use std::sync::{Arc, Mutex};

use bulkhead_dataplane::host::HostKernel;
use bulkhead_dataplane::netns::{self, NetnsGuard};
use bulkhead_engine::{Config, Engine};
use bulkhead_store::{MemoryStore, RedbStore, Store};

/// Which store the engine runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// The daemon's: redb in a file, fsync on every commit.
    Redb,
    /// In memory (shows the store's share of the time).
    Memory,
}

impl StoreKind {
    pub fn label(self) -> &'static str {
        match self {
            Self::Redb => "redb",
            Self::Memory => "memory",
        }
    }
}

/// One benchmark's world; cleaned up on drop.
pub struct World {
    pub engine: Engine,
    pub prefix: String,
    // Field order is drop order: the engine (holding netlink sockets into
    // the host namespace) first, then the state directory, then the host.
    _dir: tempfile::TempDir,
    host: NetnsGuard,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("prefix", &self.prefix)
            .field("host", &self.host)
            .finish()
    }
}

/// The prefix every name of this process starts with.
fn pid_prefix() -> String {
    format!("bhb{}", std::process::id())
}

impl World {
    pub fn new(tag: &str, store: StoreKind) -> Result<Self, String> {
        if !nix::unistd::geteuid().is_root() {
            return Err("needs root (it makes network namespaces)".into());
        }
        let host = NetnsGuard::create(&format!("bhb-{tag}-{}", std::process::id()))
            .map_err(|e| format!("create host namespace: {e}"))?;
        run(&["-n", host.name(), "link", "set", "lo", "up"])?;
        let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let kernel =
            Arc::new(HostKernel::open(Some(host.path())).map_err(|e| format!("kernel: {e}"))?);
        let store: Arc<dyn Store> = match store {
            StoreKind::Redb => {
                Arc::new(RedbStore::open(dir.path()).map_err(|e| format!("store: {e}"))?)
            }
            StoreKind::Memory => Arc::new(MemoryStore::new()),
        };
        let prefix = format!("{}{tag}-", pid_prefix());
        let (engine, _) = Engine::open(
            kernel,
            store,
            Config {
                netns_prefix: prefix.clone(),
            },
        )
        .map_err(|e| format!("open engine: {e}"))?;
        Ok(Self {
            engine,
            prefix,
            _dir: dir,
            host,
        })
    }
}

impl World {
    /// The throwaway host namespace's pinned name (for `ip -n`).
    pub fn host_name(&self) -> &str {
        self.host.name()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        remove_pins(&self.prefix);
    }
}

fn remove_pins(prefix: &str) {
    if let Ok(names) = netns::list(prefix) {
        for n in names {
            let _ = netns::delete(&n);
        }
    }
}

/// Runs `ip ARGS`.
pub fn run(args: &[&str]) -> Result<(), String> {
    let out = std::process::Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Child processes to kill before the namespaces are removed on Ctrl-C.
static CHILDREN: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// Registers a child process (by pid) for the Ctrl-C watcher to kill.
pub fn track_child(pid: u32) {
    if let (Ok(pid), Ok(mut v)) = (i32::try_from(pid), CHILDREN.lock()) {
        v.push(pid);
    }
}

/// Forgets a child registered with [`track_child`] (it has been reaped).
pub fn untrack_child(pid: u32) {
    if let (Ok(pid), Ok(mut v)) = (i32::try_from(pid), CHILDREN.lock()) {
        v.retain(|&p| p != pid);
    }
}

/// Removes every namespace of this process: `bhb<pid>*` pins and
/// `bhb-*-<pid>` hosts.
fn remove_all_of_this_process() {
    remove_pins(&pid_prefix());
    let suffix = format!("-{}", std::process::id());
    if let Ok(names) = netns::list("bhb-") {
        for n in names.iter().filter(|n| n.ends_with(&suffix)) {
            let _ = netns::delete(n);
        }
    }
}

/// Blocks SIGINT/SIGTERM in this thread (and so in every thread started
/// after) and starts a thread that waits for them, kills the tracked
/// children, removes every namespace of this process (`bhb<pid>*` endpoint
/// pins and `bhb-*-<pid>` hosts) and exits. Call first thing in
/// `main`-like code, before other threads. Child processes inherit the
/// blocked signals; one that must see SIGTERM is started through
/// `env --default-signal=INT,TERM` (see [`crate::daemon`]).
pub fn install_ctrl_c() {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    if set.thread_block().is_err() {
        return;
    }
    std::thread::spawn(move || {
        if set.wait().is_ok() {
            eprintln!("bulkhead-bench: interrupted, removing namespaces");
            let children = CHILDREN.lock().map(|v| v.clone()).unwrap_or_default();
            for pid in children {
                let pid = nix::unistd::Pid::from_raw(pid);
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                let _ = nix::sys::wait::waitpid(pid, None);
            }
            remove_all_of_this_process();
            std::process::exit(130);
        }
    });
}

/// Resident set size of this process, KiB (`VmRSS`).
pub fn rss_kib() -> u64 {
    status_kib("self", "VmRSS").unwrap_or(0)
}

/// A `kB` field (`VmRSS`, `VmHWM`, ...) of `/proc/<pid>/status`.
pub fn status_kib(pid: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        l.strip_prefix(field)?
            .strip_prefix(':')?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    })
}

/// The `q` quantile (0..=1) of sorted `v` (nearest rank).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    quantile(&s, 0.5)
}
