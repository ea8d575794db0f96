//! Request bodies: what the user typed, not yet validated.
//!
//! Every field is raw text (numbers are accepted from JSON clients and kept as
//! text); the daemon turns these into domain types with errors that name the
//! field. Unknown fields are refused (`deny_unknown_fields`) so a typo never
//! silently becomes a default. Path parameters (the endpoint of an ACL) are
//! not part of these bodies; the [`crate::Command`] carries them.

use crate::raw;
use serde::{Deserialize, Serialize};

/// `POST /v1/networks`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkCreate {
    /// Network name.
    pub name: String,
    /// `nat`, `transparent`, `l2bridge`, `l2tunnel` or `overlay`.
    pub driver: String,
    /// CIDR of the network's subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    /// Gateway address inside the subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// Host interface the network is attached to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uplink: Option<String>,
    /// VXLAN network identifier (overlay), as given.
    #[serde(
        default,
        deserialize_with = "raw::opt_scalar",
        skip_serializing_if = "Option::is_none"
    )]
    pub vni: Option<String>,
    /// Default ACL profile: `current` or `legacy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl_profile: Option<String>,
}

/// `POST /v1/namespaces`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamespaceCreate {
    /// Namespace name.
    pub name: String,
    /// `process` or `vm` (the daemon also accepts `hyperv`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<String>,
    /// Adopt this existing network namespace (an absolute path to an nsfs
    /// mount made by a container runtime) instead of creating one. Process
    /// isolation only. The daemon never deletes an adopted namespace; the
    /// same name and path again is idempotent (a retried CNI ADD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns_path: Option<String>,
    /// A container that joins the (adopted) namespace, e.g. the pod sandbox
    /// of a CNI ADD or a later container of the same pod; listed in
    /// `NamespaceInfo.containers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
}

/// `POST /v1/endpoints`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointCreate {
    /// Endpoint name.
    pub name: String,
    /// Name of the network to attach to.
    pub network: String,
    /// Name of the namespace the endpoint lives in.
    pub namespace: String,
    /// Requested address (else allocated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// Requested MAC address (else derived).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// Port mappings, each `[HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|/udp]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub publish: Vec<String>,
    /// `layered` or `replace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl_mode: Option<String>,
    /// Interface name inside the namespace (default `eth0`, `eth1`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ifname: Option<String>,
    /// Container that owns the endpoint (CNI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
}

/// `POST /v1/endpoints/{endpoint}/acls`: one custom ACL rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AclRuleRequest {
    /// `in` or `out`.
    pub direction: String,
    /// `allow` or `block`.
    pub action: String,
    /// Protocol name or number, or `any`.
    #[serde(
        default,
        deserialize_with = "raw::opt_scalar",
        skip_serializing_if = "Option::is_none"
    )]
    pub protocol: Option<String>,
    /// Ports and ranges, comma separated.
    #[serde(
        default,
        deserialize_with = "raw::opt_list",
        skip_serializing_if = "Option::is_none"
    )]
    pub local_ports: Option<String>,
    /// Ports and ranges, comma separated.
    #[serde(
        default,
        deserialize_with = "raw::opt_list",
        skip_serializing_if = "Option::is_none"
    )]
    pub remote_ports: Option<String>,
    /// Addresses and CIDRs, comma separated.
    #[serde(
        default,
        deserialize_with = "raw::opt_list",
        skip_serializing_if = "Option::is_none"
    )]
    pub local_addresses: Option<String>,
    /// Addresses and CIDRs, comma separated.
    #[serde(
        default,
        deserialize_with = "raw::opt_list",
        skip_serializing_if = "Option::is_none"
    )]
    pub remote_addresses: Option<String>,
    /// Priority (lower wins), as given.
    #[serde(
        default,
        deserialize_with = "raw::opt_scalar",
        skip_serializing_if = "Option::is_none"
    )]
    pub priority: Option<String>,
    /// `host` or `switch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_type: Option<String>,
    /// Caller-chosen rule id (else generated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// `POST /v1/events`: recent events (drops, tampering, repairs), oldest
/// first. A long poll: with `wait_ms`, the daemon answers as soon as an
/// event newer than `after` exists, or after `wait_ms` (at most
/// [`MAX_EVENTS_WAIT_MS`]) with none; `bulkhead events --follow` repeats it
/// with the last sequence number it saw.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsRequest {
    /// Only events of this endpoint (name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Only events with a sequence number above this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<u64>,
    /// How long to wait for a newer event, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
}

/// The longest wait of one `POST /v1/events`.
pub const MAX_EVENTS_WAIT_MS: u64 = 10_000;

/// `POST /v1/trace`: explain the verdict for one packet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceRequest {
    /// Source endpoint name or IP address.
    pub from: String,
    /// Destination endpoint name, IP address or `HOST_IP:PORT`.
    pub to: String,
    /// Protocol name or number.
    #[serde(deserialize_with = "required_scalar")]
    pub protocol: String,
    /// Destination port, as given.
    #[serde(
        default,
        deserialize_with = "raw::opt_scalar",
        skip_serializing_if = "Option::is_none"
    )]
    pub port: Option<String>,
    /// The source address the `from` endpoint writes (a spoofed one is
    /// dropped at its switch port).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    /// Source port (default 49152).
    #[serde(
        default,
        deserialize_with = "raw::opt_scalar",
        skip_serializing_if = "Option::is_none"
    )]
    pub source_port: Option<String>,
    /// Trace a packet of an established connection (a reply).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub established: bool,
}

/// `POST /v1/import`: an HCN v2 JSON document, sent as the body itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ImportRequest {
    /// The document, untouched; the daemon maps it to the model.
    pub document: serde_json::Value,
}

fn required_scalar<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    raw::opt_scalar(d)?.ok_or_else(|| serde::de::Error::custom("must not be null"))
}
