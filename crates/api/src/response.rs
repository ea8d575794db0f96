//! Response bodies: what the daemon reports about its objects.
//!
//! These are presentation types, decoupled from the daemon's model: values are
//! already rendered to their canonical text (addresses, protocols, profiles),
//! so the CLI and scripts need no domain knowledge. Unknown fields are
//! tolerated when decoding, so an older CLI can talk to a newer daemon.

use serde::{Deserialize, Serialize};

/// `GET /v1/health`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthInfo {
    /// `ok` when the daemon serves requests.
    pub status: String,
    /// The daemon's version.
    pub version: String,
}

/// A network, as listed and inspected.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkInfo {
    /// UUID.
    pub id: String,
    /// Name.
    pub name: String,
    /// Driver name.
    pub driver: String,
    /// Subnets in CIDR notation.
    #[serde(default)]
    pub subnets: Vec<String>,
    /// Gateway address, if the driver has one.
    #[serde(default)]
    pub gateway: Option<String>,
    /// Uplink interface, if any.
    #[serde(default)]
    pub uplink: Option<String>,
    /// VXLAN network identifier (overlay only).
    #[serde(default)]
    pub vni: Option<u32>,
    /// Default ACL profile (`current` or `legacy`).
    pub acl_profile: String,
    /// Number of endpoints attached.
    #[serde(default)]
    pub endpoints: u32,
}

/// A namespace (compartment), as listed and inspected.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceInfo {
    /// UUID.
    pub id: String,
    /// Name.
    pub name: String,
    /// Compartment id; 1 is the host.
    pub compartment_id: u32,
    /// `process` or `vm`.
    pub isolation: String,
    /// Path of the pinned network namespace (none for a vm slot without one).
    #[serde(default)]
    pub netns_path: Option<String>,
    /// Names of endpoints in this namespace.
    #[serde(default)]
    pub endpoints: Vec<String>,
    /// Ids of containers that share this namespace.
    #[serde(default)]
    pub containers: Vec<String>,
    /// The network namespace was made by someone else (a container runtime,
    /// `NamespaceSpec.netns_path`) and is never deleted by the daemon.
    #[serde(default)]
    pub adopted: bool,
}

/// A published port of an endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMappingInfo {
    /// `tcp` or `udp`.
    pub protocol: String,
    /// Host address the mapping binds to; none means every address.
    #[serde(default)]
    pub host_ip: Option<String>,
    /// Port on the host.
    pub host_port: u16,
    /// Port in the endpoint.
    pub container_port: u16,
}

/// A custom ACL rule of an endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclInfo {
    /// Rule id.
    pub id: String,
    /// `in` or `out`.
    pub direction: String,
    /// `allow` or `block`.
    pub action: String,
    /// Protocol name or number, or `any`.
    pub protocol: String,
    /// Local ports and ranges; empty means any.
    #[serde(default)]
    pub local_ports: Vec<String>,
    /// Remote ports and ranges; empty means any.
    #[serde(default)]
    pub remote_ports: Vec<String>,
    /// Local addresses (CIDR); empty means any.
    #[serde(default)]
    pub local_addresses: Vec<String>,
    /// Remote addresses (CIDR); empty means any.
    #[serde(default)]
    pub remote_addresses: Vec<String>,
    /// Priority; the lower number wins.
    pub priority: u16,
    /// `host` or `switch`.
    pub rule_type: String,
}

/// An endpoint, as listed and inspected.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointInfo {
    /// UUID.
    pub id: String,
    /// Name.
    pub name: String,
    /// Network name.
    pub network: String,
    /// Namespace name.
    pub namespace: String,
    /// Address, in CIDR notation or bare.
    pub ip_address: String,
    /// MAC address.
    pub mac_address: String,
    /// Name of the switch port device in the host.
    pub switch_port: String,
    /// Interface name inside the namespace (none for vm endpoints).
    #[serde(default)]
    pub ifname: Option<String>,
    /// Published ports.
    #[serde(default)]
    pub port_mappings: Vec<PortMappingInfo>,
    /// `layered` or `replace`.
    pub acl_mode: String,
    /// Custom ACL rules.
    #[serde(default)]
    pub acls: Vec<AclInfo>,
    /// The container the endpoint was created for (CNI), if any.
    #[serde(default)]
    pub container_id: Option<String>,
    /// A vm endpoint's TAP switch port, what a VMM needs to attach to it
    /// (none for a process endpoint).
    #[serde(default)]
    pub tap: Option<TapInfo>,
    /// The cluster node that holds it, for another node's endpoint
    /// (`endpoint ls --all-nodes`); absent for this host's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// A vm endpoint's TAP: its name and the options it was made with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TapInfo {
    /// The TAP device in the host namespace (the endpoint's switch port).
    pub name: String,
    /// The uid that may open it besides root; with no group either, only
    /// root may.
    #[serde(default)]
    pub owner: Option<u32>,
    /// The gid whose members may open it.
    #[serde(default)]
    pub group: Option<u32>,
    /// Queue pairs (above 1 the TAP is multi-queue).
    pub queues: u8,
}

