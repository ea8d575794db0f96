//! The DHCP answer to one frame a guest sent on its TAP: pure functions
//! from bytes to bytes, so every rule is unit-tested without a socket.
//!
//! Contract: [`answer`] returns a reply only for a DHCPv4 BOOTREQUEST
//! (Ethernet → IPv4 → UDP 68 → 67) whose Ethernet source and `chaddr` are
//! both the lease's MAC; DISCOVER gets an OFFER, REQUEST for the lease's
//! address (or renewing it) an ACK, REQUEST for another address a NAK,
//! INFORM an ACK without a lease, anything else nothing. A REQUEST naming
//! another server identifier is the client choosing someone else: ignored.

use std::net::Ipv4Addr;

use dhcproto::v4::{self, DhcpOption, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Decoder, Encodable, Encoder};

use super::DhcpLease;

const ETH_HEADER: usize = 14;
const ETHERTYPE_IPV4: u16 = 0x0800;
const UDP: u8 = 17;
const SERVER_PORT: u16 = 67;
const CLIENT_PORT: u16 = 68;
const BROADCAST_MAC: [u8; 6] = [0xff; 6];

/// The UDP payload of a client's DHCP frame, if `frame` is one from `mac`.
fn client_payload(frame: &[u8], mac: [u8; 6]) -> Option<&[u8]> {
    if frame.len() < ETH_HEADER + 20 + 8 || frame[6..12] != mac {
        return None;
    }
    if u16::from_be_bytes([frame[12], frame[13]]) != ETHERTYPE_IPV4 {
        return None;
    }
    let ip = &frame[ETH_HEADER..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    if ip[0] >> 4 != 4 || ihl < 20 || ip[9] != UDP || ip.len() < ihl + 8 {
        return None;
    }
    // A fragment is never a whole DHCP message.
    if u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0 {
        return None;
    }
    let udp = &ip[ihl..];
    let (sport, dport) = (
        u16::from_be_bytes([udp[0], udp[1]]),
        u16::from_be_bytes([udp[2], udp[3]]),
    );
    let len = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
    if sport != CLIENT_PORT || dport != SERVER_PORT || len < 8 || udp.len() < len {
        return None;
    }
    Some(&udp[8..len])
}

/// The reply to `frame` (a whole Ethernet frame the guest sent), as a whole
/// Ethernet frame from `server_mac`, or `None` (see the module doc).
pub fn answer(lease: &DhcpLease, server_mac: [u8; 6], frame: &[u8]) -> Option<Vec<u8>> {
    let payload = client_payload(frame, lease.mac)?;
    let msg = Message::decode(&mut Decoder::new(payload)).ok()?;
    if msg.opcode() != Opcode::BootRequest || msg.chaddr().get(..6)? != lease.mac {
        return None;
    }
    let server = lease.server_id();
    let kind = match msg.opts().msg_type()? {
        MessageType::Discover => MessageType::Offer,
        MessageType::Request => {
            match msg.opts().get(OptionCode::ServerIdentifier) {
                Some(DhcpOption::ServerIdentifier(s)) if *s != server => return None,
                _ => {}
            }
            let wanted = match msg.opts().get(OptionCode::RequestedIpAddress) {
                Some(DhcpOption::RequestedIpAddress(ip)) => *ip,
                _ => msg.ciaddr(),
            };
            if wanted == lease.address {
                MessageType::Ack
            } else {
                MessageType::Nak
            }
        }
        MessageType::Inform => MessageType::Ack,
        _ => return None,
    };
    let inform = msg.opts().msg_type() == Some(MessageType::Inform);
    let mut reply = Message::new_with_id(
        msg.xid(),
        if inform {
            msg.ciaddr()
        } else {
            Ipv4Addr::UNSPECIFIED
        },
        if kind == MessageType::Nak || inform {
            Ipv4Addr::UNSPECIFIED
        } else {
            lease.address
        },
        Ipv4Addr::UNSPECIFIED,
        msg.giaddr(),
        &lease.mac,
    );
    reply.set_opcode(Opcode::BootReply).set_flags(msg.flags());
    let opts = reply.opts_mut();
    opts.insert(DhcpOption::MessageType(kind));
    opts.insert(DhcpOption::ServerIdentifier(server));
    if kind != MessageType::Nak {
        if !inform {
            opts.insert(DhcpOption::AddressLeaseTime(lease.lease_secs));
        }
        opts.insert(DhcpOption::SubnetMask(mask(lease.prefix)));
        if let Some(gw) = lease.gateway {
            opts.insert(DhcpOption::Router(vec![gw]));
        }
        if !lease.dns.is_empty() {
            opts.insert(DhcpOption::DomainNameServer(lease.dns.clone()));
        }
    }
    let mut body = Vec::new();
    reply.encode(&mut Encoder::new(&mut body)).ok()?;
    // RFC 2131 §4.1: to ciaddr when the client has one; broadcast when it
    // asked for it (or for a NAK); else to the offered address. Either way
    // the frame goes out of the guest's own TAP only.
    let broadcast = kind == MessageType::Nak || msg.flags().broadcast();
    let (dst_ip, dst_mac) = if !msg.ciaddr().is_unspecified() && kind != MessageType::Nak {
        (msg.ciaddr(), lease.mac)
    } else if broadcast {
        (Ipv4Addr::BROADCAST, BROADCAST_MAC)
    } else {
        (lease.address, lease.mac)
    };
    Some(frame_udp(
        server_mac,
        dst_mac,
        server,
        dst_ip,
        SERVER_PORT,
        CLIENT_PORT,
        &body,
    ))
}

/// The netmask of an IPv4 prefix length.
pub fn mask(prefix: u8) -> Ipv4Addr {
    let p = u32::from(prefix.min(32));
    Ipv4Addr::from(u32::MAX.checked_shl(32 - p).unwrap_or(0))
}

/// An Ethernet/IPv4/UDP frame (UDP checksum 0: optional over IPv4).
pub fn frame_udp(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let udp_len = 8 + payload.len();
    let total = 20 + udp_len;
    let mut f = Vec::with_capacity(ETH_HEADER + total);
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    let ip_start = f.len();
    f.extend_from_slice(&[0x45, 0x10]);
    f.extend_from_slice(&(total as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 0, 64, UDP, 0, 0]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    let sum = checksum(&f[ip_start..ip_start + 20]);
    f[ip_start + 10..ip_start + 12].copy_from_slice(&sum.to_be_bytes());
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&(udp_len as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

/// The Internet checksum of `data` (an IPv4 header with a zero checksum).
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Decodes the DHCP message of a server's frame (tests and tools).
pub fn decode_reply(frame: &[u8]) -> Option<Message> {
    if frame.len() < ETH_HEADER + 28 {
        return None;
    }
    let ip = &frame[ETH_HEADER..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    if ip[9] != UDP || ip.len() < ihl + 8 {
        return None;
    }
    let udp = &ip[ihl..];
    if u16::from_be_bytes([udp[0], udp[1]]) != SERVER_PORT {
        return None;
    }
    v4::Message::decode(&mut Decoder::new(&udp[8..])).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 7];

    fn lease() -> DhcpLease {
        DhcpLease {
            port: "bhp0".into(),
            mac: MAC,
            address: Ipv4Addr::new(10, 1, 0, 7),
            prefix: 24,
            gateway: Some(Ipv4Addr::new(10, 1, 0, 1)),
            dns: vec![],
            lease_secs: 3600,
        }
    }

    fn request(src: [u8; 6], chaddr: [u8; 6], kind: MessageType, opts: &[DhcpOption]) -> Vec<u8> {
        let z = Ipv4Addr::UNSPECIFIED;
        let mut m = Message::new_with_id(7, z, z, z, z, &chaddr);
        m.opts_mut().insert(DhcpOption::MessageType(kind));
        for o in opts {
            m.opts_mut().insert(o.clone());
        }
        let mut body = Vec::new();
        m.encode(&mut Encoder::new(&mut body)).unwrap();
        frame_udp(src, BROADCAST_MAC, z, Ipv4Addr::BROADCAST, 68, 67, &body)
    }

    fn kind(reply: Option<Vec<u8>>) -> Option<MessageType> {
        decode_reply(&reply?)?.opts().msg_type()
    }

    #[test]
    fn answers_its_own_mac_only_and_by_the_rules() {
        let (l, srv) = (lease(), [2, 0, 0, 0, 0, 1]);
        let offer = answer(&l, srv, &request(MAC, MAC, MessageType::Discover, &[])).unwrap();
        let m = decode_reply(&offer).unwrap();
        assert_eq!(
            (m.yiaddr(), m.opts().msg_type()),
            (l.address, Some(MessageType::Offer))
        );
        assert_eq!(&offer[6..12], &srv);
        assert_eq!(checksum(&offer[14..34]), 0, "a valid IPv4 header checksum");
        let other = [2, 0, 0, 0, 0, 8];
        assert!(answer(&l, srv, &request(other, other, MessageType::Discover, &[])).is_none());
        assert!(answer(&l, srv, &request(MAC, other, MessageType::Discover, &[])).is_none());
        assert!(answer(&l, srv, &request(other, MAC, MessageType::Discover, &[])).is_none());
        let want = |ip| DhcpOption::RequestedIpAddress(ip);
        let ours = request(MAC, MAC, MessageType::Request, &[want(l.address)]);
        assert_eq!(kind(answer(&l, srv, &ours)), Some(MessageType::Ack));
        let theirs = request(
            MAC,
            MAC,
            MessageType::Request,
            &[want(Ipv4Addr::new(10, 1, 0, 9))],
        );
        assert_eq!(kind(answer(&l, srv, &theirs)), Some(MessageType::Nak));
        let elsewhere = DhcpOption::ServerIdentifier(Ipv4Addr::new(10, 1, 0, 200));
        let chose_other = request(
            MAC,
            MAC,
            MessageType::Request,
            &[want(l.address), elsewhere],
        );
        assert!(answer(&l, srv, &chose_other).is_none());
        assert!(answer(&l, srv, &request(MAC, MAC, MessageType::Release, &[])).is_none());
    }
}
