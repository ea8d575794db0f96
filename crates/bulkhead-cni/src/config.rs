//! The network configuration on stdin, decoded and checked.
//!
//! [`decode`] turns stdin into JSON (code 6); [`parse`] turns that into a
//! [`NetConf`]: `cniVersion` (code 1 unless claimed), `name`, `type` (must be
//! `bulkhead-cni`), our `bulkhead` object, `runtimeConfig.portMappings`,
//! `prevResult`, `dns` and, for GC, `cni.dev/valid-attachments`. Unknown keys
//! inside `bulkhead`, and the well-known `ipam` (bulkhead allocates addresses
//! itself), are code 2 naming key and value; other top-level keys are the
//! runtime's and are ignored. Every other problem is code 7 naming the field.
//! The schema is documented in `docs/cni.md`.

use crate::backend::{AttachmentKey, PortMap};
use crate::env::{valid_container_id, Command};
use crate::error::{CniError, Code};
use crate::fields::{port_mappings, scalar, AclConf};
use crate::result::Dns;
use crate::version::{Version, VersionError};
use bulkhead_api::{AclRuleSpec, NetworkSpec, DEFAULT_SOCKET};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::path::PathBuf;

/// The plugin's `type`.
pub const PLUGIN_TYPE: &str = "bulkhead-cni";

/// Keys allowed in the `bulkhead` object.
pub const BULKHEAD_KEYS: [&str; 10] = [
    "network",
    "socket",
    "aclMode",
    "acls",
    "driver",
    "subnet",
    "gateway",
    "uplink",
    "vni",
    "aclProfile",
];

/// A checked network configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConf {
    /// The protocol version the runtime selected.
    pub version: Version,
    /// The configuration's `name`.
    pub name: String,
    /// Our settings.
    pub bulkhead: BulkheadConf,
    /// `runtimeConfig.portMappings`.
    pub port_mappings: Vec<PortMap>,
    /// `prevResult`, untouched.
    pub prev_result: Option<Value>,
    /// `dns`, copied into ADD results.
    pub dns: Option<Dns>,
    /// GC's still-valid attachments.
    pub valid_attachments: Option<Vec<AttachmentKey>>,
}

/// The `bulkhead` object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkheadConf {
    /// The bulkhead network to attach to.
    pub network: String,
    /// bulkheadd's API socket.
    pub socket: PathBuf,
    /// `layered` or `replace`.
    pub acl_mode: Option<String>,
    /// Custom ACL rules for every endpoint.
    pub acls: Vec<AclRuleSpec>,
    /// Create the network with this when missing (when `driver` is set).
    pub create_network: Option<NetworkSpec>,
}

/// Why the configuration is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Stdin is not a JSON object.
    #[error("stdin is not a JSON network configuration: {0}")]
    Decode(String),
    /// The version is not claimed or lacks the command.
    #[error(transparent)]
    Version(#[from] VersionError),
    /// A key this plugin does not support.
    #[error("unsupported field {key}: {value}")]
    Unsupported {
        /// The key's path.
        key: String,
        /// Its value as JSON.
        value: String,
    },
    /// A field with a bad value.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field's path.
        field: String,
        /// What is wrong.
        reason: String,
    },
}

impl From<ConfigError> for CniError {
    fn from(e: ConfigError) -> CniError {
        let code = match &e {
            ConfigError::Decode(_) => Code::Decode,
            ConfigError::Version(v) => return v.clone().into(),
            ConfigError::Unsupported { .. } => Code::UnsupportedField,
            ConfigError::Invalid { .. } => Code::InvalidConfig,
        };
        CniError::new(code, e.to_string())
    }
}

pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Stdin as a JSON object (code 6 otherwise).
pub fn decode(stdin: &[u8]) -> Result<Map<String, Value>, ConfigError> {
    match serde_json::from_slice::<Value>(stdin) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(ConfigError::Decode(format!(
            "expected an object, found {}",
            kind(&other)
        ))),
        Err(e) => Err(ConfigError::Decode(e.to_string())),
    }
}

/// The `cniVersion` as given, for echoing in results and errors.
pub fn requested_version(conf: &Map<String, Value>) -> Option<&str> {
    conf.get("cniVersion").and_then(Value::as_str)
}

/// Checks the whole configuration for `command`.
pub fn parse(conf: &Map<String, Value>, command: Command) -> Result<NetConf, ConfigError> {
    // A configuration without cniVersion is a 0.1.0 one, which is not claimed.
    let version = Version::parse(requested_version(conf).unwrap_or("0.1.0"))?;
    version.allows(command)?;
    let name = string(conf, "name")?;
    if !valid_container_id(&name) {
        return Err(invalid("name", format!("{name:?} is not a valid network name: an alphanumeric character, then alphanumerics, '_', '.' or '-'")));
    }
    let plugin_type = string(conf, "type")?;
    if plugin_type != PLUGIN_TYPE {
        return Err(invalid(
            "type",
            format!("{plugin_type:?}; expected {PLUGIN_TYPE:?}"),
        ));
    }
    if let Some(ipam) = conf.get("ipam") {
        return Err(ConfigError::Unsupported {
            key: "ipam".into(),
            value: format!("{ipam} (bulkhead allocates addresses itself; remove ipam)"),
        });
    }
    let bulkhead = bulkhead_conf(conf.get("bulkhead"))?;
    let port_mappings = match conf.get("runtimeConfig") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(rc)) => port_mappings(rc.get("portMappings"))?,
        Some(other) => {
            return Err(invalid(
                "runtimeConfig",
                format!("expected an object, found {}", kind(other)),
            ))
        }
    };
    let dns = typed::<Option<Dns>>(conf.get("dns"), "dns")?;
    let valid_attachments = match conf
        .get("cni.dev/valid-attachments")
        .map(|v| ("cni.dev/valid-attachments", v))
        .or_else(|| {
            conf.get("cni.dev/attachments")
                .map(|v| ("cni.dev/attachments", v))
        }) {
        Some((key, v)) => Some(typed::<Vec<AttachmentKey>>(Some(v), key)?),
        None => None,
    };
    if command == Command::Gc && valid_attachments.is_none() {
        return Err(invalid(
            "cni.dev/valid-attachments",
            "missing; GC without the list of valid attachments would remove every attachment",
        ));
    }
    Ok(NetConf {
        version,
        name,
        bulkhead,
        port_mappings,
        prev_result: conf.get("prevResult").filter(|v| !v.is_null()).cloned(),
        dns,
        valid_attachments,
    })
}

