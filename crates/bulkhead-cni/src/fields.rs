//! Typed pieces of the configuration: ACL rules and port mappings.
//!
//! [`AclConf`] is `AclRuleSpec` in camelCase with lists given as a string,
//! a number or an array; [`port_mappings`] reads and checks
//! `runtimeConfig.portMappings` (ports 1-65535, `tcp`/`udp`, an IP or empty
//! `hostIP`). Errors are [`ConfigError`]s naming the field; this module adds
//! no error type of its own.

use crate::backend::PortMap;
use crate::config::{invalid, one_of, typed, ConfigError};
use serde::Deserialize;
use serde_json::Value;
use std::net::IpAddr;

/// One custom ACL rule (`AclRuleSpec` in camelCase).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct AclConf {
    pub(crate) direction: String,
    pub(crate) action: String,
    #[serde(default, deserialize_with = "scalar")]
    pub(crate) protocol: Option<String>,
    #[serde(default, deserialize_with = "list")]
    pub(crate) local_ports: Option<String>,
    #[serde(default, deserialize_with = "list")]
    pub(crate) remote_ports: Option<String>,
    #[serde(default, deserialize_with = "list")]
    pub(crate) local_addresses: Option<String>,
    #[serde(default, deserialize_with = "list")]
    pub(crate) remote_addresses: Option<String>,
    #[serde(default, deserialize_with = "scalar")]
    pub(crate) priority: Option<String>,
    pub(crate) rule_type: Option<String>,
    pub(crate) id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PortMapConf {
    host_port: u16,
    container_port: u16,
    #[serde(default)]
    protocol: Option<String>,
    #[serde(default, rename = "hostIP")]
    host_ip: Option<String>,
}

pub(crate) fn port_mappings(value: Option<&Value>) -> Result<Vec<PortMap>, ConfigError> {
    let field = "runtimeConfig.portMappings";
    let raw: Option<Vec<PortMapConf>> = typed(value, field)?;
    let mut out = Vec::new();
    for (i, m) in raw.unwrap_or_default().into_iter().enumerate() {
        let at = |f: &str| format!("{field}[{i}].{f}");
        if m.host_port == 0 {
            return Err(invalid(at("hostPort"), "0; expected 1-65535"));
        }
        if m.container_port == 0 {
            return Err(invalid(at("containerPort"), "0; expected 1-65535"));
        }
        let protocol = m
            .protocol
            .unwrap_or_else(|| "tcp".into())
            .to_ascii_lowercase();
        one_of(&at("protocol"), Some(&protocol), &["tcp", "udp"])?;
        let host_ip = match m.host_ip.as_deref() {
            None | Some("") => None,
            Some(text) => Some(
                text.parse::<IpAddr>()
                    .map_err(|_| invalid(at("hostIP"), format!("{text:?} is not an IP address")))?,
            ),
        };
        out.push(PortMap {
            host_port: m.host_port,
            container_port: m.container_port,
            protocol,
            host_ip,
        });
    }
    Ok(out)
}

/// A string or number, as text.
pub(crate) fn scalar<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(serde::de::Error::custom("expected a string or a number")),
    }
}

/// A scalar or a list of scalars, as comma-separated text.
fn list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let text = |v: &Value| match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(serde::de::Error::custom("expected strings or numbers")),
    };
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => Ok(Some(
            items
                .iter()
                .map(text)
                .collect::<Result<Vec<_>, _>>()?
                .join(","),
        )),
        Some(v) => text(&v).map(Some),
    }
}
