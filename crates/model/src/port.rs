//! Ports: single ports, ranges and HCN's comma-separated lists
//! (`"80,8080,1000-2000"`). An empty list means any port.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{InvalidValue, Result};

const LIST_ALLOWED: &str =
    "a comma-separated list of ports 0-65535 and ranges such as 80,8080,1000-2000 (empty means any)";

/// An inclusive port range; `start <= end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PortRange {
    pub start: u16,
    pub end: u16,
}

impl PortRange {
    pub fn single(port: u16) -> Self {
        Self {
            start: port,
            end: port,
        }
    }

    pub fn contains(&self, port: u16) -> bool {
        (self.start..=self.end).contains(&port)
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}-{}", self.start, self.end)
        }
    }
}

/// A list of port ranges, sorted and merged; empty means any port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PortList(Vec<PortRange>);

fn parse_port(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl PortList {
    pub fn parse(field: &str, value: &str) -> Result<Self> {
        let bad = || InvalidValue::new(field, value, LIST_ALLOWED);
        if value.trim().is_empty() {
            return Ok(Self::default());
        }
        let mut ranges = Vec::new();
        for item in value.split(',') {
            let item = item.trim();
            let range = match item.split_once('-') {
                Some((a, b)) => {
                    let (start, end) = (
                        parse_port(a.trim()).ok_or_else(bad)?,
                        parse_port(b.trim()).ok_or_else(bad)?,
                    );
                    if start > end {
                        return Err(bad());
                    }
                    PortRange { start, end }
                }
                None => PortRange::single(parse_port(item).ok_or_else(bad)?),
            };
            ranges.push(range);
        }
        Ok(Self::new(ranges))
    }

    /// A list of the given ranges, sorted and with overlaps merged.
    pub fn new(mut ranges: Vec<PortRange>) -> Self {
        ranges.sort();
        let mut merged: Vec<PortRange> = Vec::with_capacity(ranges.len());
        for r in ranges {
            match merged.last_mut() {
                Some(last) if u32::from(r.start) <= u32::from(last.end) + 1 => {
                    last.end = last.end.max(r.end)
                }
                _ => merged.push(r),
            }
        }
        Self(merged)
    }

    pub fn is_any(&self) -> bool {
        self.0.is_empty()
    }

    pub fn ranges(&self) -> &[PortRange] {
        &self.0
    }

    /// Whether the list admits `port` (an empty list admits every port).
    pub fn matches(&self, port: u16) -> bool {
        self.0.is_empty() || self.0.iter().any(|r| r.contains(port))
    }
}

impl fmt::Display for PortList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl TryFrom<String> for PortList {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<Self> {
        Self::parse("ports", &value)
    }
}

impl From<PortList> for String {
    fn from(l: PortList) -> String {
        l.to_string()
    }
}

/// Parses one port number 1–65535 (a published port cannot be 0).
pub fn parse_port_number(field: &str, value: &str) -> Result<u16> {
    match parse_port(value.trim()) {
        Some(p) if p > 0 => Ok(p),
        _ => Err(InvalidValue::new(field, value, "a port number 1-65535")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_ranges() {
        let l = PortList::parse("local_ports", "8080, 80,1000-2000,1500-2500").unwrap();
        assert_eq!(l.to_string(), "80,1000-2500,8080");
        assert!(l.matches(2222) && !l.matches(81));
        assert!(PortList::parse("p", "").unwrap().is_any());
        for bad in ["65536", "2000-1000", "a", "80,", "-1", "1-2-3", "+80"] {
            let e = PortList::parse("local_ports", bad).unwrap_err().to_string();
            assert!(e.starts_with("invalid local_ports"), "{e}");
        }
        assert!(parse_port_number("host_port", "0").is_err());
    }
}
