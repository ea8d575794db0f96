//! `HostComputeNetwork` ↔ [`Network`].
//!
//! Mapping: `Type` (case-insensitive) → driver; `NetAdapterName` policy →
//! uplink; every `Ipams[].Subnets[].IpAddressPrefix`, in order → subnets
//! (the first is the primary); the primary subnet's default route
//! (`0.0.0.0/0` or `::/0`) `NextHop` → gateway; the `VSID` subnet policy's
//! `IsolationId` → vni (all subnets must agree). The result is validated by
//! [`NetworkSpec::validate`], whose errors are renamed to the HCN path of
//! the value. Network types bulkhead has no driver for (ICS, Private,
//! Internal, Mirrored…) are rejected; so are policies whose loss would
//! weaken isolation (`NetworkACL`, the `VLAN` subnet policy) and `Dhcp`
//! IPAM. Other policies are ignored and reported.

use std::net::IpAddr;

use serde_json::Number;

use super::acl::to_value;
use super::schema::{
    HostComputeNetwork, Ipam, IsolationIdSetting, NetAdapterNameSetting, Policy, Route, Subnet,
    VxlanPortSetting,
};
use super::{
    additional_params, at, bulkhead_param, check_schema, derived_id, parse_guid, settings, uint,
    Ignored,
};
use crate::addr::Cidr;
use crate::error::{InvalidValue, Result};
use crate::network::{AclProfile, Driver, Network, NetworkSpec};

const TYPES_ALLOWED: &str = "NAT, Transparent, L2Bridge, L2Tunnel or Overlay";
const UNSUPPORTED_TYPES: [&str; 6] = [
    "ics",
    "private",
    "internal",
    "mirrored",
    "infiniband",
    "constrainedics",
];
const VXLAN_PORT: u16 = 4789;

/// HCN's spelling of a driver.
pub(crate) fn hcn_type(d: Driver) -> &'static str {
    match d {
        Driver::Nat => "NAT",
        Driver::Transparent => "Transparent",
        Driver::L2Bridge => "L2Bridge",
        Driver::L2Tunnel => "L2Tunnel",
        Driver::Overlay => "Overlay",
    }
}

fn parse_type(field: &str, value: Option<&str>) -> Result<Driver> {
    let v = value.unwrap_or("").trim();
    if UNSUPPORTED_TYPES.contains(&v.to_ascii_lowercase().as_str()) {
        let allowed = format!("{TYPES_ALLOWED} (bulkhead has no {v} networks)");
        return Err(InvalidValue::new(field, v, allowed));
    }
    Driver::parse(field, v).map_err(|e| InvalidValue {
        allowed: TYPES_ALLOWED.to_owned(),
        ..e
    })
}

/// Where each raw value of the spec came from, for renaming errors.
#[derive(Default)]
struct Paths {
    subnets: Vec<String>,
    gateway: Option<String>,
    uplink: Option<String>,
    vni: Option<String>,
}