fn string(conf: &Map<String, Value>, key: &str) -> Result<String, ConfigError> {
    match conf.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) | None => Err(invalid(key, "missing")),
        Some(other) => Err(invalid(
            key,
            format!("expected a string, found {}", kind(other)),
        )),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Deserializes `value` (absent is null) with errors naming the path.
pub(crate) fn typed<T: DeserializeOwned>(
    value: Option<&Value>,
    field: &str,
) -> Result<T, ConfigError> {
    let value = value.cloned().unwrap_or(Value::Null);
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            field.to_owned()
        } else {
            format!("{field}.{path}")
        };
        invalid(field, e.into_inner().to_string())
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BulkheadRaw {
    network: String,
    socket: Option<String>,
    acl_mode: Option<String>,
    #[serde(default)]
    acls: Vec<AclConf>,
    driver: Option<String>,
    subnet: Option<String>,
    gateway: Option<String>,
    uplink: Option<String>,
    #[serde(default, deserialize_with = "scalar")]
    vni: Option<String>,
    acl_profile: Option<String>,
}

fn bulkhead_conf(value: Option<&Value>) -> Result<BulkheadConf, ConfigError> {
    let Some(Value::Object(map)) = value else {
        return Err(invalid(
            "bulkhead",
            "missing; expected an object with at least \"network\"",
        ));
    };
    if let Some((key, value)) = map
        .iter()
        .find(|(k, _)| !BULKHEAD_KEYS.contains(&k.as_str()))
    {
        return Err(ConfigError::Unsupported {
            key: format!("bulkhead.{key}"),
            value: value.to_string(),
        });
    }
    let raw: BulkheadRaw = typed(value, "bulkhead")?;
    if !valid_name(&raw.network) {
        return Err(invalid(
            "bulkhead.network",
            format!(
                "{:?} is not a bulkhead name (1-63 of A-Z a-z 0-9 _ . -)",
                raw.network
            ),
        ));
    }
    let socket = PathBuf::from(raw.socket.unwrap_or_else(|| DEFAULT_SOCKET.to_owned()));
    if !socket.is_absolute() {
        return Err(invalid(
            "bulkhead.socket",
            format!("{} is not an absolute path", socket.display()),
        ));
    }
    one_of(
        "bulkhead.aclMode",
        raw.acl_mode.as_deref(),
        &["layered", "replace"],
    )?;
    let mut acls = Vec::with_capacity(raw.acls.len());
    for (i, a) in raw.acls.into_iter().enumerate() {
        let field = |f: &str| format!("bulkhead.acls[{i}].{f}");
        one_of(&field("direction"), Some(&a.direction), &["in", "out"])?;
        one_of(&field("action"), Some(&a.action), &["allow", "block"])?;
        one_of(
            &field("ruleType"),
            a.rule_type.as_deref(),
            &["host", "switch"],
        )?;
        acls.push(AclRuleSpec {
            direction: a.direction,
            action: a.action,
            protocol: a.protocol,
            local_ports: a.local_ports,
            remote_ports: a.remote_ports,
            local_addresses: a.local_addresses,
            remote_addresses: a.remote_addresses,
            priority: a.priority,
            rule_type: a.rule_type,
            id: a.id,
        });
    }
    let create_network = match raw.driver {
        Some(driver) => Some(NetworkSpec {
            name: raw.network.clone(),
            driver,
            subnets: raw.subnet.into_iter().collect(),
            gateway: raw.gateway,
            uplink: raw.uplink,
            vni: raw.vni,
            acl_profile: raw.acl_profile,
        }),
        None if raw.subnet.is_some()
            || raw.gateway.is_some()
            || raw.uplink.is_some()
            || raw.vni.is_some()
            || raw.acl_profile.is_some() =>
        {
            return Err(invalid("bulkhead.driver", "missing; subnet, gateway, uplink, vni and aclProfile only apply when the plugin creates the network"));
        }
        None => None,
    };
    Ok(BulkheadConf {
        network: raw.network,
        socket,
        acl_mode: raw.acl_mode,
        acls,
        create_network,
    })
}

fn valid_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

pub(crate) fn one_of(
    field: &str,
    value: Option<&str>,
    allowed: &[&str],
) -> Result<(), ConfigError> {
    match value {
        Some(v) if !allowed.contains(&v) => Err(invalid(
            field,
            format!("{v:?}; expected one of {}", allowed.join(", ")),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
