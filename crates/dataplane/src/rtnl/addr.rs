//! IPv4 and IPv6 interface addresses.
//!
//! Contract: an address is `ip/prefix` on an interface index. IPv6 addresses
//! are added with duplicate address detection off (IFA_F_NODAD): bulkhead's
//! IPAM hands out unique addresses, and DAD would hold a new endpoint's
//! address unusable ("tentative") for about a second.

use std::net::IpAddr;

use super::wire::{self, Writer};
use super::Batch;

fn addr_msg(ty: u16, flags: u16, index: u32, ip: IpAddr, prefix: u8) -> Writer {
    let (family, bytes, ifa_flags): (u8, Vec<u8>, u8) = match ip {
        IpAddr::V4(a) => (wire::AF_INET, a.octets().to_vec(), 0),
        IpAddr::V6(a) => (wire::AF_INET6, a.octets().to_vec(), wire::IFA_F_NODAD),
    };
    let mut m = wire::request(ty, flags);
    let mut h = [0u8; 8];
    h[0] = family;
    h[1] = prefix;
    h[2] = ifa_flags;
    h[3] = wire::RT_SCOPE_UNIVERSE;
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    m.raw(&h)
        .bytes(wire::IFA_LOCAL, &bytes)
        .bytes(wire::IFA_ADDRESS, &bytes);
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

/// One address of an interface, as the kernel lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IfAddr {
    pub index: u32,
    pub ip: IpAddr,
    pub prefix: u8,
    /// `RT_SCOPE_*`: 0 universe (global), 253 link, 254 host.
    pub scope: u8,
}

fn parse_addr(ty: u16, payload: &[u8]) -> Option<IfAddr> {
    if ty != wire::RTM_NEWADDR || payload.len() < 8 {
        return None;
    }
    let (family, prefix, scope) = (payload[0], payload[1], payload[3]);
    let index = wire::u32_of(&payload[4..8])?;
    let mut local = None;
    let mut address = None;
    for (t, v) in wire::Attrs(&payload[8..]) {
        let ip = match (family, v.len()) {
            (wire::AF_INET, 4) => IpAddr::from(<[u8; 4]>::try_from(v).ok()?),
            (wire::AF_INET6, 16) => IpAddr::from(<[u8; 16]>::try_from(v).ok()?),
            _ => continue,
        };
        match t {
            wire::IFA_LOCAL => local = Some(ip),
            wire::IFA_ADDRESS => address = Some(ip),
            _ => {}
        }
    }
    // IFA_LOCAL is the interface's own address (IFA_ADDRESS is the peer on
    // point-to-point links); IPv6 sends only IFA_ADDRESS.
    Some(IfAddr {
        index,
        ip: local.or(address)?,
        prefix,
        scope,
    })
}

impl super::Rtnl {
    /// Every address of every interface of the namespace, by interface
    /// index (the order in which the kernel itself picks a source address
    /// when the outgoing interface has none).
    pub fn addresses(&mut self) -> Result<Vec<IfAddr>, super::RtnlError> {
        let mut m = wire::request(wire::RTM_GETADDR, wire::NLM_F_ACK | wire::NLM_F_DUMP);
        m.raw(&[wire::AF_UNSPEC, 0, 0, 0, 0, 0, 0, 0]);
        let mut out = Vec::new();
        self.query("list addresses", "all", &m, |ty, p| {
            out.extend(parse_addr(ty, p))
        })?;
        out.sort_by_key(|a| a.index);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use super::*;

    #[test]
    fn a_reply_gives_its_local_address() {
        let reply = |family, attrs: &[(u16, &[u8])]| {
            let mut m = wire::request(wire::RTM_NEWADDR, 0);
            m.raw(&[family, 24, 0, 0, 1, 0, 0, 0]);
            for (t, v) in attrs {
                m.bytes(*t, v);
            }
            m.buf[crate::netlink::wire::NLMSG_HDRLEN..].to_vec()
        };
        let p2p = reply(
            wire::AF_INET,
            &[
                (wire::IFA_ADDRESS, &[10, 0, 0, 2]),
                (wire::IFA_LOCAL, &[10, 0, 0, 1]),
            ],
        );
        let got = parse_addr(wire::RTM_NEWADDR, &p2p).expect("an address");
        assert_eq!(got.ip, "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!((got.index, got.prefix), (1, 24));
        let v6 = reply(wire::AF_INET6, &[(wire::IFA_ADDRESS, &[0xfd; 16])]);
        assert_eq!(
            parse_addr(wire::RTM_NEWADDR, &v6).map(|a| a.ip),
            Some(IpAddr::V6(Ipv6Addr::from([0xfd; 16])))
        );
        assert_eq!(parse_addr(wire::RTM_NEWADDR, &[2, 0]), None);
        assert_eq!(parse_addr(wire::RTM_NEWLINK, &v6), None);
    }
}
