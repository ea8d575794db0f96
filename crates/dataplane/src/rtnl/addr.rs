//! IPv4 and IPv6 interface addresses.
//!
//! Contract: an address is `ip/prefix` on an interface index. IPv6 addresses
//! are added with duplicate address detection off (IFA_F_NODAD): bulkhead's
//! IPAM hands out unique addresses, and DAD would hold a new endpoint's
//! address unusable ("tentative") for about a second.

use std::net::IpAddr;

use super::wire::{self, Msg};
use super::Batch;

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
