//! The `bulkhead` CLI driver of a kit [`Daemon`]: runs the real client
//! binary (`target/<profile>/bulkhead`, see [`sibling_bin`]) on the daemon's
//! socket, and checks that store and kernel agree.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cmd::{checked, sibling_bin};
use crate::daemon::Daemon;

impl Daemon {
    /// The CLI with `--socket` and `args`.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(sibling_bin("bulkhead"));
        cmd.arg("--socket")
            .arg(self.socket())
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    /// Runs the CLI with `--socket`; the raw output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run bulkhead")
    }

    /// Runs the CLI and asserts success; stdout.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        checked(
            &mut self.command(args),
            &format!("bulkhead {}", args.join(" ")),
        )
    }

    /// `bulkhead network create NAME --driver DRIVER --subnet SUBNET`,
    /// asserted to succeed.
    #[track_caller]
    pub fn network(&self, name: &str, driver: &str, subnet: &str) -> String {
        self.ok(&[
            "network", "create", name, "--driver", driver, "--subnet", subnet,
        ])
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

    /// Names of the JSON list `what ls` returns (sorted).
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

/// A namespace `ns` and an endpoint `ep` in it on network `net`; the
/// endpoint (JSON).
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
