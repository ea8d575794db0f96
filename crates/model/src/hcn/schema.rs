//! The HCN v2 JSON schema, as hcsshim emits it: PascalCase keys (the Go
//! field names verbatim), ids under `"ID"`, enums as strings, flags and
//! PortMapping protocols as numbers.
//!
//! These structs only describe the wire shape; they hold raw values and are
//! never trusted. Unknown keys are ignored on input (HNS objects carry many
//! optional fields: `Health`, `State`, `Version`, `Owner`…), absent ones are
//! omitted on output. Numeric fields whose range bulkhead checks are
//! [`Number`]s so that an out-of-range value is reported by its own field
//! path rather than as a type error of the whole object. Policy settings stay
//! raw JSON until their `Type` says what they are.

use serde::{Deserialize, Serialize};
use serde_json::{Number, Value};

/// `{"Major":2,"Minor":0}`; bulkhead reads major 2 and always writes 2.0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SchemaVersion {
    #[serde(default)]
    pub major: u32,
    #[serde(default)]
    pub minor: u32,
}

impl SchemaVersion {
    pub const V2_0: SchemaVersion = SchemaVersion { major: 2, minor: 0 };
}

/// A network, endpoint or namespace policy: `{"Type": …, "Settings": {…}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Policy {
    #[serde(rename = "Type", default)]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub settings: Value,
}

/// `HostComputeNetwork`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostComputeNetwork {
    #[serde(rename = "ID", skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(rename = "Type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<Policy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_pool: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ipams: Vec<Ipam>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flags: Option<Number>,
    /// The schema's free-form base field; bulkhead keeps its own settings
    /// that HCN has no field for here (see `docs/hcn.md`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_params: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_version: Option<SchemaVersion>,
}

/// `Ipam`: `{"Type":"Static"|"Dhcp","Subnets":[…]}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Ipam {
    #[serde(rename = "Type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subnets: Vec<Subnet>,
}

/// `Subnet`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Subnet {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_address_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<Policy>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flags: Option<Number>,
}

/// `Route`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Route {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_hop: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric: Option<Number>,
}

/// `HostComputeEndpoint`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostComputeEndpoint {
    #[serde(rename = "ID", skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_compute_network: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_compute_namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<Policy>,
    /// [WSDoc] spells it `IPConfigurations`.
    #[serde(
        default,
        alias = "IPConfigurations",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ip_configurations: Vec<IpConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flags: Option<Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_params: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_version: Option<SchemaVersion>,
}

/// `IpConfig`: `{"IpAddress","PrefixLength"}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IpConfig {
    #[serde(alias = "IPAddress", skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix_length: Option<Number>,
}

/// `HostComputeNamespace`. HCN namespaces have no name; bulkhead reads and
/// writes the schema's base field `Name` (see `docs/hcn.md`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostComputeNamespace {
    #[serde(rename = "ID", skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The compartment id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace_id: Option<Number>,
    #[serde(rename = "Type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<NamespaceResource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_version: Option<SchemaVersion>,
}

/// `{"Type":"Container"|"Endpoint","Data":{"ID":…}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NamespaceResource {
    #[serde(rename = "Type", default)]
    pub kind: String,
    #[serde(default)]
    pub data: ResourceData,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceData {
    #[serde(rename = "ID", default)]
    pub id: String,
}

/// `AclPolicySetting` (endpoint policy `ACL`). The v1 single-value keys
/// `Protocol`, `LocalPort` and `RemotePort` are read when their v2 list
/// counterparts are absent, so a v1-style rule is never silently widened.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AclPolicySetting {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocols: Option<String>,
    #[serde(skip_serializing)]
    pub protocol: Option<Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_addresses: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_addresses: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_ports: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_ports: Option<String>,
    #[serde(skip_serializing)]
    pub local_port: Option<Number>,
    #[serde(skip_serializing)]
    pub remote_port: Option<Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<Number>,
}

/// A protocol given as a number (hcsshim) or a string (HNS's enum names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum NumberOrString {
    Number(Number),
    String(String),
}

impl std::fmt::Display for NumberOrString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NumberOrString::Number(n) => write!(f, "{n}"),
            NumberOrString::String(s) => f.write_str(s),
        }
    }
}

/// `PortMappingPolicySetting` (endpoint policy `PortMapping`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PortMappingPolicySetting {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<NumberOrString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub internal_port: Option<Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_port: Option<Number>,
    #[serde(rename = "VIP", skip_serializing_if = "Option::is_none")]
    pub vip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flags: Option<Number>,
}

/// Network policy `NetAdapterName`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetAdapterNameSetting {
    #[serde(default)]
    pub network_adapter_name: String,
}

/// Network policy `VxlanPort`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VxlanPortSetting {
    pub port: Option<Number>,
}

/// Subnet policies `VSID` and `VLAN`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IsolationIdSetting {
    pub isolation_id: Option<Number>,
}