/// A cluster node, as `node ls` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Node name (`bulkheadd --node`).
    pub name: String,
    /// Underlay address (its VXLAN tunnel endpoint).
    pub underlay_address: String,
    /// `ready` while its lease lives, `lost` after.
    pub state: String,
    /// Endpoints it has published.
    pub endpoints: usize,
    /// When its lease was last renewed (RFC 3339, UTC).
    pub last_seen: String,
}

/// One step on a traced packet's path.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceHop {
    /// `source_point`, `source_binding`, `nat`, `network`,
    /// `destination_point` or `delivery`.
    #[serde(default)]
    pub stage: String,
    /// `host` (firewall), `switch` (port), `nat`, `network`, `delivery`.
    pub point: String,
    /// Where it sits: the endpoint, switch port, network or place, with the
    /// direction at an enforcement point (`a0 out`).
    pub location: String,
    /// The rule that decided: a custom rule id or a default profile rule.
    pub rule: String,
    /// `allow` or `block`.
    pub verdict: String,
}

/// One rule's counters at one enforcement point
/// (`GET /v1/endpoints/{name}/acls?stats=true`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclCounterInfo {
    /// A custom rule's id, or a default rule's name (`stateful`,
    /// `current:in:allow-common`, …).
    pub rule: String,
    /// Whether `rule` is a default rule.
    #[serde(default)]
    pub default: bool,
    /// `host` (host firewall) or `switch` (switch port).
    pub point: String,
    /// `in` or `out`.
    pub direction: String,
    pub packets: u64,
    pub bytes: u64,
}

/// An endpoint's custom rules and the counters of every rule of its
/// points, defaults included.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclStatsInfo {
    #[serde(default)]
    pub acls: Vec<AclInfo>,
    #[serde(default)]
    pub counters: Vec<AclCounterInfo>,
}

/// `POST /v1/trace`: the verdict for one packet and why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceResult {
    /// Final verdict: `allow` or `block`.
    pub verdict: String,
    /// Every step on the path, in order, up to the one that blocked.
    #[serde(default)]
    pub hops: Vec<TraceHop>,
    /// Where the packet ends: `endpoint NAME`, `host`, `network NAME`
    /// (not a local endpoint) or `outside`.
    #[serde(default)]
    pub target: String,
    /// The packet as the destination sees it (after NAT): `SRC -> DST[:PORT]`.
    #[serde(default)]
    pub delivered: String,
}

/// One event, as `bulkhead events` prints it. Fields that do not apply to
/// the kind are left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventInfo {
    /// Sequence number, one higher than the previous event's.
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// `drop`, `tamper`, `restore` or `reconcile`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// `host_firewall` or `switch_port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point: Option<String>,
    /// `in` or `out`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    /// The deciding rule: a custom rule id or a default rule's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Protocol name (`tcp`) or number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_port: Option<u16>,
    /// What happened, in words (tamper, restore, reconcile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// `POST /v1/events`: the events asked for and the newest sequence number
/// (the cursor to ask with next, even when every event was filtered out).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsPage {
    #[serde(default)]
    pub events: Vec<EventInfo>,
    pub last: u64,
}

/// `POST /v1/import`: what an HCN document created.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportResult {
    /// Names of networks created.
    #[serde(default)]
    pub networks: Vec<String>,
    /// Names of namespaces created.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Names of endpoints created.
    #[serde(default)]
    pub endpoints: Vec<String>,
    /// Number of ACL rules created.
    #[serde(default)]
    pub acls: u32,
}
