//! IPv4 and IPv6 interface addresses.
//!
//! Contract: an address is `ip/prefix` on an interface index. IPv6 addresses
//! are added with duplicate address detection off (IFA_F_NODAD): bulkhead's
//! IPAM hands out unique addresses, and DAD would hold a new endpoint's
//! address unusable ("tentative") for about a second.
//! [`Rtnl::addresses`] lists the namespace's own addresses (all interfaces,
//! both families) in one dump.

use std::net::IpAddr;

use std::net::{Ipv4Addr, Ipv6Addr};

use super::wire::{self, Msg};
use super::{Batch, Rtnl, RtnlError};

fn addr_msg(ty: u16, flags: u16, index: u32, ip: IpAddr, prefix: u8) -> Msg {
    let (family, bytes, ifa_flags): (u8, Vec<u8>, u8) = match ip {
        IpAddr::V4(a) => (wire::AF_INET, a.octets().to_vec(), 0),
        IpAddr::V6(a) => (wire::AF_INET6, a.octets().to_vec(), wire::IFA_F_NODAD),
    };
    let mut m = Msg::new(ty, flags);
    let mut h = [0u8; 8];
    h[0] = family;
    h[1] = prefix;
    h[2] = ifa_flags;
    h[3] = wire::RT_SCOPE_UNIVERSE;
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    m.raw(&h)
        .attr(wire::IFA_LOCAL, &bytes)
        .attr(wire::IFA_ADDRESS, &bytes);
    m
}

impl Batch {
    /// Adds `ip/prefix` to the interface with index `index`.
    pub fn add_address(&mut self, index: u32, ip: IpAddr, prefix: u8) -> &mut Self {
        let flags = wire::NLM_F_ACK | wire::NLM_F_CREATE | wire::NLM_F_EXCL;
        let m = addr_msg(wire::RTM_NEWADDR, flags, index, ip, prefix);
        self.push("add address", format!("{ip}/{prefix} on link {index}"), m)
    }

    /// Removes `ip/prefix` from the interface with index `index`.
    pub fn delete_address(&mut self, index: u32, ip: IpAddr, prefix: u8) -> &mut Self {
        let m = addr_msg(wire::RTM_DELADDR, wire::NLM_F_ACK, index, ip, prefix);
        self.push(
            "delete address",
            format!("{ip}/{prefix} on link {index}"),
            m,
        )
    }
}

/// The local address of one `RTM_NEWADDR` reply: `IFA_LOCAL` when present
/// (IPv4; on a point-to-point link `IFA_ADDRESS` is the peer's), else
/// `IFA_ADDRESS` (IPv6 sends only that).
fn parse_address(ty: u16, payload: &[u8]) -> Option<IpAddr> {
    if ty != wire::RTM_NEWADDR || payload.len() < 8 {
        return None;
    }
    let family = payload[0];
    let ip = |v: &[u8]| -> Option<IpAddr> {
        match family {
            wire::AF_INET => Some(Ipv4Addr::from(<[u8; 4]>::try_from(v).ok()?).into()),
            wire::AF_INET6 => Some(Ipv6Addr::from(<[u8; 16]>::try_from(v).ok()?).into()),
            _ => None,
        }
    };
    let (mut local, mut address) = (None, None);
    for (t, v) in wire::attrs(&payload[8..]) {
        match t {
            wire::IFA_LOCAL => local = ip(v),
            wire::IFA_ADDRESS => address = ip(v),
            _ => {}
        }
    }
    local.or(address)
}

impl Rtnl {
    /// Every address of this namespace's interfaces, both families, sorted
    /// and without duplicates.
    pub fn addresses(&mut self) -> Result<Vec<IpAddr>, RtnlError> {
        let mut m = Msg::new(wire::RTM_GETADDR, wire::NLM_F_ACK | wire::NLM_F_DUMP);
        m.raw(&[wire::AF_UNSPEC, 0, 0, 0, 0, 0, 0, 0]);
        let mut out = Vec::new();
        self.query("list addresses", "all links", &m, |ty, p| {
            out.extend(parse_address(ty, p))
        })?;
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_gives_its_local_address() {
        let reply = |family, attrs: &[(u16, &[u8])]| {
            let mut m = Msg::new(wire::RTM_NEWADDR, 0);
            m.raw(&[family, 24, 0, 0, 1, 0, 0, 0]);
            for (t, v) in attrs {
                m.attr(*t, v);
            }
            m.bytes()[wire::NLMSG_HDRLEN..].to_vec()
        };
        let p2p = reply(
            wire::AF_INET,
            &[
                (wire::IFA_ADDRESS, &[10, 0, 0, 2]),
                (wire::IFA_LOCAL, &[10, 0, 0, 1]),
            ],
        );
        assert_eq!(
            parse_address(wire::RTM_NEWADDR, &p2p),
            Some("10.0.0.1".parse().unwrap())
        );
        let v6 = reply(wire::AF_INET6, &[(wire::IFA_ADDRESS, &[0xfd; 16])]);
        assert_eq!(
            parse_address(wire::RTM_NEWADDR, &v6),
            Some(IpAddr::V6(Ipv6Addr::from([0xfd; 16])))
        );
        assert_eq!(parse_address(wire::RTM_NEWADDR, &[2, 0]), None);
        assert_eq!(parse_address(wire::RTM_NEWLINK, &v6), None);
    }
}
