//! An IPv4 or IPv6 network (CIDR with host bits zero), on `std::net` types.
//!
//! The store keeps its own small type rather than the model's `Cidr` so that
//! the persisted format does not move when the model does. Addresses are
//! handled as offsets from the network address, which makes the pool logic
//! the same for both families. IPv6 networks need at least one network bit
//! (offsets fit a `u128`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::StoreError;

/// A network: its first address and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Subnet {
    network: IpAddr,
    prefix: u8,
}

impl Subnet {
    /// `network/prefix`; the address must have its host bits zero.
    pub fn new(network: IpAddr, prefix: u8) -> Result<Self, StoreError> {
        let invalid = |reason: String| StoreError::InvalidSubnet {
            value: format!("{network}/{prefix}"),
            reason,
        };
        let max = if network.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(invalid(format!("prefix length must be 0..={max}")));
        }
        if network.is_ipv6() && prefix == 0 {
            return Err(invalid(
                "an IPv6 pool needs a prefix length of 1..=128".to_owned(),
            ));
        }
        let subnet = Self { network, prefix };
        let base = subnet.at(0);
        if base != network {
            return Err(invalid(format!(
                "host bits are set; the network is {base}/{prefix}"
            )));
        }
        Ok(subnet)
    }

    /// The network address.
    pub fn network(&self) -> IpAddr {
        self.network
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    fn host_bits(&self) -> u32 {
        let width = if self.network.is_ipv4() { 32 } else { 128 };
        width - u32::from(self.prefix)
    }

    /// How many addresses the network spans (IPv6 /0 is refused by `new`).
    pub(crate) fn size(&self) -> u128 {
        1u128 << self.host_bits()
    }

    fn mask(&self) -> u128 {
        self.size() - 1
    }

    /// Whether `ip` is inside the network (same family, same prefix).
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.offset_of(ip).is_some()
    }

    /// `ip`'s distance from the network address, if it is inside.
    pub(crate) fn offset_of(&self, ip: IpAddr) -> Option<u128> {
        let (base, ip) = match (self.network, ip) {
            (IpAddr::V4(b), IpAddr::V4(i)) => (u128::from(u32::from(b)), u128::from(u32::from(i))),
            (IpAddr::V6(b), IpAddr::V6(i)) => (u128::from(b), u128::from(i)),
            _ => return None,
        };
        (ip & !self.mask() == base).then_some(ip - base)
    }

    /// The address `offset` past the network address (taken modulo the size).
    pub(crate) fn at(&self, offset: u128) -> IpAddr {
        let offset = offset & self.mask();
        match self.network {
            IpAddr::V4(b) => {
                let base = u32::from(b) & !(self.mask() as u32);
                // The offset is masked to the host bits, which fit in 32 bits here.
                let off = u32::try_from(offset).unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(base | off))
            }
            IpAddr::V6(b) => IpAddr::V6(Ipv6Addr::from((u128::from(b) & !self.mask()) | offset)),
        }
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: &str| StoreError::InvalidSubnet {
            value: s.to_owned(),
            reason: reason.to_owned(),
        };
        let (addr, prefix) = s
            .split_once('/')
            .ok_or_else(|| invalid("expected ADDRESS/PREFIX, e.g. 10.0.0.0/24"))?;
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| invalid("not an IPv4 or IPv6 address"))?;
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| invalid("prefix length is not a number"))?;
        Self::new(addr, prefix)
    }
}

impl TryFrom<String> for Subnet {
    type Error = StoreError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Subnet> for String {
    fn from(s: Subnet) -> Self {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let s: Subnet = "10.0.0.0/24".parse().unwrap();
        assert_eq!(s.size(), 256);
        assert!(s.contains("10.0.0.255".parse().unwrap()));
        assert!(!s.contains("10.0.1.0".parse().unwrap()));
        assert!(!s.contains("::1".parse().unwrap()));
        assert_eq!(s.at(5), "10.0.0.5".parse::<IpAddr>().unwrap());
        let err = "10.0.0.5/24".parse::<Subnet>().unwrap_err().to_string();
        assert_eq!(
            err,
            "subnet 10.0.0.5/24: host bits are set; the network is 10.0.0.0/24"
        );
        assert!("10.0.0.0/33".parse::<Subnet>().is_err());
        assert!("::/0".parse::<Subnet>().is_err());
        assert!("10.0.0.0".parse::<Subnet>().is_err());
        let v6: Subnet = "fd00::/64".parse().unwrap();
        assert_eq!(v6.size(), 1u128 << 64);
        assert_eq!(v6.offset_of("fd00::1:2".parse().unwrap()), Some(0x1_0002));
        let all: Subnet = "0.0.0.0/0".parse().unwrap();
        assert_eq!(
            all.at(u128::from(u32::MAX)),
            "255.255.255.255".parse::<IpAddr>().unwrap()
        );
    }
}
