//! The two endpoint policies bulkhead enforces: `ACL` (AclPolicySetting ↔
//! [`AclRule`]) and `PortMapping` (PortMappingPolicySetting ↔
//! [`PortMapping`]).
//!
//! Reading goes through the model's own validation ([`AclRuleSpec::validate`],
//! [`PortList`](crate::PortList), [`parse_port_number`]); errors are renamed
//! to the HCN key under the given path. HCN defaults differ from bulkhead's:
//! an absent `RuleType` is `Switch` (the reference's inference from Azure
//! NPM) and an absent `Priority` is 0 (hcsshim's `omitempty` drops a zero).
//! Writing always spells every field out, so those defaults never matter on
//! a round trip.

use serde_json::{Number, Value};

use super::schema::{AclPolicySetting, NumberOrString, Policy, PortMappingPolicySetting};
use super::{at, uint};
use crate::acl::{AclRule, AclRuleSpec};
use crate::addr::parse_ip;
use crate::endpoint::PortMapping;
use crate::error::{InvalidValue, Result};
use crate::port::parse_port_number;
use crate::protocol::Protocol;

/// The HCN key of each `AclRuleSpec` field, for renaming errors.
const ACL_KEYS: [(&str, &str); 10] = [
    ("id", "Id"),
    ("action", "Action"),
    ("direction", "Direction"),
    ("protocol", "Protocols"),
    ("local_addresses", "LocalAddresses"),
    ("remote_addresses", "RemoteAddresses"),
    ("local_ports", "LocalPorts"),
    ("remote_ports", "RemotePorts"),
    ("rule_type", "RuleType"),
    ("priority", "Priority"),
];

fn present(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .filter(|s| !s.trim().is_empty())
        .map(str::to_owned)
}

/// A v1 single port (`LocalPort`), where 0 means "not set".
fn v1_port(v: &Option<Number>) -> Option<String> {
    v.as_ref()
        .filter(|n| n.as_u64() != Some(0))
        .map(Number::to_string)
}

/// Validates an `ACL` policy's settings; `field` is the path of `Settings`
/// and `fallback_id` names a rule without `Id`.
pub fn acl_from_hcn(field: &str, s: &AclPolicySetting, fallback_id: &str) -> Result<AclRule> {
    if let Some(a) = &s.action {
        if a.trim().eq_ignore_ascii_case("pass") {
            return Err(InvalidValue::new(
                at(field, "Action"),
                a,
                "Allow or Block (Pass only means something in a TierAcl)",
            ));
        }
    }
    let spec = AclRuleSpec {
        id: present(&s.id),
        action: s.action.clone().unwrap_or_default(),
        direction: s.direction.clone().unwrap_or_default(),
        protocol: s
            .protocols
            .clone()
            .or_else(|| s.protocol.as_ref().map(Number::to_string)),
        local_addresses: s.local_addresses.clone(),
        remote_addresses: s.remote_addresses.clone(),
        local_ports: present(&s.local_ports).or_else(|| v1_port(&s.local_port)),
        remote_ports: present(&s.remote_ports).or_else(|| v1_port(&s.remote_port)),
        rule_type: Some(present(&s.rule_type).unwrap_or_else(|| "switch".to_owned())),
        priority: Some(
            s.priority
                .as_ref()
                .map_or_else(|| "0".to_owned(), Number::to_string),
        ),
    };
    spec.validate(fallback_id).map_err(|e| {
        let key = ACL_KEYS
            .iter()
            .find(|(ours, _)| *ours == e.field)
            .map_or("", |(_, hcn)| *hcn);
        let path = at(field, key);
        e.in_field(path)
    })
}

fn title(word: &str) -> String {
    let mut c = word.chars();
    c.next().map_or_else(String::new, |f| {
        f.to_ascii_uppercase().to_string() + c.as_str()
    })
}

/// The `ACL` policy of a rule, every field spelled out: the rule's text
/// form ([`AclRuleSpec::from`]) in HCN's spelling (title-case keywords,
/// protocol numbers).
pub fn acl_to_hcn(r: &AclRule) -> Policy {
    let text = AclRuleSpec::from(r);
    let s = AclPolicySetting {
        id: text.id,
        protocols: Some(r.protocol.to_hcn()),
        action: Some(title(&text.action)),
        direction: Some(title(&text.direction)),
        local_addresses: text.local_addresses,
        remote_addresses: text.remote_addresses,
        local_ports: text.local_ports,
        remote_ports: text.remote_ports,
        rule_type: text.rule_type.as_deref().map(title),
        priority: Some(Number::from(r.priority)),
        ..Default::default()
    };
    Policy {
        kind: "ACL".to_owned(),
        settings: to_value(&s),
    }
}

/// Serializing these plain structs cannot fail; `Null` keeps it total.
pub(crate) fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

const PROTO_ALLOWED: &str = "6 (TCP) or 17 (UDP), as a number or a name";
/// NatFlags bulkhead understands: 1 LocalRoutedVip, 2 IPv6.
const NAT_FLAGS_KNOWN: u32 = 0b11;

