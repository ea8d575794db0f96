//! `HostComputeEndpoint` ↔ [`ImportedEndpoint`] (and from [`Endpoint`]).
//!
//! An imported endpoint names its network and namespace by id; the engine
//! resolves them, assigns what the document leaves open (address, MAC,
//! interface name) and creates it. `ACL` and `PortMapping` policies become
//! rules and mappings; rule ids are unique per endpoint (a rule without `Id`
//! is called `acl-<policy index>`); a host port is published once per
//! protocol and VIP. Policies that would restrict or isolate traffic in ways
//! bulkhead cannot enforce (`TierAcl`, `L4WFPPROXY`, `VLAN`, `Encryption`)
//! and the flags `RemoteEndpoint` and `DisableInterComputeCommunication` are
//! rejected; other policies (QOS, OutBoundNAT, SDNRoute…) are ignored and
//! reported. `acl_mode` is `replace` unless `AdditionalParams.AclMode` says
//! `layered`.

use std::net::IpAddr;

use serde_json::Number;

use super::acl::{acl_from_hcn, acl_to_hcn, port_mapping_from_hcn, port_mapping_to_hcn};
use super::schema::{AclPolicySetting, HostComputeEndpoint, IpConfig, PortMappingPolicySetting};
use super::{
    additional_params, at, bulkhead_param, check_schema, derived_id, parse_guid, settings, uint,
    Ignored,
};
use crate::acl::{AclMode, AclRule};
use crate::addr::{parse_ip, MacAddress};
use crate::endpoint::{Endpoint, EndpointSpec, PortMapping};
use crate::error::{InvalidValue, Result};
use crate::name::{Id, Name};
use crate::network::IfName;

/// Endpoint policies bulkhead refuses rather than drop: each narrows or
/// redirects traffic, so ignoring it would leave the endpoint more open than
/// the document asks.
const REFUSED: [(&str, &str); 5] = [
    ("tieracl", "no TierAcl: flatten the tiers into ACL policies"),
    (
        "l4wfpproxy",
        "no L4WFPPROXY: bulkhead has no transparent proxy redirect",
    ),
    (
        "vlan",
        "no VLAN policy: bulkhead cannot tag an endpoint's traffic",
    ),
    (
        "encryption",
        "no Encryption policy: bulkhead does not set up IPsec",
    ),
    ("nat", "PortMapping (HNS v1 NAT policies are not read)"),
];

/// An endpoint read from HCN, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedEndpoint {
    pub id: Id,
    pub name: Name,
    pub network: Id,
    pub namespace: Option<Id>,
    pub ip_address: Option<IpAddr>,
    /// `PrefixLength`, only with an address.
    pub prefix_length: Option<u8>,
    pub mac_address: Option<MacAddress>,
    /// bulkhead's `AdditionalParams.InterfaceName`.
    pub ifname: Option<IfName>,
    pub port_mappings: Vec<PortMapping>,
    pub acl_mode: AclMode,
    pub acls: Vec<AclRule>,
}

impl ImportedEndpoint {
    /// The raw spec the engine's endpoint creation takes, once it has looked
    /// up the names of the network and namespace ids.
    pub fn to_spec(&self, network: &Name, namespace: &Name) -> EndpointSpec {
        EndpointSpec {
            name: self.name.to_string(),
            network: network.to_string(),
            namespace: namespace.to_string(),
            ip: self.ip_address.map(|ip| ip.to_string()),
            mac: self.mac_address.map(|m| m.to_string()),
            publish: self.port_mappings.iter().map(ToString::to_string).collect(),
            acl_mode: Some(self.acl_mode.to_string()),
            ifname: self.ifname.as_ref().map(ToString::to_string),
            container_id: None,
            // HCN has no TAP settings: an imported vm endpoint gets the defaults.
            tap_owner: None,
            tap_group: None,
            tap_queues: None,
        }
    }
}

