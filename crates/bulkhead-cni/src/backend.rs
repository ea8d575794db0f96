//! What the plugin needs from bulkheadd, as a small trait.
//!
//! [`Backend`] is the whole dependency of the protocol layer on the daemon:
//! attach, detach, look up and list attachments, and say whether ADD can be
//! served. Attachments are keyed by (container id, interface name) within a
//! [`Scope`] (the CNI network configuration's name and the bulkhead network).
//! `del` is idempotent: a missing attachment is success. Two implementations
//! exist: [`crate::daemon::DaemonBackend`] over `bulkhead_api::Client` and
//! [`crate::fake::FakeBackend`] for tests. Failures are [`BackendError`]s,
//! which the plugin maps to CNI codes per command.

use bulkhead_api::{AclRuleSpec, NetworkSpec};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// Which attachments an operation is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// The CNI network configuration's `name`.
    pub conf_name: String,
    /// The bulkhead network (`bulkhead.network`).
    pub network: String,
}

/// An attachment's identity: the spec's (CNI_CONTAINERID, CNI_IFNAME).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AttachmentKey {
    /// `CNI_CONTAINERID`.
    #[serde(rename = "containerID")]
    pub container_id: String,
    /// `CNI_IFNAME`.
    pub ifname: String,
}

/// One port mapping from `runtimeConfig.portMappings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMap {
    /// Port on the host, 1-65535.
    pub host_port: u16,
    /// Port in the container, 1-65535.
    pub container_port: u16,
    /// `tcp` or `udp` (lower case).
    pub protocol: String,
    /// Host address to bind; none means every address.
    pub host_ip: Option<IpAddr>,
}

impl PortMap {
    /// The daemon's `publish` syntax: `[HOST_IP:]HOST:CONTAINER/PROTO`.
    pub fn to_publish(&self) -> String {
        let ip = match self.host_ip {
            Some(IpAddr::V4(ip)) => format!("{ip}:"),
            Some(IpAddr::V6(ip)) => format!("[{ip}]:"),
            None => String::new(),
        };
        format!(
            "{ip}{}:{}/{}",
            self.host_port, self.container_port, self.protocol
        )
    }
}

/// Everything ADD asks of the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddRequest {
    /// Where the attachment belongs.
    pub scope: Scope,
    /// Create the network with these settings when it does not exist.
    pub create_network: Option<NetworkSpec>,
    /// The attachment's identity.
    pub key: AttachmentKey,
    /// `CNI_NETNS`: the runtime's network namespace to adopt.
    pub netns: String,
    /// Published ports.
    pub port_mappings: Vec<PortMap>,
    /// `layered` or `replace`; none is the daemon's default.
    pub acl_mode: Option<String>,
    /// Custom ACL rules to add to the endpoint.
    pub acls: Vec<AclRuleSpec>,
}

/// What the backend reports about an attachment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// The attachment's identity.
    pub key: AttachmentKey,
    /// The namespace path it lives in, when known.
    pub netns: Option<String>,
    /// The container interface's address in CIDR notation.
    pub address: String,
    /// The container interface's MAC address.
    pub mac: String,
    /// The network's gateway, if it has one.
    pub gateway: Option<String>,
    /// The host-side interface (the switch port).
    pub host_ifname: String,
    /// Published ports.
    pub port_mappings: Vec<PortMap>,
}

/// Why a backend call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// bulkheadd cannot be reached (not running, socket missing).
    #[error("{0}")]
    Unreachable(String),
    /// bulkheadd is up but cannot serve now (e.g. still reconciling).
    #[error("{0}")]
    Busy(String),
    /// The bulkhead network does not exist.
    #[error("bulkhead network {0:?} does not exist; create it or set bulkhead.driver")]
    NoSuchNetwork(String),
    /// The attachment does not exist.
    #[error("no attachment for container {} interface {}", .0.container_id, .0.ifname)]
    NotFound(AttachmentKey),
    /// ADD of an attachment that already exists.
    #[error("container {} already has interface {} attached", .0.container_id, .0.ifname)]
    Exists(AttachmentKey),
    /// bulkheadd refused a value from the configuration.
    #[error("{0}")]
    Rejected(String),
    /// bulkheadd refused to adopt `CNI_NETNS` (see `docs/cni.md`, code 105).
    #[error("{0}")]
    NetnsRefused(String),
    /// bulkheadd failed.
    #[error("{0}")]
    Failed(String),
    /// This bulkheadd lacks an API call (see docs/cni.md, "API additions").
    #[error("{0}")]
    Unsupported(String),
}

/// The daemon, as the plugin sees it.
pub trait Backend {
    /// Attaches `req.key` in `req.netns` to the network; fails with
    /// [`BackendError::Exists`] when the key is already attached.
    fn add(&mut self, req: &AddRequest) -> Result<Attachment, BackendError>;
    /// Detaches; success when there is nothing to detach.
    fn del(&mut self, scope: &Scope, key: &AttachmentKey) -> Result<(), BackendError>;
    /// The attachment, or [`BackendError::NotFound`].
    fn check(&mut self, scope: &Scope, key: &AttachmentKey) -> Result<Attachment, BackendError>;
    /// Every attachment in `scope`.
    fn list(&mut self, scope: &Scope) -> Result<Vec<AttachmentKey>, BackendError>;
    /// Ready to serve ADD in `scope`?
    fn status(&mut self, scope: &Scope) -> Result<(), BackendError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_syntax_matches_the_daemon() {
        let mut m = PortMap {
            host_port: 8080,
            container_port: 80,
            protocol: "tcp".into(),
            host_ip: None,
        };
        assert_eq!(m.to_publish(), "8080:80/tcp");
        m.host_ip = Some("127.0.0.1".parse().unwrap());
        assert_eq!(m.to_publish(), "127.0.0.1:8080:80/tcp");
        m.host_ip = Some("::1".parse().unwrap());
        m.protocol = "udp".into();
        assert_eq!(m.to_publish(), "[::1]:8080:80/udp");
    }
}
