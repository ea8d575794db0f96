//! A bench cluster: an underlay bridge in its own namespace, one etcd
//! (Debian's `etcd-server`) in another, and N bulkheadd nodes, each in a
//! throwaway host namespace plugged into the underlay.
//!
//! Names follow the bench's (`crate::world`): host namespaces
//! `bhb-<tag>-<pid>`, daemon pins `bhb<pid><tag>-`, so Ctrl-C removes them
//! all; etcd and the daemons are tracked children (killed on Ctrl-C and on
//! drop). Underlay `10.98.0.0/24`: etcd `.1`, node k `.2+k`; the overlay's
//! uplink is `bhbul0` on every node.

use std::net::Ipv4Addr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bulkhead_dataplane::netns::NetnsGuard;

use crate::daemon::Daemon;
use crate::world::{run, track_child, untrack_child};

/// etcd's client URL.
pub const ETCD_URL: &str = "http://10.98.0.1:2379";

/// The underlay device in every node (the overlay networks' uplink).
pub const UPLINK: &str = "bhbul0";

/// An etcd process in its own namespace; killed on drop.
struct Etcd {
    child: Child,
    _dir: tempfile::TempDir,
    _ns: NetnsGuard,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        untrack_child(self.child.id());
    }
}

/// The cluster; drop order: nodes, etcd, underlay.
pub struct Cluster {
    pub nodes: Vec<Daemon>,
    _etcd: Etcd,
    _underlay: NetnsGuard,
}

/// Plugs `ns` into the underlay bridge as port `port` with `addr`/24.
fn plug(underlay: &str, ns: &str, port: &str, addr: Ipv4Addr) -> Result<(), String> {
    run(&[
        "-n", underlay, "link", "add", port, "type", "veth", "peer", "name", UPLINK, "netns", ns,
    ])?;
    run(&["-n", underlay, "link", "set", port, "master", "ul0", "up"])?;
    run(&[
        "-n",
        ns,
        "addr",
        "add",
        &format!("{addr}/24"),
        "dev",
        UPLINK,
    ])?;
    run(&["-n", ns, "link", "set", UPLINK, "up"])
}

fn start_etcd(underlay: &str) -> Result<Etcd, String> {
    let ns = crate::peers::host("cle")?;
    let addr = Ipv4Addr::new(10, 98, 0, 1);
    plug(underlay, ns.name(), "ulp0", addr)?;
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let url = format!("http://{addr}:2379");
    let peer = format!("http://{addr}:2380");
    let log = std::fs::File::create(dir.path().join("etcd.log")).map_err(|e| e.to_string())?;
    let child = Command::new("nsenter")
        .arg(format!("--net={}", ns.path().display()))
        .args(["etcd", "--name", "bhb", "--data-dir"])
        .arg(dir.path().join("data"))
        .args([
            "--listen-client-urls",
            &url,
            "--advertise-client-urls",
            &url,
        ])
        .args([
            "--listen-peer-urls",
            &peer,
            "--initial-advertise-peer-urls",
            &peer,
        ])
        .args(["--initial-cluster", &format!("bhb={peer}")])
        .args(["--logger", "zap", "--log-level", "warn"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("spawn etcd (Debian etcd-server): {e}"))?;
    track_child(child.id());
    let etcd = Etcd {
        child,
        _dir: dir,
        _ns: ns,
    };
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let ok = Command::new("nsenter")
            .arg(format!("--net={}", etcd._ns.path().display()))
            .args([
                "etcdctl",
                &format!("--endpoints={url}"),
                "endpoint",
                "health",
            ])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Ok(etcd);
        }
        if Instant::now() > until {
            return Err("etcd never became healthy".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Cluster {
    /// `n` nodes (`node-a`, …) on a fresh etcd, every daemon serving.
    pub fn start(n: usize) -> Result<Cluster, String> {
        let underlay = crate::peers::host("clu")?;
        run(&[
            "-n",
            underlay.name(),
            "link",
            "add",
            "ul0",
            "type",
            "bridge",
        ])?;
        run(&["-n", underlay.name(), "link", "set", "ul0", "up"])?;
        let etcd = start_etcd(underlay.name())?;
        let mut nodes = Vec::with_capacity(n);
        for (k, letter) in (b'a'..).take(n).enumerate() {
            let letter = char::from(letter);
            let tag = format!("cl{letter}");
            let host = crate::peers::host(&tag)?;
            let addr = Ipv4Addr::new(
                10,
                98,
                0,
                2 + u8::try_from(k).map_err(|_| "too many nodes")?,
            );
            plug(underlay.name(), host.name(), &format!("ulp{}", k + 1), addr)?;
            let extra: Vec<String> = [
                "--etcd",
                "http://10.98.0.1:2379",
                "--node",
                &format!("node-{letter}"),
                "--underlay-address",
                &addr.to_string(),
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
            nodes.push(Daemon::start_in(host, &tag, None, &extra)?);
        }
        Ok(Cluster {
            nodes,
            _etcd: etcd,
            _underlay: underlay,
        })
    }
}