/// Validates an HCN network; `prefix` is its path in the document (`""`
/// for a single object). Dropped parts are appended to `ignored`.
pub fn network_from_hcn(
    prefix: &str,
    h: &HostComputeNetwork,
    ignored: &mut Vec<Ignored>,
) -> Result<Network> {
    check_schema(prefix, h.schema_version)?;
    let driver = parse_type(&at(prefix, "Type"), h.kind.as_deref())?;
    let mut spec = NetworkSpec {
        name: h.name.clone().unwrap_or_default(),
        driver: driver.as_str().to_owned(),
        ..Default::default()
    };
    let mut paths = Paths::default();
    let mut ignore = |field: String, reason: &str| {
        ignored.push(Ignored {
            field,
            reason: reason.to_owned(),
        })
    };
    for (i, p) in h.policies.iter().enumerate() {
        let field = at(prefix, &format!("Policies[{i}]"));
        let sfield = at(&field, "Settings");
        match p.kind.to_ascii_lowercase().as_str() {
            "netadaptername" => {
                let s: NetAdapterNameSetting = settings(&sfield, &p.settings, "NetAdapterName")?;
                if paths.uplink.is_some() {
                    return Err(InvalidValue::new(
                        field,
                        &p.kind,
                        "one NetAdapterName policy per network",
                    ));
                }
                spec.uplink = Some(s.network_adapter_name);
                paths.uplink = Some(at(&sfield, "NetworkAdapterName"));
            }
            "vxlanport" => {
                let s: VxlanPortSetting = settings(&sfield, &p.settings, "VxlanPort")?;
                let f = at(&sfield, "Port");
                let port: u16 = match &s.port {
                    Some(n) => uint(&f, n, "a UDP port 1-65535")?,
                    None => VXLAN_PORT,
                };
                if port != VXLAN_PORT {
                    ignore(field, "bulkhead's VXLAN devices use the IANA port 4789");
                }
            }
            "networkacl" => return Err(InvalidValue::new(
                field,
                &p.kind,
                "no NetworkACL: bulkhead has no network-wide ACLs; give each endpoint ACL policies",
            )),
            "" => {
                return Err(InvalidValue::new(
                    at(&field, "Type"),
                    "",
                    "a network policy type",
                ))
            }
            _ => ignore(field, "network policy not used by bulkhead"),
        }
    }
    for (i, ipam) in h.ipams.iter().enumerate() {
        read_ipam(
            &at(prefix, &format!("Ipams[{i}]")),
            ipam,
            &mut spec,
            &mut paths,
            &mut ignore,
        )?;
    }
    if h.mac_pool.as_ref().is_some_and(|v| !v.is_null()) {
        ignore(
            at(prefix, "MacPool"),
            "bulkhead derives each endpoint's MAC from its id",
        );
    }
    if h.dns.as_ref().is_some_and(|v| !v.is_null()) {
        ignore(at(prefix, "Dns"), "bulkhead does not configure DNS");
    }
    if h.flags.as_ref().is_some_and(|n| n.as_u64() != Some(0)) {
        ignore(
            at(prefix, "Flags"),
            "network flags have no bulkhead equivalent",
        );
    }
    let profile_field = at(prefix, "AdditionalParams.AclProfile");
    spec.acl_profile = bulkhead_param(prefix, h.additional_params.as_ref(), "AclProfile")?;
    if driver.needs_uplink() && paths.uplink.is_none() {
        let allowed = format!(
            "a NetAdapterName policy naming the uplink ({} networks need one)",
            hcn_type(driver)
        );
        return Err(InvalidValue::new(at(prefix, "Policies"), "", allowed));
    }
    if driver == Driver::Overlay && paths.vni.is_none() {
        let allowed =
            "a VSID subnet policy with IsolationId 1-16777215 (Overlay networks need one)";
        return Err(InvalidValue::new(at(prefix, "Ipams"), "", allowed));
    }
    if spec.subnets.is_empty() {
        let allowed = "an Ipam with at least one subnet (IpAddressPrefix such as 10.0.0.0/24)";
        return Err(InvalidValue::new(at(prefix, "Ipams"), "", allowed));
    }
    let id = parse_guid(&at(prefix, "ID"), h.id.as_deref())?
        .unwrap_or_else(|| derived_id("network", &spec.name));
    spec.validate(id).map_err(|e| {
        let path = match e.field.as_str() {
            "name" => at(prefix, "Name"),
            "driver" => at(prefix, "Type"),
            "subnet" => {
                let k = spec.subnets.iter().position(|s| *s == e.value).unwrap_or(0);
                paths
                    .subnets
                    .get(k)
                    .cloned()
                    .unwrap_or_else(|| at(prefix, "Ipams"))
            }
            "gateway" => paths.gateway.clone().unwrap_or_else(|| at(prefix, "Ipams")),
            "uplink" => paths
                .uplink
                .clone()
                .unwrap_or_else(|| at(prefix, "Policies")),
            "vni" => paths.vni.clone().unwrap_or_else(|| at(prefix, "Ipams")),
            "acl_profile" => profile_field.clone(),
            _ => at(prefix, &e.field),
        };
        e.in_field(path)
    })
}

