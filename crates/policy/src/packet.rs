//! Packets as the policy sees them, and the decisions it gives.
//!
//! A [`Packet`] is described relative to one endpoint: `direction` `in` means
//! it arrives at the endpoint (`src` = remote, `dst` = the endpoint), `out`
//! that it leaves it (`src` = the endpoint, `dst` = remote). Ports are read
//! only for TCP, UDP, SCTP and UDP-Lite; a missing port there reads as 0.
//! `icmp_type` is read only for ICMPv6 over IPv6 (neighbour discovery is always
//! allowed).

use std::net::IpAddr;

use bulkhead_model::{Direction, RuleId};
use serde::Serialize;

/// Protocols whose packets carry ports (and that rules with ports match).
pub const PORTED_PROTOCOLS: [u8; 4] = [6, 17, 132, 136];
/// ICMPv6 neighbour discovery types: router solicit/advert, neighbour
/// solicit/advert, redirect.
pub const ND_TYPES: [u8; 5] = [133, 134, 135, 136, 137];
pub const ICMPV6: u8 = 58;

/// Whether packets of protocol `p` carry ports.
pub fn is_ported(p: u8) -> bool {
    PORTED_PROTOCOLS.contains(&p)
}

/// Conntrack's view of the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CtState {
    New,
    Established,
    Related,
    Invalid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Packet {
    pub direction: Direction,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub protocol: u8,
    pub src_port: Option<u16>,
    pub dst_port: Option<u16>,
    pub icmp_type: Option<u8>,
    pub ct: CtState,
}

impl Packet {
    /// A new flow's first packet.
    pub fn new(direction: Direction, src: IpAddr, dst: IpAddr, protocol: u8) -> Self {
        Self {
            direction,
            src,
            dst,
            protocol,
            src_port: None,
            dst_port: None,
            icmp_type: None,
            ct: CtState::New,
        }
    }

    pub fn with_ports(mut self, src_port: u16, dst_port: u16) -> Self {
        self.src_port = Some(src_port);
        self.dst_port = Some(dst_port);
        self
    }

    /// (remote address, local address) relative to the endpoint.
    pub fn remote_local(&self) -> (IpAddr, IpAddr) {
        match self.direction {
            Direction::In => (self.src, self.dst),
            Direction::Out => (self.dst, self.src),
        }
    }

    /// (source port, destination port) as matched: 0 when absent.
    pub fn ports(&self) -> (u16, u16) {
        (self.src_port.unwrap_or(0), self.dst_port.unwrap_or(0))
    }

    /// (remote port, local port) relative to the endpoint.
    pub fn remote_local_ports(&self) -> (u16, u16) {
        let (s, d) = self.ports();
        match self.direction {
            Direction::In => (s, d),
            Direction::Out => (d, s),
        }
    }

    pub fn is_v4(&self) -> bool {
        self.src.is_ipv4()
    }

    pub fn is_neighbour_discovery(&self) -> bool {
        !self.is_v4()
            && self.protocol == ICMPV6
            && self.icmp_type.is_some_and(|t| ND_TYPES.contains(&t))
    }
}

/// The outcome at one enforcement point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Allow,
    Block,
}

/// Who decided.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decider {
    /// A custom ACL rule, by id.
    Custom(RuleId),
    /// A named default rule (profile, replace-mode block, or an always-on rule).
    Default(&'static str),
    /// Connection tracking: replies (established, related) pass, invalid drops.
    Stateful,
    /// The point cannot be programmed for this endpoint; nothing filters there.
    NotProgrammable,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Decision {
    pub verdict: Verdict,
    pub decided_by: Decider,
}

impl Decision {
    pub fn new(verdict: Verdict, decided_by: Decider) -> Self {
        Self {
            verdict,
            decided_by,
        }
    }
}
