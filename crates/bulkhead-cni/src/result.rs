//! The ADD success result, version by version.
//!
//! [`CniResult`] is version-neutral; [`CniResult::render`] writes it in the
//! format of the requested version (0.3.x/0.4.0: `ips[].version` is "4" or
//! "6"; 1.0.0: no `version`; 1.1.0 may add interface `mtu`, `socketPath`,
//! `pciID` and route `mtu`, `advmss`, `priority`, `table`, `scope`).
//! [`CniResult::from_prev`] reads any of those formats back (a `prevResult`).
//! [`CniResult::for_attachment`] builds ours: the host-side switch port (no
//! sandbox), the container interface (sandbox `CNI_NETNS`), its address with
//! the gateway and `interface` index 1, a default route via the gateway, and
//! the configuration's `dns`.

use crate::backend::Attachment;
use crate::version::Version;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// DNS settings (`dns` in configurations and results).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dns {
    /// Name servers, in priority order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    /// Local domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Search domains.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    /// Resolver options.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

/// An interface of the result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Interface {
    /// Name.
    pub name: String,
    /// Hardware address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// MTU (1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// Namespace path; none for host interfaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
    /// Socket path (1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket_path: Option<String>,
    /// PCI id (1.1.0).
    #[serde(default, rename = "pciID", skip_serializing_if = "Option::is_none")]
    pub pci_id: Option<String>,
}

/// An address of the result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConfig {
    /// Address in CIDR notation.
    pub address: String,
    /// The subnet's gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// Index into `interfaces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
}

/// A route of the result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// Destination, CIDR.
    pub dst: String,
    /// Next hop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<String>,
    /// Path MTU (1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// Advertised MSS (1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advmss: Option<u32>,
    /// Priority (1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    /// Table (1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<u32>,
    /// Scope (1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<u32>,
}

/// A version-neutral ADD result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CniResult {
    /// Interfaces created.
    #[serde(default)]
    pub interfaces: Vec<Interface>,
    /// Addresses assigned.
    #[serde(default)]
    pub ips: Vec<IpConfig>,
    /// Routes created.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// DNS settings.
    #[serde(default)]
    pub dns: Dns,
}

/// Why a `prevResult` cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResultError {
    /// Not a result of any claimed version.
    #[error("prevResult is not a CNI result: {0}")]
    Malformed(String),
}

impl CniResult {
    /// Our result for `attachment`, its container interface in `netns`.
    pub fn for_attachment(attachment: &Attachment, netns: &str, dns: Option<&Dns>) -> CniResult {
        let routes = match &attachment.gateway {
            Some(gw) => vec![Route {
                dst: if gw.contains(':') {
                    "::/0"
                } else {
                    "0.0.0.0/0"
                }
                .to_owned(),
                gw: Some(gw.clone()),
                ..Route::default()
            }],
            None => Vec::new(),
        };
        CniResult {
            interfaces: vec![
                Interface {
                    name: attachment.host_ifname.clone(),
                    ..Interface::default()
                },
                Interface {
                    name: attachment.key.ifname.clone(),
                    mac: Some(attachment.mac.clone()),
                    sandbox: Some(netns.to_owned()),
                    ..Interface::default()
                },
            ],
            ips: vec![IpConfig {
                address: attachment.address.clone(),
                gateway: attachment.gateway.clone(),
                interface: Some(1),
            }],
            routes,
            dns: dns.cloned().unwrap_or_default(),
        }
    }

    /// Reads a `prevResult` in any claimed version's format.
    pub fn from_prev(value: &Value) -> Result<CniResult, ResultError> {
        let mut value = value.clone();
        if let Some(obj) = value.as_object_mut() {
            obj.remove("cniVersion");
            if let Some(ips) = obj.get_mut("ips").and_then(Value::as_array_mut) {
                for ip in ips.iter_mut().filter_map(Value::as_object_mut) {
                    ip.remove("version");
                }
            }
        }
        serde_json::from_value(value).map_err(|e| ResultError::Malformed(e.to_string()))
    }

    /// Appends `other` (ours) after a previous plugin's result.
    pub fn chain(mut self, other: CniResult) -> CniResult {
        let offset = self.interfaces.len();
        self.interfaces.extend(other.interfaces);
        self.ips.extend(other.ips.into_iter().map(|mut ip| {
            ip.interface = ip.interface.map(|i| i + offset);
            ip
        }));
        self.routes.extend(other.routes);
        if other.dns != Dns::default() {
            self.dns = other.dns;
        }
        self
    }

    /// The result in `version`'s format.
    pub fn render(&self, version: Version) -> Value {
        let mut interfaces = self.interfaces.clone();
        let mut routes = self.routes.clone();
        if !version.has_1_1_fields() {
            for i in &mut interfaces {
                (i.mtu, i.socket_path, i.pci_id) = (None, None, None);
            }
            for r in &mut routes {
                (r.mtu, r.advmss, r.priority, r.table, r.scope) = (None, None, None, None, None);
            }
        }
        let ips: Vec<Value> = self
            .ips
            .iter()
            .map(|ip| {
                let mut v = json!(ip);
                if version.ips_carry_version() {
                    let family = if ip.address.contains(':') { "6" } else { "4" };
                    v["version"] = json!(family);
                }
                v
            })
            .collect();
        json!({
            "cniVersion": version.as_str(),
            "interfaces": interfaces,
            "ips": ips,
            "routes": routes,
            "dns": self.dns,
        })
    }
}

#[cfg(test)]
#[path = "result_tests.rs"]
mod tests;