fn read_ipam(
    prefix: &str,
    ipam: &Ipam,
    spec: &mut NetworkSpec,
    paths: &mut Paths,
    ignore: &mut impl FnMut(String, &str),
) -> Result<()> {
    match ipam.kind.as_deref().map(str::trim) {
        None | Some("") => {}
        Some(k) if k.eq_ignore_ascii_case("static") => {}
        Some(k) => {
            let allowed = "Static (bulkhead assigns endpoint addresses itself; no DHCP)";
            return Err(InvalidValue::new(at(prefix, "Type"), k, allowed));
        }
    }
    for (j, subnet) in ipam.subnets.iter().enumerate() {
        let sp = at(prefix, &format!("Subnets[{j}]"));
        let pf = at(&sp, "IpAddressPrefix");
        let raw = subnet.ip_address_prefix.clone().unwrap_or_default();
        let cidr = Cidr::parse(&pf, &raw)?;
        let primary = spec.subnets.is_empty();
        spec.subnets.push(raw);
        paths.subnets.push(pf);
        for (k, route) in subnet.routes.iter().enumerate() {
            let rp = at(&sp, &format!("Routes[{k}]"));
            let dest_field = at(&rp, "DestinationPrefix");
            let dest = Cidr::parse(
                &dest_field,
                route.destination_prefix.as_deref().unwrap_or(""),
            )?;
            let is_default = dest.prefix() == 0 && dest.is_ipv4() == cidr.is_ipv4();
            if primary && is_default && paths.gateway.is_none() {
                spec.gateway = Some(route.next_hop.clone().unwrap_or_default());
                paths.gateway = Some(at(&rp, "NextHop"));
            } else {
                ignore(
                    rp,
                    "bulkhead routes only through the first subnet's gateway",
                );
            }
        }
        for (k, p) in subnet.policies.iter().enumerate() {
            let field = at(&sp, &format!("Policies[{k}]"));
            let sfield = at(&field, "Settings");
            match p.kind.to_ascii_lowercase().as_str() {
                "vsid" => {
                    let s: IsolationIdSetting = settings(&sfield, &p.settings, "VSID")?;
                    let f = at(&sfield, "IsolationId");
                    let v = s
                        .isolation_id
                        .as_ref()
                        .map_or_else(String::new, Number::to_string);
                    match &spec.vni {
                        Some(prev) if *prev != v => {
                            return Err(InvalidValue::new(
                                f,
                                v,
                                format!("the same VSID on every subnet ({prev})"),
                            ))
                        }
                        _ => {}
                    }
                    spec.vni = Some(v);
                    paths.vni.get_or_insert(f);
                }
                "vlan" => {
                    let allowed = "no VLAN policy: bulkhead cannot tag a network's traffic, so it would lose that isolation";
                    return Err(InvalidValue::new(field, &p.kind, allowed));
                }
                _ => ignore(field, "subnet policy not used by bulkhead"),
            }
        }
        if subnet.flags.as_ref().is_some_and(|n| n.as_u64() != Some(0)) {
            ignore(at(&sp, "Flags"), "subnet flags have no bulkhead equivalent");
        }
    }
    Ok(())
}

/// The HCN v2 form of a network (schema 2.0).
pub fn network_to_hcn(n: &Network) -> HostComputeNetwork {
    let vsid = n.vni.map(|v| Policy {
        kind: "VSID".to_owned(),
        settings: to_value(&IsolationIdSetting {
            isolation_id: Some(v.into()),
        }),
    });
    let subnets = n
        .subnets
        .iter()
        .enumerate()
        .map(|(k, s)| Subnet {
            ip_address_prefix: Some(s.to_string()),
            policies: vsid.clone().into_iter().collect(),
            routes: match n.gateway {
                Some(gw) if k == 0 => vec![Route {
                    next_hop: Some(gw.to_string()),
                    destination_prefix: Some(
                        if matches!(gw, IpAddr::V4(_)) {
                            "0.0.0.0/0"
                        } else {
                            "::/0"
                        }
                        .to_owned(),
                    ),
                    metric: None,
                }],
                _ => Vec::new(),
            },
            flags: None,
        })
        .collect();
    let uplink = n.uplink.as_ref().map(|u| Policy {
        kind: "NetAdapterName".to_owned(),
        settings: to_value(&NetAdapterNameSetting {
            network_adapter_name: u.to_string(),
        }),
    });
    let profile = (n.acl_profile != AclProfile::default()).then(|| n.acl_profile.to_string());
    HostComputeNetwork {
        id: Some(n.id.to_string()),
        name: Some(n.name.to_string()),
        kind: Some(hcn_type(n.driver).to_owned()),
        policies: uplink.into_iter().collect(),
        ipams: vec![Ipam {
            kind: Some("Static".to_owned()),
            subnets,
        }],
        additional_params: additional_params(&[("AclProfile", profile)]),
        schema_version: Some(super::SchemaVersion::V2_0),
        ..Default::default()
    }
}
