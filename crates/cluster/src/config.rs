//! The daemon's cluster settings and the etcd connection made from them.
//!
//! The connection is lazy: a daemon starts while etcd is down and its
//! requests fail (each naming the endpoints) until etcd answers. TLS: a CA
//! bundle to trust the etcd servers, and optionally a client certificate
//! and key (etcd `--client-cert-auth`); `https://` endpoints need the CA.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};

use crate::error::{ClusterError, Result};

/// Cluster settings (`bulkheadd --etcd … --node … --underlay-address …`).
#[derive(Debug, Clone)]
pub struct Config {
    /// etcd endpoints, e.g. `http://10.0.0.1:2379`.
    pub endpoints: Vec<String>,
    /// This node's name (unique in the cluster).
    pub node: String,
    /// This node's underlay address: the VXLAN tunnel endpoint others use.
    pub underlay: IpAddr,
    /// CA bundle that signs the etcd servers' certificates.
    pub cacert: Option<PathBuf>,
    /// Client certificate and key presented to etcd.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// TTL of the node's lease (default 10 s).
    pub node_ttl: Duration,
    /// Remove a node lost this long (its endpoints and blocks go); `None`:
    /// only `node rm` removes it.
    pub lost_node_grace: Option<Duration>,
    /// Where held address blocks are kept across restarts.
    pub state_dir: PathBuf,
}

impl Config {
    /// The endpoints as errors name them.
    pub fn endpoints_text(&self) -> String {
        self.endpoints.join(",")
    }

    /// Checks the settings (one line naming the flag and value on error).
    pub fn validate(&self) -> Result<()> {
        let bad = |flag: &str, value: &str, allowed: &str| {
            Err(ClusterError::Config(format!(
                "{flag} {value:?}: expected {allowed}"
            )))
        };
        let name_ok = !self.node.is_empty()
            && self.node.len() <= 63
            && self
                .node
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
        if !name_ok {
            return bad(
                "--node",
                &self.node,
                "1-63 letters, digits, '-', '_' or '.'",
            );
        }
        if self.endpoints.is_empty() {
            return bad("--etcd", "", "one or more URLs, comma-separated");
        }
        for e in &self.endpoints {
            let tls = e.starts_with("https://");
            if !(tls || e.starts_with("http://")) || e.len() < 10 {
                return bad(
                    "--etcd",
                    e,
                    "an http:// or https:// URL, e.g. http://10.0.0.1:2379",
                );
            }
            if tls && self.cacert.is_none() {
                return bad(
                    "--etcd",
                    e,
                    "--etcd-cacert as well, for an https:// endpoint",
                );
            }
        }
        if self.cert.is_some() != self.key.is_some() {
            return bad(
                "--etcd-cert/--etcd-key",
                "one of them",
                "both a client certificate and its key, or neither",
            );
        }
        if self.underlay.is_unspecified() || self.underlay.is_loopback() {
            return bad(
                "--underlay-address",
                &self.underlay.to_string(),
                "this host's address on the underlay network",
            );
        }
        if self.node_ttl < Duration::from_secs(2) {
            return bad("--node-ttl", &format!("{:?}", self.node_ttl), "at least 2s");
        }
        Ok(())
    }

    fn read(path: &PathBuf) -> Result<Vec<u8>> {
        std::fs::read(path).map_err(|source| ClusterError::File {
            path: path.display().to_string(),
            source,
        })
    }

    /// The etcd client (connects lazily).
    pub async fn connect(&self) -> Result<Client> {
        // Requests time out at half the lease TTL, within 2–5 s: a
        // keepalive stuck on a dead server is abandoned while the lease
        // still lives, and a loaded etcd (fsync per commit) is given time.
        let timeout = (self.node_ttl / 2).clamp(Duration::from_secs(2), Duration::from_secs(5));
        let mut options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(2))
            .with_timeout(timeout)
            .with_keep_alive(Duration::from_secs(2), timeout);
        if let Some(ca) = &self.cacert {
            let mut tls = TlsOptions::new().ca_certificate(Certificate::from_pem(Self::read(ca)?));
            if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
                tls = tls.identity(Identity::from_pem(Self::read(cert)?, Self::read(key)?));
            }
            options = options.with_tls(tls);
        }
        Client::connect(&self.endpoints, Some(options))
            .await
            .map_err(|e| self.etcd_error(e))
    }

    /// An etcd failure, naming the endpoints.
    pub fn etcd_error(&self, e: etcd_client::Error) -> ClusterError {
        ClusterError::Etcd {
            endpoints: self.endpoints_text(),
            message: one_line(&e.to_string()),
        }
    }
}

/// Error texts from gRPC may span lines; the API answers one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
