//! Listing the permanent neighbour and FDB entries of one device
//! (`RTM_GETNEIGH` dumps), so a restarted daemon can diff a VXLAN device's
//! remote endpoints against what it wants instead of assuming it is empty.
//!
//! Contract: [`super::Rtnl::permanent_neighbours`] returns the entries of
//! `dev` in `NUD_PERMANENT` state, as [`Neighbour::Ip`] (IPv4/IPv6 with a
//! link-layer address) and [`Neighbour::Fdb`] (bridge family, with a
//! destination); proxy entries and anything else are left out.

use std::net::IpAddr;

use super::wire;
use super::Neighbour;

/// `RTM_GETNEIGH` (`linux/rtnetlink.h`).
const RTM_GETNEIGH: u16 = 30;

fn ip_of(v: &[u8]) -> Option<IpAddr> {
    match v.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(v).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(v).ok()?)),
        _ => None,
    }
}

/// One dump reply (`ndmsg` + attributes) as an entry of `dev`, if it is one.
fn parse(ty: u16, payload: &[u8], dev: u32) -> Option<Neighbour> {
    if ty != wire::RTM_NEWNEIGH || payload.len() < 12 {
        return None;
    }
    let family = payload[0];
    let index = wire::u32_of(&payload[4..8])?;
    let state = u16::from_ne_bytes([payload[8], payload[9]]);
    let flags = payload[10];
    if index != dev || state & wire::NUD_PERMANENT == 0 || flags & wire::NTF_PROXY != 0 {
        return None;
    }
    let (mut dst, mut mac) = (None, None);
    for (t, v) in wire::Attrs(&payload[12..]) {
        match t {
            wire::NDA_DST => dst = ip_of(v),
            wire::NDA_LLADDR => mac = <[u8; 6]>::try_from(v).ok(),
            _ => {}
        }
    }
    let (dst, mac) = (dst?, mac?);
    match family {
        wire::AF_BRIDGE => Some(Neighbour::Fdb { dev, mac, dst }),
        wire::AF_INET | wire::AF_INET6 => Some(Neighbour::Ip { dev, ip: dst, mac }),
        _ => None,
    }
}

impl super::Rtnl {
    /// The permanent neighbour and FDB entries of device `dev`.
    pub fn permanent_neighbours(&mut self, dev: u32) -> Result<Vec<Neighbour>, super::RtnlError> {
        let mut out = Vec::new();
        for family in [wire::AF_BRIDGE, wire::AF_INET, wire::AF_INET6] {
            let mut m = wire::request(RTM_GETNEIGH, wire::NLM_F_ACK | wire::NLM_F_DUMP);
            let mut h = [0u8; 12];
            h[0] = family;
            h[4..8].copy_from_slice(&dev.to_ne_bytes());
            m.raw(&h);
            self.query("list neighbours", &format!("link {dev}"), &m, |ty, p| {
                out.extend(parse(ty, p, dev))
            })?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(family: u8, dev: u32, state: u16, flags: u8, attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut m = wire::request(wire::RTM_NEWNEIGH, 0);
        let mut h = [0u8; 12];
        h[0] = family;
        h[4..8].copy_from_slice(&dev.to_ne_bytes());
        h[8..10].copy_from_slice(&state.to_ne_bytes());
        h[10] = flags;
        m.raw(&h);
        for (t, v) in attrs {
            m.bytes(*t, v);
        }
        m.buf[crate::netlink::wire::NLMSG_HDRLEN..].to_vec()
    }

    #[test]
    fn replies_become_entries_of_the_device_only() {
        let mac = [2, 0, 0, 0, 0, 9];
        let fdb = reply(
            wire::AF_BRIDGE,
            7,
            wire::NUD_PERMANENT,
            wire::NTF_SELF,
            &[(wire::NDA_LLADDR, &mac), (wire::NDA_DST, &[10, 98, 0, 3])],
        );
        assert_eq!(
            parse(wire::RTM_NEWNEIGH, &fdb, 7),
            Some(Neighbour::Fdb {
                dev: 7,
                mac,
                dst: "10.98.0.3".parse().unwrap()
            })
        );
        assert_eq!(parse(wire::RTM_NEWNEIGH, &fdb, 8), None, "another device");
        let ip = reply(
            wire::AF_INET,
            7,
            wire::NUD_PERMANENT,
            0,
            &[(wire::NDA_DST, &[10, 70, 0, 5]), (wire::NDA_LLADDR, &mac)],
        );
        assert_eq!(
            parse(wire::RTM_NEWNEIGH, &ip, 7),
            Some(Neighbour::Ip {
                dev: 7,
                ip: "10.70.0.5".parse().unwrap(),
                mac
            })
        );
        let learned = reply(
            wire::AF_INET,
            7,
            0x02,
            0,
            &[(wire::NDA_DST, &[10, 70, 0, 6]), (wire::NDA_LLADDR, &mac)],
        );
        assert_eq!(
            parse(wire::RTM_NEWNEIGH, &learned, 7),
            None,
            "not permanent"
        );
        let proxy = reply(
            wire::AF_INET,
            7,
            wire::NUD_PERMANENT,
            wire::NTF_PROXY,
            &[(wire::NDA_DST, &[10, 70, 0, 7])],
        );
        assert_eq!(parse(wire::RTM_NEWNEIGH, &proxy, 7), None, "proxy");
    }
}
