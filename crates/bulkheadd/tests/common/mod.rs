//! Harness for end-to-end tests of the real binaries (tier T2): `bulkheadd`
//! started inside a throwaway "host" network namespace, driven by the real
//! `bulkhead` CLI over a socket in a temporary directory.
//!
//! - The host namespace is `bht-d<pid>-<n>`; the daemon's namespace pins use
//!   the unique prefix `bht<pid>d<n>-` (hidden `--netns-prefix`), so parallel
//!   tests never see each other's objects.
//! - The daemon is started with `nsenter --net=/run/netns/<host>` (util-linux),
//!   which joins only the network namespace: the daemon's pins under
//!   `/run/netns` stay visible to the test (`ip netns exec` would unshare the
//!   mount namespace). nsenter execs the daemon, so the child's pid is the
//!   daemon's (kill -9 hits the daemon itself).
//! - The CLI binary: `CARGO_BIN_EXE_*` exists only for the test's own
//!   package, so the harness takes `bulkhead` from the same target directory
//!   as the test executable (`target/debug/bulkhead`). `cargo test
//!   --workspace` builds it (the `bulkhead` package has integration tests);
//!   alone, run `cargo test -p bulkhead -p bulkheadd`.
//! - On drop (also on panic): kill the daemon, delete every pin with the
//!   prefix, then the host namespace (which takes every link in it along).
//!   Nothing touches the machine's own namespace, links, routes or firewall.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Runs `ip ARGS`, panicking with its output when it fails.
pub fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `bulkhead` CLI binary next to this test's target directory.
pub fn cli_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/debug/deps/<test>-<hash> -> target/debug/bulkhead
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("bulkhead");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p bulkhead` (or `cargo test --workspace`)",
        bin.display()
    );
    bin
}

/// One daemon in its own host namespace, with its state dir and socket.
#[derive(Debug)]
pub struct Daemon {
    /// The host namespace's name (`ip -n`).
    pub host: String,
    /// Prefix of the daemon's namespace pins.
    pub prefix: String,
    pub dir: tempfile::TempDir,
    /// Extra daemon arguments, used from the next (re)start on.
    pub extra_args: Vec<String>,
    child: Option<Child>,
}

fn next_n() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Daemon {
    /// `None` when not root (loud skip; panics under `CI=true`).
    #[track_caller]
    pub fn start() -> Option<Daemon> {
        Self::start_with(&[])
    }

    /// [`Daemon::start`] with extra daemon arguments from the first start.
    #[track_caller]
    pub fn start_with(args: &[&str]) -> Option<Daemon> {
        if !bulkhead_dataplane::testing::require_root() {
            return None;
        }
        let (pid, n) = (std::process::id(), next_n());
        let host = format!("bht-d{pid}-{n}");
        ip(&["netns", "add", &host]);
        let mut d = Daemon {
            host,
            prefix: format!("bht{pid}d{n}-"),
            dir: tempfile::tempdir().expect("tempdir"),
            extra_args: args.iter().map(|a| (*a).to_owned()).collect(),
            child: None,
        };
        ip(&["-n", &d.host, "link", "set", "lo", "up"]);
        d.spawn();
        Some(d)
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("run").join("bulkhead.sock")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("daemon running").id()
    }

    /// Starts the daemon (on the same state dir) and waits for its socket.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "daemon already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("daemon.log"))
            .expect("open log");
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.host))
            .arg(env!("CARGO_BIN_EXE_bulkheadd"))
            .arg("--state-dir")
            .arg(self.state_dir())
            .arg("--socket")
            .arg(self.socket())
            .arg("--netns-prefix")
            .arg(&self.prefix)
            .args(&self.extra_args)
            .env("BULKHEAD_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn nsenter bulkheadd");
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            if std::os::unix::net::UnixStream::connect(self.socket()).is_ok() {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                panic!("bulkheadd exited with {status}: {}", self.log());
            }
            assert!(Instant::now() < until, "socket never came: {}", self.log());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL, then reap.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(i32::try_from(c.id()).expect("pid"));
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let status = c.wait().expect("wait daemon");
            assert!(status.success(), "bulkheadd on SIGTERM: {status}");
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Runs the CLI with `--socket`; the raw output.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(cli_bin())
            .arg("--socket")
            .arg(self.socket())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run bulkhead")
    }

    /// Runs the CLI and asserts success; stdout.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "bulkhead {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// Runs the CLI with `--output json` and asserts success.
    #[track_caller]
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--output", "json"];
        all.extend_from_slice(args);
        let text = self.ok(&all);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"))
    }

    /// Runs the CLI, asserts failure with exactly one line on stderr; that line.
    #[track_caller]
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !out.status.success(),
            "bulkhead {} succeeded: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(err.lines().count(), 1, "{args:?}: not one line: {err:?}");
        assert!(err.starts_with("bulkhead: "), "{args:?}: {err}");
        err.trim_end().to_owned()
    }

    /// Names of the JSON list `what ls` returns.
    pub fn names(&self, what: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .json(&[what, "ls"])
            .as_array()
            .expect("array")
            .iter()
            .map(|o| o["name"].as_str().expect("name").to_owned())
            .collect();
        v.sort();
        v
    }

    /// Links in the host namespace whose names start with `prefix`.
    pub fn host_links(&self, prefix: &str) -> Vec<String> {
        let out = ip(&["-n", &self.host, "-o", "link", "show"]);
        let mut v: Vec<String> = out
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_owned())
            .filter(|n| n.starts_with(prefix))
            .collect();
        v.sort();
        v
    }

    /// The host links with `prefix` (sorted) once they are exactly `want`,
    /// or as they are after 5 s: the daemon destroys a deleted endpoint's
    /// switch port in the background, shortly after the delete returned
    /// (it is down and unreachable already).
    pub fn host_links_become(&self, prefix: &str, want: &[String]) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let links = self.host_links(prefix);
            if links == want || Instant::now() >= deadline {
                return links;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Namespace pins under /run/netns with this daemon's prefix.
    pub fn pins(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir("/run/netns")
            .map(|d| {
                d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .filter(|n| n.starts_with(&self.prefix))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// VmRSS of the daemon in kB.
    pub fn rss_kb(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .expect("VmRSS")
    }

    /// Store and kernel agree: every listed endpoint has its switch port in
    /// the host namespace (and, for process namespaces, its pin); no `bhp*`
    /// link, pin or namespace is left without a record. Returns the
    /// endpoints (JSON) for further checks.
    #[track_caller]
    pub fn assert_consistent(&self) -> Vec<Value> {
        let eps = self.json(&["endpoint", "ls"]);
        let eps = eps.as_array().expect("array").clone();
        let nss = self.json(&["namespace", "ls"]);
        let mut ports: Vec<String> = eps
            .iter()
            .map(|e| e["switch_port"].as_str().expect("port").to_owned())
            .collect();
        ports.sort();
        assert_eq!(
            self.host_links_become("bhp", &ports),
            ports,
            "switch ports vs endpoints"
        );
        let mut want_pins: Vec<String> = nss
            .as_array()
            .expect("array")
            .iter()
            .filter(|n| n["isolation"] == "process")
            .map(|n| format!("{}{}", self.prefix, n["name"].as_str().expect("name")))
            .collect();
        want_pins.sort();
        assert_eq!(self.pins(), want_pins, "pins vs namespaces");
        let mut ips: Vec<&str> = eps
            .iter()
            .map(|e| e["ip_address"].as_str().expect("ip"))
            .collect();
        let n = ips.len();
        ips.sort_unstable();
        ips.dedup();
        assert_eq!(ips.len(), n, "duplicate addresses: {eps:?}");
        eps
    }

    /// `ping -c1` from namespace `ns` (via `bulkhead exec`) to `ip`, retried
    /// for up to 3 s while fresh links come up.
    pub fn pings(&self, ns: &str, to: &str) -> bool {
        let until = Instant::now() + Duration::from_secs(3);
        loop {
            let out = self.run(&["exec", ns, "--", "ping", "-c1", "-W1", to]);
            if out.status.success() {
                return true;
            }
            if Instant::now() > until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
        for pin in self.pins() {
            let _ = Command::new("ip").args(["netns", "del", &pin]).output();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.host])
            .output();
    }
}

/// A nat network, namespace and endpoint helper: `ns` and endpoint `ep`.
pub fn endpoint(d: &Daemon, net: &str, ns: &str, ep: &str) -> Value {
    d.ok(&["namespace", "create", ns]);
    d.json(&[
        "endpoint",
        "create",
        ep,
        "--network",
        net,
        "--namespace",
        ns,
    ])
}
