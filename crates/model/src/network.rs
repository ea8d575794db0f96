//! Networks (HCN HostComputeNetwork): one virtual switch each.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::acl::keyword_enum;
use crate::addr::{parse_ip, Cidr};
use crate::error::{InvalidValue, Result};
use crate::name::{Id, Name};
use crate::raw;

keyword_enum!(
    /// The network driver: how the switch reaches the outside world.
    Driver, "driver", "nat, transparent, l2bridge, l2tunnel or overlay",
    { Nat = "nat", Transparent = "transparent", L2Bridge = "l2bridge", L2Tunnel = "l2tunnel", Overlay = "overlay" }
);
keyword_enum!(
    /// The default port ACL profile of process endpoints (spec §4).
    AclProfile, "acl_profile", "current or legacy", { Current = "current", Legacy = "legacy" }
);

// keyword_enum! cannot carry `#[default]`, so the default is spelled out.
#[allow(clippy::derivable_impls)]
impl Default for AclProfile {
    fn default() -> Self {
        AclProfile::Current
    }
}

impl Driver {
    /// Whether the driver needs an uplink interface to exist.
    pub fn needs_uplink(self) -> bool {
        !matches!(self, Driver::Nat)
    }
}

/// A Linux interface name: 1–15 bytes, no '/', ':', whitespace or NUL.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IfName(String);

