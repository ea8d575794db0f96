//! Addresses: CIDR blocks (IPv4 and IPv6), comma-separated address lists and
//! MAC addresses.
//!
//! A [`Cidr`] is always normalised (host bits cleared) unless it is used as an
//! interface address ([`IfAddr`]), which keeps the host bits.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use crate::error::{InvalidValue, Result};

const CIDR_ALLOWED: &str = "an IPv4 or IPv6 address or CIDR block such as 10.0.0.0/24 or fd00::/64";
const LIST_ALLOWED: &str =
    "a comma-separated list of IPv4/IPv6 addresses or CIDR blocks (empty means any; \"Any\" is not accepted)";

/// An address block, host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

fn max_prefix(addr: IpAddr) -> u8 {
    if addr.is_ipv4() {
        32
    } else {
        128
    }
}

/// Parses `a.b.c.d[/n]` or `x::y[/n]`, keeping host bits.
fn parse_addr_prefix(field: &str, value: &str, allowed: &str) -> Result<(IpAddr, u8)> {
    let bad = || InvalidValue::new(field, value, allowed);
    let v = value.trim();
    let (a, p) = match v.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (v, None),
    };
    let addr: IpAddr = a.parse().map_err(|_| bad())?;
    let prefix = match p {
        None => max_prefix(addr),
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            p.parse::<u8>().map_err(|_| bad())?
        }
        Some(_) => return Err(bad()),
    };
    if prefix > max_prefix(addr) {
        return Err(bad());
    }
    Ok((addr, prefix))
}

fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let m = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix)
            };
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & m))
        }
        IpAddr::V6(a) => {
            let m = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - prefix)
            };
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
        }
    }
}

impl Cidr {
    pub fn parse(field: &str, value: &str) -> Result<Self> {
        let (addr, prefix) = parse_addr_prefix(field, value, CIDR_ALLOWED)?;
        Ok(Self::new(addr, prefix))
    }

    /// The block of `addr/prefix`; host bits are cleared. `prefix` is clamped
    /// to the family's width.
    pub fn new(addr: IpAddr, prefix: u8) -> Self {
        let prefix = prefix.min(max_prefix(addr));
        Self {
            addr: mask(addr, prefix),
            prefix,
        }
    }

    /// The single-address block of `addr`.
    pub fn host(addr: IpAddr) -> Self {
        Self::new(addr, max_prefix(addr))
    }

    pub fn network(&self) -> IpAddr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }

    /// The last address of the block.
    pub fn last(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => {
                let host = if self.prefix == 32 {
                    0
                } else {
                    u32::MAX >> self.prefix
                };
                IpAddr::V4(Ipv4Addr::from(u32::from(a) | host))
            }
            IpAddr::V6(a) => {
                let host = if self.prefix == 128 {
                    0
                } else {
                    u128::MAX >> self.prefix
                };
                IpAddr::V6(Ipv6Addr::from(u128::from(a) | host))
            }
        }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.prefix) == self.addr
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl TryFrom<String> for Cidr {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<Self> {
        Self::parse("cidr", &value)
    }
}

impl From<Cidr> for String {
    fn from(c: Cidr) -> String {
        c.to_string()
    }
}

/// An interface address: an address with the prefix of its subnet
/// (`10.0.0.5/24`). Unlike [`Cidr`] it keeps the host bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IfAddr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl IfAddr {
    pub fn subnet(&self) -> Cidr {
        Cidr::new(self.addr, self.prefix)
    }
}

impl fmt::Display for IfAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A list of address blocks; empty means any address. It knows how many of
/// its blocks are IPv4, so that asking whether it admits a family does not
/// read the blocks (the policy compiler asks it of every rule, for each
/// family, where the blocks are a cache miss each).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AddressList {
    items: Vec<Cidr>,
    v4: usize,
}

impl AddressList {
    /// Parses HCN's comma-separated form; blanks around items are ignored,
    /// duplicates removed, order kept.
    pub fn parse(field: &str, value: &str) -> Result<Self> {
        let mut out: Vec<Cidr> = Vec::new();
        if value.trim().is_empty() {
            return Ok(Self::new(out));
        }
        for item in value.split(',') {
            let item = item.trim();
            if item.is_empty() || item.eq_ignore_ascii_case("any") {
                return Err(InvalidValue::new(field, value, LIST_ALLOWED));
            }
            let (addr, prefix) =
                parse_addr_prefix(field, item, LIST_ALLOWED).map_err(|e| InvalidValue {
                    value: value.to_owned(),
                    ..e
                })?;
            let cidr = Cidr::new(addr, prefix);
            if !out.contains(&cidr) {
                out.push(cidr);
            }
        }
        Ok(Self::new(out))
    }

    pub fn new(items: Vec<Cidr>) -> Self {
        let v4 = items.iter().filter(|c| c.is_ipv4()).count();
        Self { items, v4 }
    }

    pub fn is_any(&self) -> bool {
        self.items.is_empty()
    }

    pub fn items(&self) -> &[Cidr] {
        &self.items
    }

    /// How many entries are of the given family.
    pub fn count_of(&self, v4: bool) -> usize {
        if v4 {
            self.v4
        } else {
            self.items.len() - self.v4
        }
    }

    /// Whether the list admits `ip` (an empty list admits everything).
    pub fn matches(&self, ip: IpAddr) -> bool {
        self.items.is_empty() || self.items.iter().any(|c| c.contains(ip))
    }

