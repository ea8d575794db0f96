//! The rtnetlink numbers bulkhead uses (`linux/rtnetlink.h`, `if_link.h`,
//! `if_addr.h`, `neighbour.h`, `fib_rules.h`) and its one fixed header
//! builder, `ifinfomsg`; everything else about the wire format is the
//! shared core's ([`crate::netlink::wire`]).
//!
//! Contract: a request is a [`Writer`] holding exactly one message, made by
//! [`request`]; its length and sequence number are stamped when it is sent.

pub(crate) use crate::netlink::wire::{
    str_of, u32_of, Attrs, Writer, NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};

pub const RTM_NEWLINK: u16 = 16;
pub const RTM_DELLINK: u16 = 17;
pub const RTM_GETLINK: u16 = 18;
pub const RTM_NEWADDR: u16 = 20;
pub const RTM_DELADDR: u16 = 21;
pub const RTM_GETADDR: u16 = 22;
pub const RTM_NEWROUTE: u16 = 24;
pub const RTM_DELROUTE: u16 = 25;
pub const RTM_NEWNEIGH: u16 = 28;
pub const RTM_DELNEIGH: u16 = 29;
pub const RTM_NEWRULE: u16 = 32;
pub const RTM_DELRULE: u16 = 33;
pub const FRA_SRC: u16 = 2;
pub const FRA_IIFNAME: u16 = 3;
pub const FRA_PRIORITY: u16 = 6;
pub const FRA_FWMARK: u16 = 10;
pub const FRA_FWMASK: u16 = 16;
pub const FRA_TABLE: u16 = 15;

pub const IFLA_ADDRESS: u16 = 1;
pub const IFLA_IFNAME: u16 = 3;
pub const IFLA_MTU: u16 = 4;
pub const IFLA_LINK: u16 = 5;
pub const IFLA_MASTER: u16 = 10;
pub const IFLA_LINKINFO: u16 = 18;
pub const IFLA_GROUP: u16 = 27;
pub const IFLA_NET_NS_FD: u16 = 28;
pub const IFLA_EXT_MASK: u16 = 29;
pub const IFLA_NUM_TX_QUEUES: u16 = 31;
pub const IFLA_NUM_RX_QUEUES: u16 = 32;
pub const RTEXT_FILTER_SKIP_STATS: u32 = 1 << 3;
pub const IFLA_INFO_KIND: u16 = 1;
pub const IFLA_INFO_DATA: u16 = 2;
pub const VETH_INFO_PEER: u16 = 1;
pub const IFLA_MACVLAN_MODE: u16 = 1;
pub const IFLA_VXLAN_ID: u16 = 1;
pub const IFLA_VXLAN_LINK: u16 = 3;
pub const IFLA_VXLAN_LOCAL: u16 = 4;
pub const IFLA_VXLAN_LEARNING: u16 = 7;
pub const IFLA_VXLAN_PROXY: u16 = 11;
pub const IFLA_VXLAN_PORT: u16 = 15;
pub const IFLA_VXLAN_LOCAL6: u16 = 17;
pub const IFF_UP: u32 = 0x1;

pub const IFA_ADDRESS: u16 = 1;
pub const IFA_LOCAL: u16 = 2;
pub const IFA_F_NODAD: u8 = 0x02;

pub const RTA_DST: u16 = 1;
pub const RTA_OIF: u16 = 4;
pub const RTA_GATEWAY: u16 = 5;
pub const RTA_PRIORITY: u16 = 6;
pub const RTA_TABLE: u16 = 15;
pub const RTN_UNICAST: u8 = 1;
pub const RTPROT_STATIC: u8 = 4;
pub const RT_SCOPE_UNIVERSE: u8 = 0;
pub const RT_SCOPE_LINK: u8 = 253;
pub const RT_TABLE_MAIN: u8 = 254;
pub const RTNH_F_ONLINK: u32 = 0x4;

pub const NDA_DST: u16 = 1;
pub const NDA_LLADDR: u16 = 2;
pub const NUD_PERMANENT: u16 = 0x80;
pub const NTF_SELF: u8 = 0x02;
pub const NTF_PROXY: u8 = 0x08;

pub const AF_UNSPEC: u8 = 0;
pub const AF_INET: u8 = 2;
pub const AF_BRIDGE: u8 = 7;
pub const AF_INET6: u8 = 10;

/// Starts a request of type `ty` with `flags` (NLM_F_REQUEST is added).
pub fn request(ty: u16, flags: u16) -> Writer {
    let mut m = Writer::default();
    m.begin(ty, flags | NLM_F_REQUEST, 0);
    m
}

/// Appends `struct ifinfomsg`.
pub fn ifinfo(m: &mut Writer, family: u8, index: u32, flags: u32, change: u32) -> &mut Writer {
    let mut h = [0u8; 16];
    h[0] = family;
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    h[8..12].copy_from_slice(&flags.to_ne_bytes());
    h[12..16].copy_from_slice(&change.to_ne_bytes());
    m.raw(&h)
}