impl From<&Endpoint> for ImportedEndpoint {
    fn from(e: &Endpoint) -> Self {
        Self {
            id: e.id,
            name: e.name.clone(),
            network: e.network,
            namespace: Some(e.namespace),
            ip_address: Some(e.ip_address.addr),
            prefix_length: Some(e.ip_address.prefix),
            mac_address: Some(e.mac_address),
            ifname: Some(e.ifname.clone()),
            port_mappings: e.port_mappings.clone(),
            acl_mode: e.acl_mode,
            acls: e.acls.clone(),
        }
    }
}

fn read_ip(field: &str, c: &IpConfig) -> Result<(IpAddr, Option<u8>)> {
    let ip = parse_ip(
        &at(field, "IpAddress"),
        c.ip_address.as_deref().unwrap_or(""),
    )?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = match &c.prefix_length {
        None => None,
        Some(n) => {
            let allowed = format!("a prefix length 0-{max}");
            let p: u8 = uint(&at(field, "PrefixLength"), n, &allowed)?;
            if p > max {
                return Err(InvalidValue::new(
                    at(field, "PrefixLength"),
                    n.to_string(),
                    allowed,
                ));
            }
            Some(p)
        }
    };
    Ok((ip, prefix))
}

fn check_flags(
    field: &str,
    flags: &Option<Number>,
    ignore: &mut impl FnMut(String, &str),
) -> Result<()> {
    let Some(n) = flags else { return Ok(()) };
    let bits: u32 = uint(field, n, "EndpointFlags, a 32-bit number")?;
    if bits & 1 != 0 {
        let allowed = "no RemoteEndpoint flag (1): remote endpoints are learned from the overlay control plane";
        return Err(InvalidValue::new(field, n.to_string(), allowed));
    }
    if bits & 2 != 0 {
        let allowed = "no DisableInterComputeCommunication flag (2): bulkhead expresses that with ACL policies";
        return Err(InvalidValue::new(field, n.to_string(), allowed));
    }
    if bits != 0 {
        ignore(
            field.to_owned(),
            "endpoint flags have no bulkhead equivalent",
        );
    }
    Ok(())
}