    /// Whether any entry is of the given family (true for an empty list).
    pub fn admits_family(&self, v4: bool) -> bool {
        self.items.is_empty() || self.count_of(v4) > 0
    }
}

impl fmt::Display for AddressList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.items.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if c.prefix == max_prefix(c.addr) {
                write!(f, "{}", c.addr)?;
            } else {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

impl TryFrom<String> for AddressList {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<Self> {
        Self::parse("addresses", &value)
    }
}

impl From<AddressList> for String {
    fn from(l: AddressList) -> String {
        l.to_string()
    }
}

/// An Ethernet MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MacAddress(pub [u8; 6]);

impl MacAddress {
    /// Accepts `aa:bb:cc:dd:ee:ff` and HCN's `AA-BB-CC-DD-EE-FF`. Multicast
    /// and all-zero addresses are refused: they cannot be a NIC's address.
    pub fn parse(field: &str, value: &str) -> Result<Self> {
        let bad = || {
            InvalidValue::new(
                field,
                value,
                "a unicast MAC address such as 02:42:ac:11:00:02 (':' or '-' separated)",
            )
        };
        let parts: Vec<&str> = value.split([':', '-']).collect();
        if parts.len() != 6 {
            return Err(bad());
        }
        let mut mac = [0u8; 6];
        for (slot, part) in mac.iter_mut().zip(parts) {
            if part.len() != 2 {
                return Err(bad());
            }
            *slot = u8::from_str_radix(part, 16).map_err(|_| bad())?;
        }
        if mac[0] & 1 == 1 || mac == [0; 6] {
            return Err(bad());
        }
        Ok(Self(mac))
    }

    /// A locally administered unicast address derived from `seed` (an id),
    /// so an endpoint keeps its MAC across restarts.
    pub fn local_from(seed: &[u8]) -> Self {
        let mut mac = [0x02, 0, 0, 0, 0, 0];
        for (i, b) in seed.iter().enumerate() {
            mac[1 + i % 5] ^= b.rotate_left((i / 5) as u32);
        }
        Self(mac)
    }

    /// HCN's dash form.
    pub fn to_hcn(self) -> String {
        self.to_string().replace(':', "-").to_ascii_uppercase()
    }
}

impl fmt::Display for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl TryFrom<String> for MacAddress {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<Self> {
        Self::parse("mac_address", &value)
    }
}

impl From<MacAddress> for String {
    fn from(m: MacAddress) -> String {
        m.to_string()
    }
}

/// Parses a plain IP address as the field `field`.
pub fn parse_ip(field: &str, value: &str) -> Result<IpAddr> {
    value
        .trim()
        .parse()
        .map_err(|_| InvalidValue::new(field, value, "an IPv4 or IPv6 address such as 10.0.0.5"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_normalise() {
        let c = Cidr::parse("subnet", "10.1.2.3/16").unwrap();
        assert_eq!(c.to_string(), "10.1.0.0/16");
        assert_eq!(c.last().to_string(), "10.1.255.255");
        assert!(c.contains("10.1.9.9".parse().unwrap()));
        assert!(!c.contains("fd00::1".parse().unwrap()));
        assert_eq!(
            Cidr::parse("s", "fd00::1/64").unwrap().to_string(),
            "fd00::/64"
        );
        for bad in [
            "10.0.0.0/33",
            "10.0.0/8",
            "x",
            "10.0.0.0/",
            "fd00::/129",
            "10.0.0.0/+8",
        ] {
            assert!(Cidr::parse("subnet", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn address_lists_follow_hcn() {
        let l = AddressList::parse("remote_addresses", "192.168.100.0/24, 10.0.0.21").unwrap();
        assert_eq!(l.to_string(), "192.168.100.0/24,10.0.0.21");
        assert!(l.matches("10.0.0.21".parse().unwrap()));
        assert!(!l.matches("10.0.0.22".parse().unwrap()));
        assert!(AddressList::parse("x", "").unwrap().is_any());
        let e = AddressList::parse("remote_addresses", "Any").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("invalid remote_addresses \"Any\""),
            "{e}"
        );
        assert!(AddressList::parse("x", "10.0.0.1,,10.0.0.2").is_err());
    }

    #[test]
    fn address_lists_know_their_families() {
        let mixed = AddressList::parse("x", "10.0.0.0/8, fd00::1, 10.1.2.3").unwrap();
        assert_eq!((mixed.count_of(true), mixed.count_of(false)), (2, 1));
        assert!(mixed.admits_family(true) && mixed.admits_family(false));
        let v6 = AddressList::parse("x", "fd00::/64").unwrap();
        assert!(!v6.admits_family(true) && v6.admits_family(false));
        let any = AddressList::parse("x", "").unwrap();
        assert!(any.admits_family(true) && any.admits_family(false));
        // Read back from its stored form, a list knows them again.
        let back: AddressList =
            serde_json::from_str(&serde_json::to_string(&mixed).unwrap()).unwrap();
        assert_eq!(back, mixed);
        assert_eq!(back.count_of(false), 1);
    }

    #[test]
    fn macs() {
        let m = MacAddress::parse("mac", "00-15-5D-52-C0-00").unwrap();
        assert_eq!(m.to_string(), "00:15:5d:52:c0:00");
        assert_eq!(m.to_hcn(), "00-15-5D-52-C0-00");
        assert!(MacAddress::parse("mac", "01:00:5e:00:00:01").is_err());
        assert!(MacAddress::parse("mac", "00:00:00:00:00:00").is_err());
        let l = MacAddress::local_from(b"abc");
        assert_eq!(l.0[0], 2);
    }
}
