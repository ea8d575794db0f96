//! ACL rules with HCN semantics (`AclPolicySetting`).
//!
//! A rule matches a packet when every field it sets matches (an empty list or
//! `any` matches everything). `local` is the endpoint's side and `remote` the
//! peer's, in both directions. The ordering of rules (lower priority number
//! wins, `block` wins ties) is the policy crate's business; this module only
//! holds validated rules.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::addr::AddressList;
use crate::error::{InvalidValue, Result};
use crate::port::PortList;
use crate::protocol::Protocol;
use crate::raw;

/// The priority of a rule given without one: the middle of HCN's ladder
/// (Calico's policy rules start at 1000; allow-alls sit near 65500).
pub const DEFAULT_PRIORITY: u16 = 1000;

macro_rules! keyword_enum {
    ($(#[$m:meta])* $name:ident, $field:literal, $allowed:literal, { $($variant:ident = $($word:literal)|+),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Parses the keyword case-insensitively (HCN spells them `Allow`, `In`, `Switch`).
            pub fn parse(field: &str, value: &str) -> $crate::error::Result<Self> {
                let v = value.trim().to_ascii_lowercase();
                $( if [$($word),+].contains(&v.as_str()) { return Ok($name::$variant); } )+
                Err($crate::error::InvalidValue::new(field, value, $allowed))
            }

            /// The canonical keyword.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => [$($word),+][0]),+ }
            }

            /// The default field name used in errors.
            pub const FIELD: &'static str = $field;
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result { f.write_str(self.as_str()) }
        }
    };
}
pub(crate) use keyword_enum;

keyword_enum!(
    /// What a matching rule does.
    Action, "action", "allow or block", { Allow = "allow", Block = "block" | "deny" }
);
keyword_enum!(
    /// `in`: traffic coming to the endpoint; `out`: traffic leaving it.
    Direction, "direction", "in or out", { In = "in", Out = "out" }
);
keyword_enum!(
    /// The enforcement point a rule is programmed at: the host firewall in the
    /// endpoint's namespace (HCN `Host`) or the switch port (HCN `Switch`).
    RuleType, "rule_type", "host or switch", { Host = "host", Switch = "switch" }
);
keyword_enum!(
    /// How custom rules combine with the default profile.
    AclMode, "acl_mode", "layered or replace", { Layered = "layered", Replace = "replace" }
);

// keyword_enum! cannot carry `#[default]`, so the default is spelled out.
#[allow(clippy::derivable_impls)]
impl Default for AclMode {
    fn default() -> Self {
        AclMode::Layered
    }
}

/// A rule id: 1–128 characters of `[a-zA-Z0-9_.:{}-]` (HCN ids are often GUIDs).
/// Shared: the compiler copies a list's ids beside its rule boxes (one
/// reference count each, not a string).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RuleId(Arc<str>);

impl RuleId {
    pub fn parse(field: &str, value: &str) -> Result<Self> {
        let ok = (1..=128).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.:{}-".contains(&b));
        if ok {
            Ok(Self(value.into()))
        } else {
            Err(InvalidValue::new(
                field,
                value,
                "1-128 characters of a-z, A-Z, 0-9, '_', '.', ':', '{', '}', '-'",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RuleId {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<Self> {
        Self::parse("id", &value)
    }
}

impl From<RuleId> for String {
    fn from(r: RuleId) -> String {
        r.0.as_ref().to_owned()
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A validated ACL rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AclRule {
    pub id: RuleId,
    pub action: Action,
    pub direction: Direction,
    pub protocol: Protocol,
    pub local_addresses: AddressList,
    pub remote_addresses: AddressList,
    pub local_ports: PortList,
    pub remote_ports: PortList,
    pub rule_type: RuleType,
    pub priority: u16,
}

impl AclRule {
    /// Whether the rule constrains ports, so it can only match TCP, UDP,
    /// SCTP and UDP-Lite packets.
    pub fn has_ports(&self) -> bool {
        !self.local_ports.is_any() || !self.remote_ports.is_any()
    }
}

/// A rule as the user gives it, every field raw: what the CLI builds, the
/// body of `POST /v1/endpoints/{endpoint}/acls` and what the CNI and HCN
/// readers produce. `validate` is the only way to an [`AclRule`]. Numbers
/// and lists are accepted as JSON numbers and arrays too ([`crate::raw`]);
/// unknown fields are refused so a typo never silently becomes a default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AclRuleSpec {
    /// `in` or `out`.
    pub direction: String,
    /// `allow` or `block`.
    pub action: String,
    /// Protocol name or number, or `any`.
    #[serde(
        default,
        deserialize_with = "raw::opt_scalar",
        skip_serializing_if = "Option::is_none"
    )]
    pub protocol: Option<String>,
    /// Ports and ranges, comma separated.
    #[serde(
        default,
        deserialize_with = "raw::opt_list",
        skip_serializing_if = "Option::is_none"
    )]
    pub local_ports: Option<String>,
    /// Ports and ranges, comma separated.
    #[serde(
        default,
        deserialize_with = "raw::opt_list",
        skip_serializing_if = "Option::is_none"
    )]
    pub remote_ports: Option<String>,
    /// Addresses and CIDRs, comma separated.
    #[serde(
        default,
        deserialize_with = "raw::opt_list",
        skip_serializing_if = "Option::is_none"
    )]
    pub local_addresses: Option<String>,
    /// Addresses and CIDRs, comma separated.
    #[serde(
        default,
        deserialize_with = "raw::opt_list",
        skip_serializing_if = "Option::is_none"
    )]
    pub remote_addresses: Option<String>,
    /// Priority 0-65535 (lower wins), as given.
    #[serde(
        default,
        deserialize_with = "raw::opt_scalar",
        skip_serializing_if = "Option::is_none"
    )]
    pub priority: Option<String>,
    /// `host` or `switch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_type: Option<String>,
    /// Caller-chosen rule id (else generated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// Parses a priority 0–65535.
