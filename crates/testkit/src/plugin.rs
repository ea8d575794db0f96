//! The CNI plugin driver: runs the real `bulkhead-cni` binary the way a
//! container runtime does (`CNI_*` variables, the configuration on stdin)
//! against a [`Daemon`] of the kit.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use crate::cmd::sibling_bin;
use crate::daemon::Daemon;

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

impl Daemon {
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
        let mut cmd = Command::new(sibling_bin("bulkhead-cni"));
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
}

/// The first IPv4 address of an ADD result, without its prefix.
pub fn result_ip(result: &Value) -> Ipv4Addr {
    let cidr = result["ips"][0]["address"].as_str().expect("address");
    cidr.split('/')
        .next()
        .and_then(|a| a.parse().ok())
        .expect("ipv4 address")
}