/// Validates a `PortMapping` policy's settings; `field` is the path of
/// `Settings`. `Flags` LocalRoutedVip (1) and IPv6 (2) are accepted and have
/// nothing to switch on: bulkhead's mapped ports are always reachable from the
/// host, and a mapping without `VIP` serves every host address of both
/// families.
pub fn port_mapping_from_hcn(field: &str, s: &PortMappingPolicySetting) -> Result<PortMapping> {
    let proto_field = at(field, "Protocol");
    let protocol = match &s.protocol {
        None => return Err(InvalidValue::new(proto_field, "", PROTO_ALLOWED)),
        Some(v) => {
            let p = Protocol::parse(&proto_field, &v.to_string())
                .map_err(|_| InvalidValue::new(&proto_field, v.to_string(), PROTO_ALLOWED))?;
            if p != Protocol::TCP && p != Protocol::UDP {
                return Err(InvalidValue::new(proto_field, v.to_string(), PROTO_ALLOWED));
            }
            p
        }
    };
    let port = |key: &str, n: &Option<Number>| {
        let f = at(field, key);
        parse_port_number(&f, &n.as_ref().map_or_else(String::new, Number::to_string))
    };
    let container_port = port("InternalPort", &s.internal_port)?;
    let host_port = port("ExternalPort", &s.external_port)?;
    let host_ip = match s.vip.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(v) => Some(parse_ip(&at(field, "VIP"), v)?),
    };
    if let Some(flags) = &s.flags {
        let f = at(field, "Flags");
        let allowed = "NatFlags 0-3 (1 LocalRoutedVip, 2 IPv6)";
        let bits: u32 = uint(&f, flags, allowed)?;
        if bits & !NAT_FLAGS_KNOWN != 0 {
            return Err(InvalidValue::new(f, flags.to_string(), allowed));
        }
    }
    Ok(PortMapping {
        protocol,
        host_ip,
        host_port,
        container_port,
    })
}

/// The `PortMapping` policy of a mapping (protocol as hcsshim's integer).
pub fn port_mapping_to_hcn(m: &PortMapping) -> Policy {
    let s = PortMappingPolicySetting {
        protocol: m
            .protocol
            .number()
            .map(|n| NumberOrString::Number(n.into())),
        internal_port: Some(m.container_port.into()),
        external_port: Some(m.host_port.into()),
        vip: m.host_ip.map(|ip| ip.to_string()),
        flags: None,
    };
    Policy {
        kind: "PortMapping".to_owned(),
        settings: to_value(&s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::{Action, Direction, RuleType};

    fn hcsshim_example() -> AclPolicySetting {
        serde_json::from_str(
            r#"{"Protocols":"6","Action":"Allow","Direction":"In","LocalAddresses":"192.168.100.0/24,10.0.0.21",
            "RemoteAddresses":"192.168.100.0/24,10.0.0.21","LocalPorts":"80,8080","RemotePorts":"80,8080",
            "RuleType":"Switch","Priority":200}"#,
        )
        .unwrap()
    }

    #[test]
    fn hcsshim_rule_reads_and_writes_back() {
        let r = acl_from_hcn("Policies[0].Settings", &hcsshim_example(), "acl-0").unwrap();
        assert_eq!(
            (r.action, r.direction, r.rule_type, r.priority),
            (Action::Allow, Direction::In, RuleType::Switch, 200)
        );
        assert_eq!(r.protocol, Protocol::TCP);
        let p = acl_to_hcn(&r);
        assert_eq!(p.settings["Protocols"], "6");
        assert_eq!(p.settings["LocalPorts"], "80,8080");
        assert_eq!(p.settings["RuleType"], "Switch");
        let back: AclPolicySetting = serde_json::from_value(p.settings).unwrap();
        assert_eq!(acl_from_hcn("x", &back, "other").unwrap(), r);
    }

    #[test]
    fn hcn_defaults_and_errors() {
        let s: AclPolicySetting =
            serde_json::from_str(r#"{"Action":"Block","Direction":"Out"}"#).unwrap();
        let r = acl_from_hcn("S", &s, "acl-3").unwrap();
        assert_eq!(
            (r.rule_type, r.priority, r.protocol),
            (RuleType::Switch, 0, Protocol::Any)
        );
        let mut s = hcsshim_example();
        s.local_addresses = Some("Any".into());
        let e = acl_from_hcn("Policies[2].Settings", &s, "a").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("invalid Policies[2].Settings.LocalAddresses \"Any\": "),
            "{e}"
        );
        let mut s = hcsshim_example();
        s.priority = Some(70000.into());
        assert_eq!(acl_from_hcn("S", &s, "a").unwrap_err().field, "S.Priority");
        let mut s = hcsshim_example();
        s.action = Some("Pass".into());
        assert_eq!(acl_from_hcn("S", &s, "a").unwrap_err().field, "S.Action");
    }
}
