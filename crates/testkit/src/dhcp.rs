//! DHCP frames as a guest's client sends them (and a rogue server's
//! offers), built with `dhcproto` for the message and by hand for the
//! Ethernet/IPv4/UDP headers — independently of bulkhead's own server.

use std::net::Ipv4Addr;

use dhcproto::v4::{DhcpOption, Flags, Message, MessageType, Opcode};
use dhcproto::{Decodable, Decoder, Encodable, Encoder};

/// An Ethernet/IPv4/UDP frame (UDP checksum 0).
pub fn udp_frame(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut ip = vec![0x45, 0, 0, 0, 0, 1, 0, 0, 64, 17, 0, 0];
    let total = (20 + 8 + payload.len()) as u16;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    let mut sum: u32 = ip
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    let mut f = Vec::new();
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&ip);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&(8 + payload.len() as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

/// A client's broadcast DISCOVER or REQUEST from `mac` (source 0.0.0.0,
/// to 255.255.255.255:67), with the requested address and server id.
pub fn client_frame(
    mac: [u8; 6],
    kind: MessageType,
    xid: u32,
    requested: Option<Ipv4Addr>,
    server: Option<Ipv4Addr>,
) -> Vec<u8> {
    let z = Ipv4Addr::UNSPECIFIED;
    let mut m = Message::new_with_id(xid, z, z, z, z, &mac);
    m.set_flags(Flags::default().set_broadcast());
    m.opts_mut().insert(DhcpOption::MessageType(kind));
    if let Some(r) = requested {
        m.opts_mut().insert(DhcpOption::RequestedIpAddress(r));
    }
    if let Some(s) = server {
        m.opts_mut().insert(DhcpOption::ServerIdentifier(s));
    }
    let mut body = Vec::new();
    m.encode(&mut Encoder::new(&mut body)).expect("encode dhcp");
    udp_frame(mac, [0xff; 6], z, Ipv4Addr::BROADCAST, 68, 67, &body)
}

/// A rogue server's OFFER of `offered` to `client_mac`, from `src`
/// (`src_mac`, UDP 67) to `dst` (`dst_mac`, UDP 68).
pub fn rogue_offer(
    src_mac: [u8; 6],
    src: Ipv4Addr,
    dst_mac: [u8; 6],
    dst: Ipv4Addr,
    client_mac: [u8; 6],
    offered: Ipv4Addr,
) -> Vec<u8> {
    let z = Ipv4Addr::UNSPECIFIED;
    let mut m = Message::new_with_id(0x0bad_0bad, z, offered, src, z, &client_mac);
    m.set_opcode(Opcode::BootReply);
    m.opts_mut()
        .insert(DhcpOption::MessageType(MessageType::Offer));
    m.opts_mut().insert(DhcpOption::ServerIdentifier(src));
    m.opts_mut().insert(DhcpOption::Router(vec![src]));
    let mut body = Vec::new();
    m.encode(&mut Encoder::new(&mut body)).expect("encode dhcp");
    udp_frame(src_mac, dst_mac, src, dst, 67, 68, &body)
}

/// The DHCP message of a frame from UDP 67 to 68, if it is one.
pub fn server_message(frame: &[u8]) -> Option<Message> {
    if !crate::tap::is_udp(frame, 67, 68) {
        return None;
    }
    let ihl = usize::from(frame[14] & 0x0f) * 4;
    Message::decode(&mut Decoder::new(&frame[14 + ihl + 8..])).ok()
}
