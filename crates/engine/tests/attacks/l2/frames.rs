//! Hand-made Ethernet frames a hostile tenant sends (router advertisements,
//! redirects, DHCP offers, ARP, neighbour advertisements, spoofed sources),
//! sent through an AF_PACKET socket inside its namespace, and a sniffer that
//! sees every frame reaching a namespace's interfaces (before its netfilter).

use std::io::Read;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::{Duration, Instant};

use bulkhead_dataplane::netns;
use socket2::{Domain, Protocol, Socket, Type};

pub type Mac = [u8; 6];
pub const BROADCAST: Mac = [0xff; 6];
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
const ETH_IP: u16 = 0x0800;
const ETH_IP6: u16 = 0x86dd;
const ETH_ARP: u16 = 0x0806;

/// The Ethernet destination of an IPv6 multicast address.
pub fn mcast_mac(a: Ipv6Addr) -> Mac {
    let o = a.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

fn csum(chunks: &[&[u8]]) -> u16 {
    let mut acc: u32 = 0;
    for c in chunks {
        for pair in c.chunks(2) {
            let hi = u32::from(pair[0]) << 8;
            acc += hi | pair.get(1).map_or(0, |b| u32::from(*b));
        }
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// An Ethernet frame.
pub fn eth(dst: Mac, src: Mac, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An IPv4/UDP frame (UDP checksum 0: none, allowed over IPv4).
pub fn udp4(
    dst_mac: Mac,
    src_mac: Mac,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ports: (u16, u16),
    data: &[u8],
) -> Vec<u8> {
    let len = 20 + 8 + data.len();
    let mut ip = vec![
        0x45,
        0,
        (len >> 8) as u8,
        len as u8,
        0,
        0,
        0x40,
        0,
        64,
        17,
        0,
        0,
    ];
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    let c = csum(&[&ip]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let ulen = (8 + data.len()) as u16;
    ip.extend_from_slice(&ports.0.to_be_bytes());
    ip.extend_from_slice(&ports.1.to_be_bytes());
    ip.extend_from_slice(&ulen.to_be_bytes());
    ip.extend_from_slice(&[0, 0]);
    ip.extend_from_slice(data);
    eth(dst_mac, src_mac, ETH_IP, &ip)
}

/// An IPv6 frame (hop limit 255, as ND requires) carrying `l4` of protocol
/// `next`, whose checksum (at `csum_at` in `l4`) is filled in.
fn ip6(
    dst_mac: Mac,
    src_mac: Mac,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next: u8,
    mut l4: Vec<u8>,
    csum_at: usize,
) -> Vec<u8> {
    let len = (l4.len() as u32).to_be_bytes();
    let pseudo = [
        &src.octets()[..],
        &dst.octets()[..],
        &len[..],
        &[0, 0, 0, next][..],
    ];
    let c = csum(&[pseudo.concat().as_slice(), &l4]);
    l4[csum_at..csum_at + 2].copy_from_slice(&c.to_be_bytes());
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(l4.len() as u16).to_be_bytes());
    p.extend_from_slice(&[next, 255]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&l4);
    eth(dst_mac, src_mac, ETH_IP6, &p)
}

/// An ICMPv6 frame: `body` after type, code and checksum.
pub fn icmp6(
    dst_mac: Mac,
    src_mac: Mac,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    ty: u8,
    body: &[u8],
) -> Vec<u8> {
    let mut l4 = vec![ty, 0, 0, 0];
    l4.extend_from_slice(body);
    ip6(dst_mac, src_mac, src, dst, 58, l4, 2)
}

/// An IPv6/UDP frame.
pub fn udp6(
    dst_mac: Mac,
    src_mac: Mac,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    ports: (u16, u16),
    data: &[u8],
) -> Vec<u8> {
    let mut l4 = ports.0.to_be_bytes().to_vec();
    l4.extend_from_slice(&ports.1.to_be_bytes());
    l4.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
    l4.extend_from_slice(&[0, 0]);
    l4.extend_from_slice(data);
    ip6(dst_mac, src_mac, src, dst, 17, l4, 6)
}

/// A router advertisement body: default router for 1800 s, an autonomous
/// on-link /64 `prefix`, the router's link-layer address.
pub fn router_advert(prefix: Ipv6Addr, mac: Mac) -> Vec<u8> {
    let mut b = vec![64, 0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0];
    b.extend_from_slice(&[3, 4, 64, 0xc0]);
    b.extend_from_slice(&86400u32.to_be_bytes());
    b.extend_from_slice(&14400u32.to_be_bytes());
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&prefix.octets());
    b.extend_from_slice(&[1, 1]);
    b.extend_from_slice(&mac);
    b
}

/// A redirect body: "to reach `dest`, go to `target`" (at `mac`).
pub fn redirect(target: Ipv6Addr, dest: Ipv6Addr, mac: Mac) -> Vec<u8> {
    let mut b = vec![0; 4];
    b.extend_from_slice(&target.octets());
    b.extend_from_slice(&dest.octets());
    b.extend_from_slice(&[2, 1]);
    b.extend_from_slice(&mac);
    b
}

/// An unsolicited neighbour advertisement body with the override flag:
/// "`target` is at `mac`".
pub fn neighbour_advert(target: Ipv6Addr, mac: Mac) -> Vec<u8> {
    let mut b = vec![0x20, 0, 0, 0];
    b.extend_from_slice(&target.octets());
    b.extend_from_slice(&[2, 1]);
    b.extend_from_slice(&mac);
    b
}

/// An Ethernet/IPv4 ARP frame from `sha` (also the frame's source).
pub fn arp(dst_mac: Mac, op: u16, sha: Mac, spa: Ipv4Addr, tha: Mac, tpa: Ipv4Addr) -> Vec<u8> {
    let mut p = vec![0, 1, 8, 0, 6, 4];
    p.extend_from_slice(&op.to_be_bytes());
    p.extend_from_slice(&sha);
    p.extend_from_slice(&spa.octets());
    p.extend_from_slice(&tha);
    p.extend_from_slice(&tpa.octets());
    eth(dst_mac, sha, ETH_ARP, &p)
}

/// Sends `frame` as is out of `ifname` inside `ns`. (An AF_PACKET send
/// needs a `sockaddr_ll`, which socket2 cannot build: plain libc.)
#[allow(unsafe_code)]
pub fn send(ns: &Path, ifname: &str, frame: &[u8]) {
    let name = std::ffi::CString::new(ifname).expect("ifname");
    let frame = frame.to_vec();
    let sent = netns::run_in(Some(ns), move || {
        // SAFETY: plain syscalls on a socket this closure owns and closes;
        // `sll` is a zeroed sockaddr_ll filled in field by field.
        unsafe {
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_ifindex = libc::if_nametoindex(name.as_ptr()) as i32;
            sll.sll_halen = 6;
            sll.sll_addr[..6].copy_from_slice(&frame[..6]);
            let n = libc::sendto(
                fd,
                frame.as_ptr().cast(),
                frame.len(),
                0,
                std::ptr::addr_of!(sll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            );
            let e = std::io::Error::last_os_error();
            libc::close(fd);
            if n < 0 {
                Err(e)
            } else {
                Ok(())
            }
        }
    });
    sent.and_then(|r| r)
        .unwrap_or_else(|e| panic!("send a frame out of {ifname}: {e}"));
}

/// Every frame reaching (or leaving) the interfaces of a namespace, from
/// the moment it is opened.
pub struct Sniffer(Socket);

impl Sniffer {
    pub fn open(ns: &Path) -> Sniffer {
        const ETH_P_ALL: u16 = 0x0003;
        let s = netns::run_in(Some(ns), || {
            Socket::new(
                Domain::PACKET,
                Type::RAW,
                Some(Protocol::from(i32::from(ETH_P_ALL.to_be()))),
            )
        })
        .and_then(|s| s)
        .expect("packet socket");
        s.set_read_timeout(Some(Duration::from_millis(20)))
            .expect("timeout");
        s.set_recv_buffer_size(4 << 20).expect("rcvbuf");
        Sniffer(s)
    }

    /// Whether a frame containing `pattern` shows up within `wait`.
    pub fn saw(&self, pattern: &[u8], wait: Duration) -> bool {
        let until = Instant::now() + wait;
        let mut buf = [0u8; 2048];
        while Instant::now() < until {
            if let Ok(n) = (&self.0).read(&mut buf) {
                if buf[..n].windows(pattern.len()).any(|w| w == pattern) {
                    return true;
                }
            }
        }
        false
    }
}
