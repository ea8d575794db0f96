//! The few header fields a drop event reports, parsed from the start of a
//! logged packet (its network header on).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What an event says about a packet. Ports are set for TCP, UDP, SCTP and
/// UDP-Lite, the ICMP(v6) type for ICMP and ICMPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Headers {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub protocol: u8,
    pub src_port: Option<u16>,
    pub dst_port: Option<u16>,
    pub icmp_type: Option<u8>,
}

const PORTED: [u8; 4] = [6, 17, 132, 136];

impl Headers {
    /// Parses an IPv4 or IPv6 packet; `None` if it is cut too short to
    /// name its addresses and protocol.
    pub fn parse(packet: &[u8]) -> Option<Self> {
        match packet.first()? >> 4 {
            4 => Self::v4(packet),
            6 => Self::v6(packet),
            _ => None,
        }
    }

    fn v4(p: &[u8]) -> Option<Self> {
        let ihl = usize::from(p.first()? & 0x0f) * 4;
        let src: [u8; 4] = p.get(12..16)?.try_into().ok()?;
        let dst: [u8; 4] = p.get(16..20)?.try_into().ok()?;
        // Only a first fragment carries the transport header.
        let offset = u16::from_be_bytes(p.get(6..8)?.try_into().ok()?) & 0x1fff;
        let l4 = if offset == 0 { p.get(ihl..) } else { None };
        Some(Self::with_l4(
            Ipv4Addr::from(src).into(),
            Ipv4Addr::from(dst).into(),
            *p.get(9)?,
            l4,
            1,
        ))
    }

    fn v6(p: &[u8]) -> Option<Self> {
        let src: [u8; 16] = p.get(8..24)?.try_into().ok()?;
        let dst: [u8; 16] = p.get(24..40)?.try_into().ok()?;
        let (mut next, mut at) = (*p.get(6)?, 40usize);
        // Walk hop-by-hop, routing, fragment and destination options.
        for _ in 0..8 {
            match next {
                0 | 43 | 60 => {
                    let len = (usize::from(*p.get(at + 1)?) + 1) * 8;
                    next = *p.get(at)?;
                    at += len;
                }
                44 => {
                    next = *p.get(at)?;
                    at += 8;
                }
                _ => break,
            }
        }
        Some(Self::with_l4(
            Ipv6Addr::from(src).into(),
            Ipv6Addr::from(dst).into(),
            next,
            p.get(at..),
            58,
        ))
    }

    fn with_l4(src: IpAddr, dst: IpAddr, protocol: u8, l4: Option<&[u8]>, icmp: u8) -> Self {
        let be16 = |b: Option<&[u8]>| b.and_then(|b| b.try_into().ok()).map(u16::from_be_bytes);
        let ported = PORTED.contains(&protocol);
        Self {
            src,
            dst,
            protocol,
            src_port: ported.then(|| be16(l4.and_then(|l| l.get(0..2)))).flatten(),
            dst_port: ported.then(|| be16(l4.and_then(|l| l.get(2..4)))).flatten(),
            icmp_type: (protocol == icmp)
                .then(|| l4.and_then(|l| l.first().copied()))
                .flatten(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_over_ipv4_and_udp_over_ipv6_with_an_extension_header() {
        let mut v4 = vec![
            0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        v4.extend_from_slice(&[0x9c, 0x40, 0, 23]);
        let h = Headers::parse(&v4).unwrap();
        assert_eq!(h.src, "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(
            (h.protocol, h.src_port, h.dst_port),
            (6, Some(40000), Some(23))
        );
        let mut v6 = vec![0x60, 0, 0, 0, 0, 16, 0, 64];
        v6.extend_from_slice(&"fd00::1".parse::<Ipv6Addr>().unwrap().octets());
        v6.extend_from_slice(&"fd00::2".parse::<Ipv6Addr>().unwrap().octets());
        v6.extend_from_slice(&[17, 0, 0, 0, 0, 0, 0, 0]); // destination options, 8 bytes
        v6.extend_from_slice(&[0, 53, 0x1f, 0x90]);
        let h = Headers::parse(&v6).unwrap();
        assert_eq!(
            (h.protocol, h.src_port, h.dst_port),
            (17, Some(53), Some(8080))
        );
        assert_eq!(h.dst, "fd00::2".parse::<IpAddr>().unwrap());
        assert!(Headers::parse(&v6[..30]).is_none());
    }
}
