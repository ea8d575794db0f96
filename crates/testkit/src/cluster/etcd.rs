//! An etcd (3.4, Debian's `etcd-server`) for one test: its own namespace
//! on the underlay, its own data dir, plain or TLS with client
//! certificates required.
//!
//! - Started by `nsenter --net=<its ns> setpriv --pdeathsig KILL etcd …`:
//!   nsenter and setpriv exec, so the child's pid is etcd's, and etcd gets
//!   SIGKILL when the thread that started it exits — a test process killed
//!   without unwinding leaves no etcd behind. Hence: call [`Etcd::start`]
//!   on the thread that owns the `Etcd`, not on a short-lived helper.
//! - Single member, heartbeat 10 ms / election 100 ms: it elects itself in
//!   a fraction of a second, so a start (and a restart after an outage) is
//!   quick. [`Etcd::start`] polls `etcdctl endpoint health` every 50 ms.
//! - [`Etcd::stop`] is SIGKILL (an outage, as a crashed or partitioned
//!   store looks to a client); etcd's WAL is synced on every commit, so
//!   [`Etcd::start`] on the same data dir has every acknowledged write.
//! - [`Etcd::ctl`] runs `etcdctl` from any namespace on the underlay with
//!   the client certificate; [`Etcd::ctl_raw`] with the TLS flags the test
//!   chooses (none, a rogue certificate).

use std::net::Ipv4Addr;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::{Tls, Underlay};
use crate::netns::{next_n, Host as Ns};

/// One etcd member serving `url()` on the underlay.
#[derive(Debug)]
pub struct Etcd {
    /// Its underlay address.
    pub addr: Ipv4Addr,
    tls: Option<Tls>,
    dir: tempfile::TempDir,
    child: Option<Child>,
    // Last field: the namespace goes after Drop killed etcd.
    ns: Ns,
}

impl Etcd {
    /// A plain-HTTP etcd on `ul`, started and healthy.
    pub fn new(ul: &Underlay) -> Etcd {
        Self::build(ul, false)
    }

    /// An etcd on `ul` serving HTTPS and requiring a client certificate
    /// signed by its test CA ([`Etcd::tls`]), started and healthy.
    pub fn new_tls(ul: &Underlay) -> Etcd {
        Self::build(ul, true)
    }

    fn build(ul: &Underlay, tls: bool) -> Etcd {
        let ns = Ns::named(&format!("bht-ce{}-{}", std::process::id(), next_n()));
        let addr = ul.plug(ns.host_name());
        let mut e = Etcd {
            addr,
            tls: tls.then(|| Tls::generate(addr)),
            dir: tempfile::tempdir().expect("tempdir"),
            child: None,
            ns,
        };
        e.start();
        e
    }

    /// The client URL, `http(s)://<addr>:2379`.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}:2379", self.addr)
    }

    /// The test PKI when this etcd serves TLS.
    pub fn tls(&self) -> Option<&Tls> {
        self.tls.as_ref()
    }

    /// The namespace etcd runs in (`ip -n`).
    pub fn ns_name(&self) -> &str {
        self.ns.host_name()
    }

    /// etcd's own log (stderr), for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default()
    }

    /// The bulkheadd arguments that join this etcd: `--etcd URL` and, with
    /// TLS, `--etcd-cacert/--etcd-cert/--etcd-key` (the client certificate).
    pub fn daemon_args(&self) -> Vec<String> {
        let mut v = vec!["--etcd".to_owned(), self.url()];
        if let Some(t) = &self.tls {
            for (flag, p) in [
                ("--etcd-cacert", &t.ca),
                ("--etcd-cert", &t.client_cert),
                ("--etcd-key", &t.client_key),
            ] {
                v.push(flag.to_owned());
                v.push(p.display().to_string());
            }
        }
        v
    }

    /// Whether the etcd process is running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Starts etcd on its data dir (fresh, or what the last run left) and
    /// waits until it answers a health check.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "etcd already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("etcd.log"))
            .expect("open etcd log");
        let peer = format!("http://{}:2380", self.addr);
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net={}", self.ns.host().display()))
            .args(["setpriv", "--pdeathsig", "KILL", "etcd", "--name", "bht"])
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .args(["--listen-client-urls", &self.url()])
            .args(["--advertise-client-urls", &self.url()])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("bht={peer}")])
            .args(["--heartbeat-interval", "10", "--election-timeout", "100"])
            .args(["--logger", "zap", "--log-level", "warn"]);
        if let Some(t) = &self.tls {
            cmd.arg("--cert-file")
                .arg(&t.server_cert)
                .arg("--key-file")
                .arg(&t.server_key)
                .arg("--trusted-ca-file")
                .arg(&t.ca)
                .arg("--client-cert-auth");
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn nsenter etcd");
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                panic!("etcd exited with {status}: {}", self.log());
            }
            if self
                .ctl(self.ns_name(), &["endpoint", "health"])
                .status
                .success()
            {
                return;
            }
            assert!(Instant::now() < until, "etcd never healthy: {}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL and reap: an outage. [`Etcd::start`] brings it back on the
    /// same data dir.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `etcdctl ARGS` from the pinned namespace `ns_name` against this
    /// etcd, with the client certificate when it serves TLS; the raw output.
    pub fn ctl(&self, ns_name: &str, args: &[&str]) -> Output {
        let flags: Vec<String> = self
            .tls
            .iter()
            .flat_map(|t| {
                [
                    format!("--cacert={}", t.ca.display()),
                    format!("--cert={}", t.client_cert.display()),
                    format!("--key={}", t.client_key.display()),
                ]
            })
            .collect();
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        self.ctl_raw(ns_name, &flags, args)
    }

    /// `etcdctl` as [`Etcd::ctl`], asserting success; stdout.
    #[track_caller]
    pub fn ctl_ok(&self, ns_name: &str, args: &[&str]) -> String {
        let out = self.ctl(ns_name, args);
        assert!(
            out.status.success(),
            "etcdctl {args:?} from {ns_name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `etcdctl TLS_FLAGS ARGS` from `ns_name` with exactly the TLS flags
    /// given (e.g. none, or a rogue certificate); short timeouts, so a
    /// refused or unreachable etcd answers within about two seconds.
    pub fn ctl_raw(&self, ns_name: &str, tls_flags: &[&str], args: &[&str]) -> Output {
        Command::new("nsenter")
            .arg(format!("--net=/run/netns/{ns_name}"))
            .arg("etcdctl")
            .arg(format!("--endpoints={}", self.url()))
            .args(["--dial-timeout=1s", "--command-timeout=2s"])
            .args(tls_flags)
            .args(args)
            .env("ETCDCTL_API", "3")
            .stdin(Stdio::null())
            .output()
            .expect("run etcdctl")
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.stop();
    }
}
