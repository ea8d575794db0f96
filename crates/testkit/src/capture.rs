//! Every frame of a namespace: a raw AF_PACKET socket whose frames queue in
//! its buffer until drained, for assertions on L2 headers (which MAC a
//! frame left with, whether a forged frame crossed a switch).

use std::io::Read;
use std::net::Ipv4Addr;
use std::path::Path;

use socket2::{Domain, Protocol, Socket, Type};

use crate::probe::in_ns;

/// One IPv4 frame seen by a [`Capture`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub eth_src: [u8; 6],
    pub eth_dst: [u8; 6],
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub proto: u8,
}

/// A raw AF_PACKET socket (every frame of every interface) in a namespace.
#[derive(Debug)]
pub struct Capture(Socket);

impl Capture {
    pub fn open(ns: &Path) -> Capture {
        const ETH_P_ALL: u16 = 0x0003;
        let s = in_ns(ns, || {
            Socket::new(
                Domain::PACKET,
                Type::RAW,
                Some(Protocol::from(i32::from(ETH_P_ALL.to_be()))),
            )
        })
        .expect("packet socket");
        s.set_nonblocking(true).expect("nonblocking");
        s.set_recv_buffer_size(4 << 20).expect("rcvbuf");
        Capture(s)
    }

    /// Every IPv4 frame seen since the last call.
    pub fn ipv4(&self) -> Vec<Seen> {
        let mut out = Vec::new();
        let mut buf = [0u8; 2048];
        while let Ok(n) = (&self.0).read(&mut buf) {
            let f = &buf[..n];
            if f.len() < 34 || f[12..14] != [0x08, 0x00] {
                continue;
            }
            let mut eth_dst = [0u8; 6];
            let mut eth_src = [0u8; 6];
            eth_dst.copy_from_slice(&f[0..6]);
            eth_src.copy_from_slice(&f[6..12]);
            out.push(Seen {
                eth_src,
                eth_dst,
                proto: f[23],
                src: Ipv4Addr::new(f[26], f[27], f[28], f[29]),
                dst: Ipv4Addr::new(f[30], f[31], f[32], f[33]),
            });
        }
        out
    }
}
