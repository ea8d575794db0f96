//! The etcd key layout (version 1) and the records stored under it.
//!
//! Everything lives under [`PREFIX`] (`/bulkhead/v1/`); a later layout gets
//! a new prefix, so two versions can share one etcd. Values are JSON.
//!
//! | key | value | lease |
//! |---|---|---|
//! | `nodes/<node>` | [`NodeRecord`] | none: a node stays listed while lost |
//! | `alive/<node>` | [`NodeRecord`] | the node's lease: gone when it expires |
//! | `networks/<network>` | the network's `NetworkSpec` | none |
//! | `blocks/<network>/<addr>_<prefix>` | [`BlockRecord`] | none |
//! | `endpoints/<node>/<network>/<ip>` | [`EndpointEntry`] | none: a crash withdraws nothing |

use std::net::IpAddr;

use bulkhead_model::Cidr;
use serde::{Deserialize, Serialize};

/// The root of every key bulkhead writes.
pub const PREFIX: &str = "/bulkhead/v1/";

pub fn node(name: &str) -> String {
    format!("{PREFIX}nodes/{name}")
}
pub fn alive(name: &str) -> String {
    format!("{PREFIX}alive/{name}")
}
pub fn network(name: &str) -> String {
    format!("{PREFIX}networks/{name}")
}
pub fn blocks_of(network: &str) -> String {
    format!("{PREFIX}blocks/{network}/")
}
pub fn block(network: &str, block: &Cidr) -> String {
    format!(
        "{}{}_{}",
        blocks_of(network),
        block.network(),
        block.prefix()
    )
}
pub fn endpoints_of(node: &str) -> String {
    format!("{PREFIX}endpoints/{node}/")
}
pub fn endpoint(node: &str, network: &str, ip: IpAddr) -> String {
    format!("{}{network}/{ip}", endpoints_of(node))
}

/// A key of the layout, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    Node(String),
    Alive(String),
    Network(String),
    Block { network: String, block: Cidr },
    Endpoint { node: String, network: String },
}

impl Key {
    /// `None` for a key outside the layout (ignored: a newer writer's).
    pub fn parse(key: &[u8]) -> Option<Key> {
        let rest = std::str::from_utf8(key).ok()?.strip_prefix(PREFIX)?;
        let parts: Vec<&str> = rest.split('/').collect();
        Some(match parts.as_slice() {
            ["nodes", n] => Key::Node((*n).to_owned()),
            ["alive", n] => Key::Alive((*n).to_owned()),
            ["networks", n] => Key::Network((*n).to_owned()),
            ["blocks", n, b] => Key::Block {
                network: (*n).to_owned(),
                block: Cidr::parse("block", &b.replacen('_', "/", 1)).ok()?,
            },
            ["endpoints", node, n, _ip] => Key::Endpoint {
                node: (*node).to_owned(),
                network: (*n).to_owned(),
            },
            _ => return None,
        })
    }
}

/// A node: its name and underlay (VTEP) address; `last_seen` is refreshed
/// with every lease keepalive (milliseconds since the Unix epoch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub name: String,
    pub underlay: IpAddr,
    pub last_seen_ms: u64,
}

/// An address block of a network, held by one node until that node is removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRecord {
    pub node: String,
}

/// One published endpoint: what another node needs to reach it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EndpointEntry {
    pub name: String,
    pub network: String,
    pub ip: IpAddr,
    pub mac: String,
    pub node: String,
    /// The VXLAN tunnel endpoint: the node's underlay address.
    pub vtep: IpAddr,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_foreign_keys_are_ignored() {
        assert_eq!(
            Key::parse(node("a").as_bytes()),
            Some(Key::Node("a".into()))
        );
        assert_eq!(
            Key::parse(alive("a").as_bytes()),
            Some(Key::Alive("a".into()))
        );
        let b = Cidr::parse("b", "10.9.0.64/26").expect("cidr");
        assert_eq!(
            Key::parse(block("ov", &b).as_bytes()),
            Some(Key::Block {
                network: "ov".into(),
                block: b
            })
        );
        let ip: IpAddr = "10.9.0.70".parse().expect("ip");
        assert_eq!(
            Key::parse(endpoint("h1", "ov", ip).as_bytes()),
            Some(Key::Endpoint {
                node: "h1".into(),
                network: "ov".into()
            })
        );
        assert_eq!(Key::parse(b"/bulkhead/v2/nodes/a"), None);
        assert_eq!(Key::parse(b"/bulkhead/v1/nodes/a/b"), None);
    }
}
