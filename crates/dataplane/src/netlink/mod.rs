//! The netlink core under every family bulkhead speaks (rtnetlink in
//! [`crate::rtnl`], nf_tables in [`crate::nft`], ctnetlink in
//! [`crate::conntrack`], NFLOG and the nf_tables monitor in
//! [`crate::events`]): the shared wire format ([`wire`]), one socket type
//! bound to a namespace with the receive timeout ([`socket`]), and the
//! collection of the kernel's acks and errors for a burst of requests
//! ([`ack`]). The families add only their own numbers, fixed headers,
//! message builders and parsers. Why this is our own code and not the
//! rust-netlink crates: `docs/adr/0005-netlink-core.md`.

pub mod ack;
pub mod socket;
pub mod wire;

pub use ack::{Answer, Collect, Nack};
pub use socket::Socket;
