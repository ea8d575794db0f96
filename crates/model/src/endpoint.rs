//! Endpoints (the container's NIC; HCN HostComputeEndpoint) and port
//! mappings (`docker run -p`).

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::acl::{AclMode, AclRule};
use crate::addr::{parse_ip, IfAddr, MacAddress};
use crate::error::{InvalidValue, Result};
use crate::name::{Id, Name};
use crate::network::IfName;
use crate::protocol::Protocol;
use crate::tap::TapOptions;

const PUBLISH_ALLOWED: &str =
    "[HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|/udp], ports 1-65535 (IPv6 host IPs in brackets)";

/// A published port: traffic to `host_ip:host_port` (any host address when
/// `host_ip` is `None`) is forwarded to the endpoint's `container_port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PortMapping {
    pub protocol: Protocol,
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub container_port: u16,
}

impl PortMapping {
    /// Parses `docker run -p` syntax as the field `field`.
    pub fn parse(field: &str, value: &str) -> Result<Self> {
        let bad = || InvalidValue::new(field, value, PUBLISH_ALLOWED);
        let (body, proto) = match value.rsplit_once('/') {
            Some((b, p)) => (b, p),
            None => (value, "tcp"),
        };
        let protocol = match proto.to_ascii_lowercase().as_str() {
            "tcp" => Protocol::TCP,
            "udp" => Protocol::UDP,
            _ => return Err(bad()),
        };
        let (host_ip, rest) = if let Some(stripped) = body.strip_prefix('[') {
            let (ip, rest) = stripped.split_once("]:").ok_or_else(bad)?;
            (Some(ip.parse::<IpAddr>().map_err(|_| bad())?), rest)
        } else {
            let parts: Vec<&str> = body.split(':').collect();
            match parts.len() {
                2 => (None, body),
                3 => {
                    let ip = parse_ip(field, parts[0]).map_err(|_| bad())?;
                    (Some(ip), &body[parts[0].len() + 1..])
                }
                _ => return Err(bad()),
            }
        };
        let (h, c) = rest.split_once(':').ok_or_else(bad)?;
        let port = |s: &str| match s.parse::<u16>() {
            Ok(p) if p > 0 && s.bytes().all(|b| b.is_ascii_digit()) => Ok(p),
            _ => Err(bad()),
        };
        Ok(Self {
            protocol,
            host_ip,
            host_port: port(h)?,
            container_port: port(c)?,
        })
    }
}

impl fmt::Display for PortMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host_ip {
            Some(IpAddr::V6(ip)) => write!(f, "[{ip}]:")?,
            Some(ip) => write!(f, "{ip}:")?,
            None => {}
        }
        write!(
            f,
            "{}:{}/{}",
            self.host_port, self.container_port, self.protocol
        )
    }
}

/// A validated endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub id: Id,
    pub name: Name,
    pub network: Id,
    pub namespace: Id,
    /// The interface name inside the endpoint's namespace.
    pub ifname: IfName,
    pub ip_address: IfAddr,
    pub mac_address: MacAddress,
    /// The host-side device: the veth end (process) or the TAP (vm).
    pub switch_port: IfName,
    pub port_mappings: Vec<PortMapping>,
    pub acl_mode: AclMode,
    pub acls: Vec<AclRule>,
}

impl Endpoint {
    /// The switch port's kernel name for an endpoint id: `bhp` + 10 hex digits.
    pub fn switch_port_name(id: &Id) -> IfName {
        IfName::from_trusted(format!("bhp{}", id.short_hex(10)))
    }
}

/// An endpoint as the user gives it: also the body of `POST /v1/endpoints`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointSpec {
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
    /// Container that owns the endpoint (the CNI key, with `ifname`);
    /// stored as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    /// vm endpoints only: the uid that may open the TAP (see [`TapOptions`]).
    #[serde(
        default,
        deserialize_with = "crate::raw::opt_scalar",
        skip_serializing_if = "Option::is_none"
    )]
    pub tap_owner: Option<String>,
    /// vm endpoints only: the gid whose members may open the TAP.
    #[serde(
        default,
        deserialize_with = "crate::raw::opt_scalar",
        skip_serializing_if = "Option::is_none"
    )]
    pub tap_group: Option<String>,
    /// vm endpoints only: TAP queues, 1-16 (multi-queue above 1).
    #[serde(
        default,
        deserialize_with = "crate::raw::opt_scalar",
        skip_serializing_if = "Option::is_none"
    )]
    pub tap_queues: Option<String>,
}