impl IfName {
    pub fn parse(field: &str, value: &str) -> Result<Self> {
        let ok = (1..=15).contains(&value.len())
            && value != "."
            && value != ".."
            && value
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'/' && b != b':');
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(InvalidValue::new(
                field,
                value,
                "an interface name of 1-15 printable characters without '/', ':' or spaces",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// For names bulkhead makes itself (a prefix and hex digits), which are
    /// valid by construction.
    pub(crate) fn from_trusted(s: String) -> Self {
        debug_assert!(Self::parse("ifname", &s).is_ok(), "{s}");
        Self(s)
    }
}

impl TryFrom<String> for IfName {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<Self> {
        Self::parse("ifname", &value)
    }
}

impl From<IfName> for String {
    fn from(n: IfName) -> String {
        n.0
    }
}

impl fmt::Display for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The largest VXLAN network identifier.
pub const VNI_MAX: u32 = (1 << 24) - 1;

/// A validated network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub id: Id,
    pub name: Name,
    pub driver: Driver,
    /// At most one IPv4 and one IPv6 subnet.
    pub subnets: Vec<Cidr>,
    /// The gateway of the IPv4 subnet (or the only subnet).
    pub gateway: Option<IpAddr>,
    pub uplink: Option<IfName>,
    pub vni: Option<u32>,
    pub acl_profile: AclProfile,
}

/// A network as the user gives it: also the body of `POST /v1/networks`,
/// whose `subnet` is one CIDR (a dual-stack network, two subnets, comes
/// only from an HCN import).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// Network name.
    pub name: String,
    /// `nat`, `transparent`, `l2bridge`, `l2tunnel` or `overlay`.
    pub driver: String,
    /// CIDRs of the network's subnets (on the wire: `subnet`, at most one).
    #[serde(
        rename = "subnet",
        default,
        with = "raw::one_of",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub subnets: Vec<String>,
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

impl From<&Network> for NetworkSpec {
    /// The network as text again (re-creating it gives the same network).
    fn from(n: &Network) -> Self {
        Self {
            name: n.name.to_string(),
            driver: n.driver.to_string(),
            subnets: n.subnets.iter().map(ToString::to_string).collect(),
            gateway: n.gateway.map(|g| g.to_string()),
            uplink: n.uplink.as_ref().map(ToString::to_string),
            vni: n.vni.map(|v| v.to_string()),
            acl_profile: Some(n.acl_profile.to_string()),
        }
    }
}

/// The usable gateway of `subnet` when none is given: its first host address.
pub fn default_gateway(subnet: &Cidr) -> Option<IpAddr> {
    let next = match subnet.network() {
        IpAddr::V4(a) if subnet.prefix() <= 30 => IpAddr::V4((u32::from(a) + 1).into()),
        IpAddr::V6(a) if subnet.prefix() <= 126 => IpAddr::V6((u128::from(a) + 1).into()),
        _ => return None,
    };
    Some(next)
}

impl NetworkSpec {
    /// Validates the spec into a network with the given id. Subnets are
    /// required here; a caller that picks a default subnet fills it in first.
    pub fn validate(&self, id: Id) -> Result<Network> {
        let name = Name::parse("name", &self.name)?;
        let driver = Driver::parse("driver", &self.driver)?;
        if self.subnets.is_empty() {
            return Err(InvalidValue::new(
                "subnet",
                "",
                "a CIDR block such as 10.88.0.0/24",
            ));
        }
        let mut subnets: Vec<Cidr> = Vec::new();
        for s in &self.subnets {
            let c = Cidr::parse("subnet", s)?;
            let (max, min) = if c.is_ipv4() { (30, 8) } else { (126, 48) };
            if c.prefix() > max || c.prefix() < min {
                return Err(InvalidValue::new(
                    "subnet",
                    s,
                    format!("a prefix length {min}-{max} (room for a gateway and endpoints)"),
                ));
            }
            if subnets.iter().any(|o| o.is_ipv4() == c.is_ipv4()) {
                return Err(InvalidValue::new(
                    "subnet",
                    s,
                    "at most one IPv4 and one IPv6 subnet",
                ));
            }
            subnets.push(c);
        }
        let primary = subnets[0];
        let gateway = match &self.gateway {
            Some(g) if !g.trim().is_empty() => {
                let ip = parse_ip("gateway", g)?;
                let host =
                    !(ip == primary.network() || (primary.is_ipv4() && ip == primary.last()));
                if !primary.contains(ip) || !host {
                    return Err(InvalidValue::new(
                        "gateway",
                        g,
                        format!("a host address inside subnet {primary}"),
                    ));
                }
                Some(ip)
            }
            _ => default_gateway(&primary),
        };
        let uplink = match &self.uplink {
            Some(u) if !u.trim().is_empty() => Some(IfName::parse("uplink", u)?),
            _ if driver.needs_uplink() => {
                return Err(InvalidValue::new(
                    "uplink",
                    "",
                    format!("an interface name: driver {driver} needs --uplink"),
                ))
            }
            _ => None,
        };
        let vni = match (&self.vni, driver) {
            (Some(v), Driver::Overlay) => Some(parse_vni(v)?),
            (None, Driver::Overlay) => {
                return Err(InvalidValue::new(
                    "vni",
                    "",
                    "a VXLAN id 1-16777215 for an overlay network",
                ))
            }
            (Some(v), _) => {
                return Err(InvalidValue::new(
                    "vni",
                    v,
                    "no value: only overlay networks take a VNI",
                ))
            }
            (None, _) => None,
        };
        let acl_profile = match &self.acl_profile {
            Some(p) if !p.trim().is_empty() => AclProfile::parse("acl_profile", p)?,
            _ => AclProfile::Current,
        };
        Ok(Network {
            id,
            name,
            driver,
            subnets,
            gateway,
            uplink,
            vni,
            acl_profile,
        })
    }
}

fn parse_vni(v: &str) -> Result<u32> {
    match v.trim().parse::<u32>() {
        Ok(n) if (1..=VNI_MAX).contains(&n) && v.trim().bytes().all(|b| b.is_ascii_digit()) => {
            Ok(n)
        }
        _ => Err(InvalidValue::new("vni", v, "a VXLAN id 1-16777215")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_carries_one_subnet() {
        let spec: NetworkSpec =
            serde_json::from_str(r#"{"name":"n","driver":"nat","subnet":"10.0.0.0/24","vni":7}"#)
                .unwrap();
        assert_eq!(spec.subnets, ["10.0.0.0/24"]);
        assert_eq!(spec.vni.as_deref(), Some("7"));
        assert_eq!(
            serde_json::to_string(&spec).unwrap(),
            r#"{"name":"n","driver":"nat","subnet":"10.0.0.0/24","vni":"7"}"#
        );
        let none: NetworkSpec = serde_json::from_str(r#"{"name":"n","driver":"nat"}"#).unwrap();
        assert!(none.subnets.is_empty());
        assert!(
            serde_json::from_str::<NetworkSpec>(r#"{"name":"n","driver":"nat","subnets":[]}"#)
                .is_err()
        );
        let dual = NetworkSpec {
            subnets: vec!["10.0.0.0/24".into(), "fd00::/64".into()],
            ..spec
        };
        assert!(
            serde_json::to_string(&dual).is_err(),
            "two subnets are refused, not cut"
        );
    }

    fn spec(driver: &str) -> NetworkSpec {
        NetworkSpec {
            name: "web".into(),
            driver: driver.into(),
            subnets: vec!["10.88.0.0/24".into()],
            ..Default::default()
        }
    }

    #[test]
    fn nat_defaults() {
        let n = spec("NAT").validate(Id::from_u128(1)).unwrap();
        assert_eq!(n.driver, Driver::Nat);
        assert_eq!(n.gateway.unwrap().to_string(), "10.88.0.1");
        assert_eq!(n.acl_profile, AclProfile::Current);
    }

    #[test]
    fn rejects_with_field_names() {
        let mut s = spec("nat");
        s.gateway = Some("10.99.0.1".into());
        assert_eq!(
            s.validate(Id::from_u128(1)).unwrap_err().to_string(),
            "invalid gateway \"10.99.0.1\": a host address inside subnet 10.88.0.0/24"
        );
        let e = spec("overlay").validate(Id::from_u128(1)).unwrap_err();
        assert_eq!(e.field, "uplink");
        let mut s = spec("overlay");
        s.uplink = Some("ul0".into());
        s.vni = Some("16777216".into());
        assert_eq!(s.validate(Id::from_u128(1)).unwrap_err().field, "vni");
        s.vni = Some("4096".into());
        assert_eq!(s.validate(Id::from_u128(1)).unwrap().vni, Some(4096));
        assert_eq!(
            spec("bridge").validate(Id::from_u128(1)).unwrap_err().field,
            "driver"
        );
    }
}