pub fn parse_priority(field: &str, value: &str) -> Result<u16> {
    let v = value.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(InvalidValue::new(
            field,
            value,
            "a priority 0-65535 (lower numbers win)",
        ));
    }
    v.parse()
        .map_err(|_| InvalidValue::new(field, value, "a priority 0-65535 (lower numbers win)"))
}

impl AclRuleSpec {
    /// Validates the spec; `fallback_id` names the rule when it has no id.
    pub fn validate(&self, fallback_id: &str) -> Result<AclRule> {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        let protocol = Protocol::parse("protocol", &opt(&self.protocol))?;
        let local_ports = PortList::parse("local_ports", &opt(&self.local_ports))?;
        let remote_ports = PortList::parse("remote_ports", &opt(&self.remote_ports))?;
        if (!local_ports.is_any() || !remote_ports.is_any())
            && protocol != Protocol::Any
            && !protocol.has_ports()
        {
            let field = if local_ports.is_any() {
                "remote_ports"
            } else {
                "local_ports"
            };
            let value = if local_ports.is_any() {
                &remote_ports
            } else {
                &local_ports
            };
            return Err(InvalidValue::new(
                field,
                value.to_string(),
                format!("ports need protocol tcp, udp, sctp or any, not {protocol}"),
            ));
        }
        Ok(AclRule {
            id: RuleId::parse("id", self.id.as_deref().unwrap_or(fallback_id))?,
            action: Action::parse("action", &self.action)?,
            direction: Direction::parse("direction", &self.direction)?,
            protocol,
            local_addresses: AddressList::parse("local_addresses", &opt(&self.local_addresses))?,
            remote_addresses: AddressList::parse("remote_addresses", &opt(&self.remote_addresses))?,
            local_ports,
            remote_ports,
            rule_type: match &self.rule_type {
                Some(v) if !v.trim().is_empty() => RuleType::parse("rule_type", v)?,
                _ => RuleType::Host,
            },
            priority: match &self.priority {
                Some(v) => parse_priority("priority", v)?,
                None => DEFAULT_PRIORITY,
            },
        })
    }
}

/// The one text form of a validated rule (each value by its `Display`; an
/// `any` list is absent). Every other rendering starts from it: the API's
/// `AclInfo`, the HCN `ACL` policy, an import that re-adds the rule.
impl From<&AclRule> for AclRuleSpec {
    fn from(r: &AclRule) -> Self {
        let some = |s: String| if s.is_empty() { None } else { Some(s) };
        Self {
            id: Some(r.id.to_string()),
            action: r.action.to_string(),
            direction: r.direction.to_string(),
            protocol: Some(r.protocol.to_string()),
            local_addresses: some(r.local_addresses.to_string()),
            remote_addresses: some(r.remote_addresses.to_string()),
            local_ports: some(r.local_ports.to_string()),
            remote_ports: some(r.remote_ports.to_string()),
            rule_type: Some(r.rule_type.to_string()),
            priority: Some(r.priority.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> AclRuleSpec {
        AclRuleSpec {
            action: "Block".into(),
            direction: "In".into(),
            protocol: Some("6".into()),
            local_ports: Some("80,8080".into()),
            remote_addresses: Some("10.0.0.0/8".into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_valid_rule() {
        let r = spec().validate("r1").unwrap();
        assert_eq!(r.id.as_str(), "r1");
        assert_eq!(
            (r.action, r.direction, r.rule_type),
            (Action::Block, Direction::In, RuleType::Host)
        );
        assert_eq!(r.priority, DEFAULT_PRIORITY);
        assert!(r.has_ports());
        let back = AclRuleSpec::from(&r).validate("x").unwrap();
        assert_eq!(back, r);
    }

    /// The API body of `POST /v1/endpoints/{e}/acls`: the same keys as
    /// ever, absent fields left out, numbers and arrays read as text.
    #[test]
    fn the_wire_form() {
        let s: AclRuleSpec = serde_json::from_str(
            r#"{"direction":"in","action":"block","protocol":6,"local_ports":[80,"1000-2000"],"priority":100}"#,
        )
        .unwrap();
        assert_eq!(s.protocol.as_deref(), Some("6"));
        assert_eq!(s.local_ports.as_deref(), Some("80,1000-2000"));
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"direction":"in","action":"block","protocol":"6","local_ports":"80,1000-2000","priority":"100"}"#
        );
        let unknown = serde_json::from_str::<AclRuleSpec>(
            r#"{"direction":"in","action":"allow","Protocol":"tcp"}"#,
        );
        assert!(unknown.unwrap_err().to_string().contains("Protocol"));
    }

    #[test]
    fn bad_fields_are_named() {
        let mut s = spec();
        s.action = "maybe".into();
        assert_eq!(
            s.validate("r").unwrap_err().to_string(),
            "invalid action \"maybe\": allow or block"
        );
        let mut s = spec();
        s.protocol = Some("icmp".into());
        let e = s.validate("r").unwrap_err().to_string();
        assert!(
            e.starts_with("invalid local_ports \"80,8080\": ports need protocol"),
            "{e}"
        );
        let mut s = spec();
        s.priority = Some("70000".into());
        assert!(s
            .validate("r")
            .unwrap_err()
            .to_string()
            .starts_with("invalid priority \"70000\""));
        let mut s = spec();
        s.rule_type = Some("vfp".into());
        assert!(s.validate("r").is_err());
    }
}
