//! IP protocols: by name, by IANA number 0–255, or any.
//!
//! HCN spells "any" as `256` or an empty string; bulkhead accepts those too
//! and always prints `any`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{InvalidValue, Result};

pub const PROTOCOL_ALLOWED: &str =
    "tcp, udp, icmp, icmpv6, igmp, gre, esp, ah, sctp, a number 0-255, or any";

/// The protocol a rule or packet names. `Any` matches every protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Protocol {
    Any,
    Number(u8),
}

const NAMES: [(&str, u8); 9] = [
    ("icmp", 1),
    ("igmp", 2),
    ("tcp", 6),
    ("udp", 17),
    ("gre", 47),
    ("esp", 50),
    ("ah", 51),
    ("icmpv6", 58),
    ("sctp", 132),
];

impl Protocol {
    pub const TCP: Protocol = Protocol::Number(6);
    pub const UDP: Protocol = Protocol::Number(17);
    pub const ICMP: Protocol = Protocol::Number(1);
    pub const ICMPV6: Protocol = Protocol::Number(58);
    pub const IGMP: Protocol = Protocol::Number(2);
    pub const SCTP: Protocol = Protocol::Number(132);

    pub fn parse(field: &str, value: &str) -> Result<Self> {
        let v = value.trim().to_ascii_lowercase();
        if v.is_empty() || v == "any" || v == "256" {
            return Ok(Protocol::Any);
        }
        if let Some((_, n)) = NAMES.iter().find(|(name, _)| *name == v) {
            return Ok(Protocol::Number(*n));
        }
        v.parse::<u8>()
            .map(Protocol::Number)
            .map_err(|_| InvalidValue::new(field, value, PROTOCOL_ALLOWED))
    }

    /// The IANA number, `None` for any.
    pub fn number(self) -> Option<u8> {
        match self {
            Protocol::Any => None,
            Protocol::Number(n) => Some(n),
        }
    }

    /// Whether packets of this protocol carry ports (TCP, UDP, SCTP, UDP-Lite).
    pub fn has_ports(self) -> bool {
        matches!(self, Protocol::Number(6 | 17 | 132 | 136))
    }

    /// Whether `self` (a rule's protocol) matches the packet protocol `n`.
    pub fn matches(self, n: u8) -> bool {
        self.number().is_none_or(|p| p == n)
    }

    /// The conventional name, if there is one.
    pub fn name(self) -> Option<&'static str> {
        let n = self.number()?;
        NAMES.iter().find(|(_, m)| *m == n).map(|(name, _)| *name)
    }

    /// HCN's decimal form: `"256"` for any.
    pub fn to_hcn(self) -> String {
        self.number()
            .map_or_else(|| "256".to_owned(), |n| n.to_string())
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self, self.name()) {
            (Protocol::Any, _) => f.write_str("any"),
            (_, Some(name)) => f.write_str(name),
            (Protocol::Number(n), None) => write!(f, "{n}"),
        }
    }
}

impl TryFrom<String> for Protocol {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<Self> {
        Self::parse("protocol", &value)
    }
}

impl From<Protocol> for String {
    fn from(p: Protocol) -> String {
        p.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_numbers_and_any() {
        assert_eq!(Protocol::parse("p", "TCP").unwrap(), Protocol::TCP);
        assert_eq!(Protocol::parse("p", "253").unwrap(), Protocol::Number(253));
        assert_eq!(Protocol::parse("p", "256").unwrap(), Protocol::Any);
        assert_eq!(Protocol::parse("p", "").unwrap(), Protocol::Any);
        assert_eq!(Protocol::parse("p", "any").unwrap(), Protocol::Any);
        assert_eq!(Protocol::Number(47).to_string(), "gre");
        assert_eq!(Protocol::Number(253).to_string(), "253");
        let e = Protocol::parse("protocol", "257").unwrap_err().to_string();
        assert_eq!(e, format!("invalid protocol \"257\": {PROTOCOL_ALLOWED}"));
    }
}
