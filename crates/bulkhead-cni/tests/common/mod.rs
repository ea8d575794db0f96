//! Harness for the plugin against the real daemon (root only).
//!
//! - [`Daemon`]: `bulkheadd` in a throwaway "host" namespace `bht-c<pid>-<n>`
//!   (started with `nsenter --net=`, so its `/run/netns` pins stay visible),
//!   pins prefixed `bht<pid>c<n>-`, socket and store in a temporary
//!   directory. The binary is taken from the test's target directory
//!   (`cargo test --workspace` builds it; alone: `cargo build -p bulkheadd`).
//! - [`Netns`]: a namespace made the way a runtime makes one (`ip netns
//!   add`), deleted on drop unless already gone.
//! - [`Daemon::cni`] runs the real `bulkhead-cni` binary with `CNI_*`
//!   variables and a configuration for this daemon's socket.
//!
//! On drop (also on panic) everything made here is deleted: daemon, pins,
//! host namespace (taking every link in it along). Nothing touches the
//! machine's own namespace, links, routes or firewall.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Runs `ip ARGS`, panicking with its output when it fails; stdout.
pub fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn next_n() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A binary of the workspace next to this test's target directory.
pub fn sibling_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join(name);
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p {name}` (or `cargo test --workspace`)",
        bin.display()
    );
    bin
}

/// A runtime-style network namespace (`ip netns add`), removed on drop.
#[derive(Debug)]
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let name = format!("bht-{tag}{}-{}", std::process::id(), next_n());
        ip(&["netns", "add", &name]);
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        Netns { name }
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    /// Deletes it now (as a runtime does after a container exits).
    pub fn delete(&self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if self.path().exists() {
            self.delete();
        }
    }
}

/// What one plugin run printed.
#[derive(Debug)]
pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }

    /// The CNI error code printed on failure.
    pub fn code(&self) -> u64 {
        assert!(!self.ok, "succeeded: {self:?}");
        self.json()["code"].as_u64().expect("code")
    }
}

/// One daemon in its own host namespace.
#[derive(Debug)]
pub struct Daemon {
    pub host: String,
    pub prefix: String,
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    rt: tokio::runtime::Runtime,
}

impl Daemon {
    /// `None` when not root (loud skip; panics under `CI=true`).
    #[track_caller]
    pub fn start() -> Option<Daemon> {
        if !bulkhead_dataplane::testing::require_root() {
            return None;
        }
        let (pid, n) = (std::process::id(), next_n());
        let host = format!("bht-c{pid}-{n}");
        ip(&["netns", "add", &host]);
        ip(&["-n", &host, "link", "set", "lo", "up"]);
        let mut d = Daemon {
            host,
            prefix: format!("bht{pid}c{n}-"),
            dir: tempfile::tempdir().expect("tempdir"),
            child: None,
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
        };
        d.spawn();
        Some(d)
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("bulkhead.sock")
    }

    pub fn host_path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.host)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    /// Starts the daemon on the same store and waits for its socket.
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("daemon.log"))
            .expect("open log");
        let _ = std::fs::remove_file(self.socket());
        let child = Command::new("nsenter")
            .arg(format!("--net={}", self.host_path().display()))
            .arg(sibling_bin("bulkheadd"))
            .arg("--state-dir")
            .arg(self.dir.path().join("state"))
            .arg("--socket")
            .arg(self.socket())
            .arg("--netns-prefix")
            .arg(&self.prefix)
            .env("BULKHEAD_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn nsenter bulkheadd");
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(self.socket()).is_err() {
            if let Some(s) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                panic!("bulkheadd exited with {s}: {}", self.log());
            }
            assert!(Instant::now() < until, "no socket: {}", self.log());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM, wait, start again (reconcile runs).
    pub fn restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let status = c.wait().expect("wait daemon");
            assert!(status.success(), "bulkheadd on SIGTERM: {status}");
        }
        self.spawn();
    }

    /// Runs an API call on the test's runtime.
    pub fn api<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        self.rt.block_on(f)
    }

    pub fn client(&self) -> bulkhead_api::Client {
        bulkhead_api::Client::new(self.socket())
    }

    /// A CNI network configuration (conflist plugin entry) for this daemon.
    pub fn conf(&self, name: &str, network: &str, subnet: &str) -> Value {
        json!({
            "cniVersion": "1.1.0",
            "name": name,
            "type": "bulkhead-cni",
            "bulkhead": {
                "network": network,
                "socket": self.socket(),
                "driver": "nat",
                "subnet": subnet,
            }
        })
    }

    /// Runs the plugin: `command` for `container` in `netns` (none: unset).
    pub fn cni(&self, command: &str, container: &str, netns: Option<&Path>, conf: &Value) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bulkhead-cni"));
        cmd.env_clear()
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", container)
            .env("CNI_IFNAME", "eth0")
            .env("CNI_PATH", "/nonexistent")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(p) = netns {
            cmd.env("CNI_NETNS", p);
        }
        let mut child = cmd.spawn().expect("spawn bulkhead-cni");
        let body = serde_json::to_vec(conf).expect("conf");
        std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), &body)
            .expect("write stdin");
        let out = child.wait_with_output().expect("wait plugin");
        Run {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Links in the host namespace whose names start with `prefix`.
    pub fn host_links(&self, prefix: &str) -> Vec<String> {
        ip(&["-n", &self.host, "-o", "link", "show"])
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_owned())
            .filter(|n| n.starts_with(prefix))
            .collect()
    }

    /// Namespace pins under /run/netns with this daemon's prefix.
    pub fn pins(&self) -> Vec<String> {
        std::fs::read_dir("/run/netns")
            .map(|d| {
                d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .filter(|n| n.starts_with(&self.prefix))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for pin in self.pins() {
            let _ = Command::new("ip").args(["netns", "del", &pin]).output();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.host])
            .output();
    }
}

/// The first IPv4 address of an ADD result, without its prefix.
pub fn result_ip(result: &Value) -> std::net::Ipv4Addr {
    let cidr = result["ips"][0]["address"].as_str().expect("address");
    cidr.split('/')
        .next()
        .and_then(|a| a.parse().ok())
        .expect("ipv4 address")
}

/// Whether a probe that should arrive does, tried for up to 5 s: right
/// after ADD the new links may still be coming up on a loaded machine. For
/// probes expected to arrive only (a refused probe must be checked once).
pub fn arrives_soon(
    from: &Path,
    at: &Path,
    to: std::net::Ipv4Addr,
    kind: bulkhead_dataplane::probe::ProbeKind,
) -> bool {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        match bulkhead_dataplane::probe::arrives(from, at, to, kind) {
            Ok(true) => return true,
            Ok(false) if Instant::now() < until => std::thread::sleep(Duration::from_millis(50)),
            Ok(false) => return false,
            Err(e) => panic!("probe {kind:?} to {to}: {e}"),
        }
    }
}
