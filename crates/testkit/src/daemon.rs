//! The daemon launcher: `bulkheadd` in its own throwaway host namespace,
//! with its store and socket in a temporary directory.
//!
//! - The host namespace is `bht-d<pid>-<n>`; the daemon's namespace
//!   pins use the unique prefix `bht<pid>d<n>-` (hidden
//!   `--netns-prefix`), so parallel tests never see each other's objects.
//! - The daemon is started with `nsenter --net=/run/netns/<host>`
//!   (util-linux), which joins only the network namespace: the daemon's
//!   pins under `/run/netns` stay visible to the test (`ip netns exec`
//!   would unshare the mount namespace). nsenter execs the daemon, so the
//!   child's pid is the daemon's (kill -9 hits the daemon itself).
//! - The binary is `target/<profile>/bulkheadd` next to the test
//!   ([`sibling_bin`]).
//! - On drop (also on panic): kill the daemon, delete every pin with the
//!   prefix, then the host namespace (which takes every link in it along).
//!
//! The `bulkhead` CLI driver ([`Daemon::ok`], [`Daemon::json`], …) is in
//! [`crate::cli`], the CNI plugin driver ([`Daemon::cni`]) in
//! [`crate::plugin`]; [`Daemon::api`] runs API client calls.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::cmd::sibling_bin;
use crate::netns::{delete_pins, pins, unique_prefix, Host};

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
    rt: OnceLock<tokio::runtime::Runtime>,
    // Last field: dropped after `Drop::drop` killed the daemon.
    host_ns: Host,
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
        let mut d = Self::prepare(args)?;
        d.spawn();
        Some(d)
    }

    /// The host namespace and state dir of a daemon that is not started
    /// yet: the caller wires the namespace first (e.g. a cluster underlay,
    /// `crate::cluster`), then calls [`Daemon::spawn`]. `None` when not
    /// root, as [`Daemon::start`].
    #[track_caller]
    pub fn prepare(args: &[&str]) -> Option<Daemon> {
        if !crate::require_root() {
            return None;
        }
        let (prefix, n) = unique_prefix('d');
        let host = format!("bht-d{}-{n}", std::process::id());
        Some(Daemon {
            host_ns: Host::named(&host),
            host,
            prefix,
            dir: tempfile::tempdir().expect("tempdir"),
            extra_args: args.iter().map(|a| (*a).to_owned()).collect(),
            child: None,
            rt: OnceLock::new(),
        })
    }

    /// Whether the daemon process is running (started and not stopped or
    /// killed by the test, and not exited by itself).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("run").join("bulkhead.sock")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// The throwaway host namespace (for the kit's fabrics, e.g. a LAN
    /// behind an uplink: [`crate::lan::Lan::attach`]).
    pub fn host_ns(&self) -> &Host {
        &self.host_ns
    }

    /// The host namespace's pin.
    pub fn host_path(&self) -> PathBuf {
        self.host_ns.host().to_owned()
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
            .arg(format!("--net={}", self.host_path().display()))
            .arg(sibling_bin("bulkheadd"))
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
        while std::os::unix::net::UnixStream::connect(self.socket()).is_err() {
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

    /// Stop, then start again on the same store (reconcile runs).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// An API client for this daemon's socket.
    pub fn client(&self) -> bulkhead_api::Client {
        bulkhead_api::Client::new(self.socket())
    }

    /// Runs an API call on the test's runtime.
    pub fn api<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        let rt = self.rt.get_or_init(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
        });
        rt.block_on(f)
    }

    /// Links in the host namespace whose names start with `prefix` (sorted).
    pub fn host_links(&self, prefix: &str) -> Vec<String> {
        self.host_ns.host_links(prefix)
    }

    /// Namespace pins under /run/netns with this daemon's prefix (sorted).
    pub fn pins(&self) -> Vec<String> {
        pins(&self.prefix)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
        delete_pins(&self.prefix);
    }
}
