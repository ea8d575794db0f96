//! Routes (in the main table unless told otherwise) and static neighbours (ARP/NDP entries and
//! bridge forwarding entries).
//!
//! Contract: a [`Route`] names its destination, output device and optional
//! gateway; a route without a gateway is scope link (the destination is on
//! the wire of `dev`), a route with one is scope universe, and `onlink` lets
//! the gateway sit outside every subnet of `dev` (the nat driver's
//! `default via GW onlink`). Routes are tagged protocol "static".

use std::net::IpAddr;

use super::wire::{self, Writer};
use super::Batch;

/// A route in the main table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Destination network; `None` is the default route (of the gateway's family).
    pub dst: Option<(IpAddr, u8)>,
    pub gateway: Option<IpAddr>,
    /// Output interface index.
    pub dev: u32,
    pub onlink: bool,
    pub metric: Option<u32>,
    /// The routing table (`None`: main).
    pub table: Option<u32>,
}

impl Route {
    /// `default via GW dev DEV [onlink]`.
    pub fn default_via(gateway: IpAddr, dev: u32, onlink: bool) -> Self {
        Self {
            dst: None,
            gateway: Some(gateway),
            dev,
            onlink,
            metric: None,
            table: None,
        }
    }

    /// `IP/32` (or `/128`) `dev DEV scope link`: one endpoint behind a port.
    pub fn host(ip: IpAddr, dev: u32) -> Self {
        let len = if ip.is_ipv4() { 32 } else { 128 };
        Self::to_net(ip, len, dev)
    }

    /// `NET/LEN dev DEV scope link`.
    pub fn to_net(net: IpAddr, len: u8, dev: u32) -> Self {
        Self {
            dst: Some((net, len)),
            gateway: None,
            dev,
            onlink: false,
            metric: None,
            table: None,
        }
    }

    fn is_v4(&self) -> bool {
        match (self.dst, self.gateway) {
            (Some((ip, _)), _) | (None, Some(ip)) => ip.is_ipv4(),
            (None, None) => true,
        }
    }

    fn describe(&self) -> String {
        let dst = self
            .dst
            .map_or("default".to_string(), |(ip, len)| format!("{ip}/{len}"));
        let via = self
            .gateway
            .map(|g| format!(" via {g}"))
            .unwrap_or_default();
        format!("{dst}{via} dev {}", self.dev)
    }

    fn msg(&self, ty: u16, flags: u16) -> Writer {
        let family = if self.is_v4() {
            wire::AF_INET
        } else {
            wire::AF_INET6
        };
        let scope = if self.gateway.is_some() {
            wire::RT_SCOPE_UNIVERSE
        } else {
            wire::RT_SCOPE_LINK
        };
        let mut h = [0u8; 12];
        h[0] = family;
        h[1] = self.dst.map_or(0, |(_, len)| len);
        let table = self.table.unwrap_or(u32::from(wire::RT_TABLE_MAIN));
        h[4] = u8::try_from(table).unwrap_or(0);
        h[5] = wire::RTPROT_STATIC;
        h[6] = scope;
        h[7] = wire::RTN_UNICAST;
        let rflags = if self.onlink { wire::RTNH_F_ONLINK } else { 0 };
        h[8..12].copy_from_slice(&rflags.to_ne_bytes());
        let mut m = wire::request(ty, flags);
        m.raw(&h);
        if let Some((ip, _)) = self.dst {
            m.bytes(wire::RTA_DST, &ip_bytes(ip));
        }
        if let Some(gw) = self.gateway {
            m.bytes(wire::RTA_GATEWAY, &ip_bytes(gw));
        }
        m.u32(wire::RTA_OIF, self.dev);
        if let Some(metric) = self.metric {
            m.u32(wire::RTA_PRIORITY, metric);
        }
        m.u32(wire::RTA_TABLE, table);
        m
    }
}

fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// A permanent neighbour entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Neighbour {
    /// `IP lladdr MAC dev DEV nud permanent` (static ARP / NDP).
    Ip { dev: u32, ip: IpAddr, mac: [u8; 6] },
    /// `bridge fdb append MAC dev DEV dst IP self permanent`: on a VXLAN
    /// device, where to send frames for `mac` (all-zero: flood/unknown).
    Fdb { dev: u32, mac: [u8; 6], dst: IpAddr },
    /// `ip neigh add proxy IP dev DEV`: answer ARP/NDP for `ip` on `dev`
    /// (with the device's own MAC), as proxy ARP does, for one address only.
    Proxy { dev: u32, ip: IpAddr },
}

impl Neighbour {
    fn describe(&self) -> String {
        match self {
            Neighbour::Ip { dev, ip, .. } => format!("{ip} on link {dev}"),
            Neighbour::Fdb { dev, mac, dst } => format!("{} dst {dst} on link {dev}", mac_str(mac)),
            Neighbour::Proxy { dev, ip } => format!("proxy {ip} on link {dev}"),
        }
    }

    fn msg(&self, ty: u16, flags: u16) -> Writer {
        let (family, dev, ntf, ip, mac) = match *self {
            Neighbour::Ip { dev, ip, mac } => {
                let fam = if ip.is_ipv4() {
                    wire::AF_INET
                } else {
                    wire::AF_INET6
                };
                (fam, dev, 0, ip, mac)
            }
            Neighbour::Fdb { dev, mac, dst } => (wire::AF_BRIDGE, dev, wire::NTF_SELF, dst, mac),
            Neighbour::Proxy { dev, ip } => {
                let fam = if ip.is_ipv4() {
                    wire::AF_INET
                } else {
                    wire::AF_INET6
                };
                (fam, dev, wire::NTF_PROXY, ip, [0; 6])
            }
        };
        let mut h = [0u8; 12];
        h[0] = family;
        h[4..8].copy_from_slice(&dev.to_ne_bytes());
        h[8..10].copy_from_slice(&wire::NUD_PERMANENT.to_ne_bytes());
        h[10] = ntf;
        let mut m = wire::request(ty, flags);
        m.raw(&h).bytes(wire::NDA_DST, &ip_bytes(ip));
        if ntf != wire::NTF_PROXY {
            m.bytes(wire::NDA_LLADDR, &mac);
        }
        m
    }
}

pub(crate) fn mac_str(mac: &[u8; 6]) -> String {
    let hex: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
    hex.join(":")
}

impl Batch {
    pub fn add_route(&mut self, route: &Route) -> &mut Self {
        let flags = wire::NLM_F_ACK | wire::NLM_F_CREATE | wire::NLM_F_EXCL;
        let m = route.msg(wire::RTM_NEWROUTE, flags);
        self.push("add route", route.describe(), m)
    }

    pub fn delete_route(&mut self, route: &Route) -> &mut Self {
        let m = route.msg(wire::RTM_DELROUTE, wire::NLM_F_ACK);
        self.push("delete route", route.describe(), m)
    }

    /// Adds a permanent neighbour entry; an IP neighbour that exists is an
    /// error, FDB entries are appended (one MAC may have several destinations).
    pub fn add_neighbour(&mut self, n: &Neighbour) -> &mut Self {
        let mode = match n {
            Neighbour::Ip { .. } | Neighbour::Proxy { .. } => wire::NLM_F_EXCL,
            Neighbour::Fdb { .. } => wire::NLM_F_APPEND,
        };
        let m = n.msg(
            wire::RTM_NEWNEIGH,
            wire::NLM_F_ACK | wire::NLM_F_CREATE | mode,
        );
        self.push("add neighbour", n.describe(), m)
    }

    pub fn delete_neighbour(&mut self, n: &Neighbour) -> &mut Self {
        let m = n.msg(wire::RTM_DELNEIGH, wire::NLM_F_ACK);
        self.push("delete neighbour", n.describe(), m)
    }
}