/// Validates an HCN endpoint; `prefix` is its path in the document.
pub fn endpoint_from_hcn(
    prefix: &str,
    h: &HostComputeEndpoint,
    ignored: &mut Vec<Ignored>,
) -> Result<ImportedEndpoint> {
    check_schema(prefix, h.schema_version)?;
    let mut ignore = |field: String, reason: &str| {
        ignored.push(Ignored {
            field,
            reason: reason.to_owned(),
        })
    };
    let name = Name::parse(&at(prefix, "Name"), h.name.as_deref().unwrap_or(""))?;
    let id = parse_guid(&at(prefix, "ID"), h.id.as_deref())?
        .unwrap_or_else(|| derived_id("endpoint", name.as_str()));
    let net_field = at(prefix, "HostComputeNetwork");
    let network = parse_guid(&net_field, h.host_compute_network.as_deref())?
        .ok_or_else(|| InvalidValue::new(&net_field, "", "the GUID of the endpoint's network"))?;
    let namespace = parse_guid(
        &at(prefix, "HostComputeNamespace"),
        h.host_compute_namespace.as_deref(),
    )?;
    let (mut ip_address, mut prefix_length) = (None, None);
    for (i, c) in h.ip_configurations.iter().enumerate() {
        let field = at(prefix, &format!("IpConfigurations[{i}]"));
        if i == 0 {
            let (ip, p) = read_ip(&field, c)?;
            (ip_address, prefix_length) = (Some(ip), p);
        } else {
            ignore(
                field,
                "bulkhead gives an endpoint one address, the first IpConfiguration",
            );
        }
    }
    let mac_address = match h.mac_address.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(m) => Some(MacAddress::parse(&at(prefix, "MacAddress"), m)?),
    };
    if h.dns.as_ref().is_some_and(|v| !v.is_null()) {
        ignore(at(prefix, "Dns"), "bulkhead does not configure DNS");
    }
    if !h.routes.is_empty() {
        ignore(
            at(prefix, "Routes"),
            "an endpoint routes through its network's gateway",
        );
    }
    check_flags(&at(prefix, "Flags"), &h.flags, &mut ignore)?;
    let params = h.additional_params.as_ref();
    let acl_mode = match bulkhead_param(prefix, params, "AclMode")? {
        Some(m) => AclMode::parse(&at(prefix, "AdditionalParams.AclMode"), &m)?,
        None => AclMode::Replace,
    };
    let ifname = bulkhead_param(prefix, params, "InterfaceName")?
        .map(|n| IfName::parse(&at(prefix, "AdditionalParams.InterfaceName"), &n))
        .transpose()?;
    let (mut acls, mut port_mappings): (Vec<AclRule>, Vec<PortMapping>) = (Vec::new(), Vec::new());
    for (i, p) in h.policies.iter().enumerate() {
        let field = at(prefix, &format!("Policies[{i}]"));
        let sfield = at(&field, "Settings");
        let kind = p.kind.to_ascii_lowercase();
        if let Some((_, why)) = REFUSED.iter().find(|(k, _)| *k == kind) {
            return Err(InvalidValue::new(at(&field, "Type"), &p.kind, *why));
        }
        match kind.as_str() {
            "acl" => {
                let s: AclPolicySetting = settings(&sfield, &p.settings, "ACL")?;
                let rule = acl_from_hcn(&sfield, &s, &format!("acl-{i}"))?;
                if acls.iter().any(|r| r.id == rule.id) {
                    let allowed = "a rule id used once per endpoint";
                    return Err(InvalidValue::new(
                        at(&sfield, "Id"),
                        rule.id.to_string(),
                        allowed,
                    ));
                }
                acls.push(rule);
            }
            "portmapping" => {
                let s: PortMappingPolicySetting = settings(&sfield, &p.settings, "PortMapping")?;
                let m = port_mapping_from_hcn(&sfield, &s)?;
                if port_mappings.iter().any(|o| {
                    (o.protocol, o.host_port, o.host_ip) == (m.protocol, m.host_port, m.host_ip)
                }) {
                    let allowed = "an ExternalPort published once per protocol and VIP";
                    return Err(InvalidValue::new(
                        at(&sfield, "ExternalPort"),
                        m.host_port.to_string(),
                        allowed,
                    ));
                }
                port_mappings.push(m);
            }
            "" => {
                return Err(InvalidValue::new(
                    at(&field, "Type"),
                    "",
                    "an endpoint policy type such as ACL",
                ))
            }
            _ => ignore(field, "endpoint policy not used by bulkhead"),
        }
    }
    Ok(ImportedEndpoint {
        id,
        name,
        network,
        namespace,
        ip_address,
        prefix_length,
        mac_address,
        ifname,
        port_mappings,
        acl_mode,
        acls,
    })
}

/// The HCN v2 form of an imported endpoint (schema 2.0).
pub fn imported_endpoint_to_hcn(e: &ImportedEndpoint) -> HostComputeEndpoint {
    let policies = e
        .port_mappings
        .iter()
        .map(port_mapping_to_hcn)
        .chain(e.acls.iter().map(acl_to_hcn))
        .collect();
    let mode = (e.acl_mode != AclMode::Replace).then(|| e.acl_mode.to_string());
    HostComputeEndpoint {
        id: Some(e.id.to_string()),
        name: Some(e.name.to_string()),
        host_compute_network: Some(e.network.to_string()),
        host_compute_namespace: e.namespace.map(|n| n.to_string()),
        policies,
        ip_configurations: e
            .ip_address
            .map(|ip| IpConfig {
                ip_address: Some(ip.to_string()),
                prefix_length: e.prefix_length.map(Number::from),
            })
            .into_iter()
            .collect(),
        mac_address: e.mac_address.map(MacAddress::to_hcn),
        additional_params: additional_params(&[
            ("AclMode", mode),
            ("InterfaceName", e.ifname.as_ref().map(ToString::to_string)),
        ]),
        schema_version: Some(super::SchemaVersion::V2_0),
        ..Default::default()
    }
}

/// The HCN v2 form of an endpoint with its ACLs and port mappings.
pub fn endpoint_to_hcn(e: &Endpoint) -> HostComputeEndpoint {
    imported_endpoint_to_hcn(&ImportedEndpoint::from(e))
}