/// The parts of an endpoint spec that need no store look-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointRequest {
    pub name: Name,
    pub network: Name,
    pub namespace: Name,
    pub ip: Option<IpAddr>,
    pub mac: Option<MacAddress>,
    pub port_mappings: Vec<PortMapping>,
    pub acl_mode: AclMode,
    pub ifname: Option<IfName>,
    /// `None` when no TAP field is given.
    pub tap: Option<TapOptions>,
}

impl EndpointSpec {
    pub fn validate(&self) -> Result<EndpointRequest> {
        let mut port_mappings: Vec<PortMapping> = Vec::new();
        for p in &self.publish {
            let m = PortMapping::parse("publish", p)?;
            if port_mappings.iter().any(|o| {
                o.protocol == m.protocol && o.host_port == m.host_port && o.host_ip == m.host_ip
            }) {
                return Err(InvalidValue::new(
                    "publish",
                    p,
                    "a host port published once per protocol and host IP",
                ));
            }
            port_mappings.push(m);
        }
        let present = |v: &Option<String>| {
            v.as_deref()
                .filter(|s| !s.trim().is_empty())
                .map(str::to_owned)
        };
        Ok(EndpointRequest {
            name: Name::parse("name", &self.name)?,
            network: Name::parse("network", &self.network)?,
            namespace: Name::parse("namespace", &self.namespace)?,
            ip: present(&self.ip).map(|v| parse_ip("ip", &v)).transpose()?,
            mac: present(&self.mac)
                .map(|v| MacAddress::parse("mac", &v))
                .transpose()?,
            port_mappings,
            acl_mode: match present(&self.acl_mode) {
                Some(m) => AclMode::parse("acl_mode", &m)?,
                None => AclMode::Layered,
            },
            ifname: present(&self.ifname)
                .map(|v| IfName::parse("ifname", &v))
                .transpose()?,
            tap: TapOptions::parse(
                self.tap_owner.as_deref(),
                self.tap_group.as_deref(),
                self.tap_queues.as_deref(),
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_syntax() {
        let m = PortMapping::parse("publish", "8080:80").unwrap();
        assert_eq!(
            (m.host_port, m.container_port, m.protocol, m.host_ip),
            (8080, 80, Protocol::TCP, None)
        );
        let m = PortMapping::parse("publish", "127.0.0.1:53:5353/udp").unwrap();
        assert_eq!(m.to_string(), "127.0.0.1:53:5353/udp");
        let m = PortMapping::parse("publish", "[::1]:8443:443/tcp").unwrap();
        assert_eq!(m.to_string(), "[::1]:8443:443/tcp");
        for bad in [
            "80",
            "0:80",
            "8080:80/icmp",
            "1.2.3:80:80",
            "a:b",
            "70000:80",
            "1:2:3:4",
        ] {
            let e = PortMapping::parse("publish", bad).unwrap_err().to_string();
            assert!(e.starts_with("invalid publish"), "{bad}: {e}");
        }
    }

    #[test]
    fn switch_port_names_fit_the_kernel() {
        let id = Id::parse("id", "8d2f1e1c-5b0a-4c1e-9a51-0f4b3c2d1e0a").unwrap();
        assert_eq!(Endpoint::switch_port_name(&id).as_str(), "bhp8d2f1e1c5b");
    }

    #[test]
    fn spec_validation() {
        let s = EndpointSpec {
            name: "web".into(),
            network: "n".into(),
            namespace: "ns".into(),
            publish: vec!["8080:80".into(), "8080:81".into()],
            ..Default::default()
        };
        assert_eq!(s.validate().unwrap_err().field, "publish");
    }
}
