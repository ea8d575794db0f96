//! This node's mirror of everything under the key prefix, kept by the
//! watch ([`crate::watch`]): nodes, alive marks, networks, blocks and
//! published endpoints, typed and indexed by network. Every change reports
//! what it touched ([`Touched`]), so the watcher reprograms only the
//! networks whose remote endpoints changed.

use std::collections::{BTreeMap, BTreeSet};

use bulkhead_dataplane::kernel::RemoteEndpoint;
use bulkhead_model::{Cidr, MacAddress, NetworkSpec};

use crate::keys::{BlockRecord, EndpointEntry, Key, NodeRecord};

/// The mirror.
#[derive(Debug, Default)]
pub struct Cache {
    pub nodes: BTreeMap<String, NodeRecord>,
    pub alive: BTreeSet<String>,
    pub networks: BTreeMap<String, NetworkSpec>,
    /// network → block → holder.
    pub blocks: BTreeMap<String, BTreeMap<Cidr, String>>,
    /// network → key → entry.
    pub endpoints: BTreeMap<String, BTreeMap<String, EndpointEntry>>,
}

/// What a change touched.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Touched {
    /// Networks whose published endpoints changed.
    pub peers: BTreeSet<String>,
    /// Networks whose definition appeared, changed or went.
    pub networks: BTreeSet<String>,
    /// Nodes whose record or liveness changed.
    pub nodes: BTreeSet<String>,
    /// A fresh listing: every local overlay network is to be synced (one
    /// whose remote endpoints all went while the watch was down too).
    pub all_peers: bool,
}

fn decode<T: serde::de::DeserializeOwned>(key: &[u8], value: &[u8]) -> Option<T> {
    match serde_json::from_slice(value) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(key = %String::from_utf8_lossy(key), error = %e, "undecodable cluster value; ignored");
            None
        }
    }
}

impl Cache {
    /// Applies a put.
    pub fn put(&mut self, key: &[u8], value: &[u8], t: &mut Touched) {
        let Some(parsed) = Key::parse(key) else {
            return;
        };
        match parsed {
            Key::Node(n) => {
                if let Some(r) = decode::<NodeRecord>(key, value) {
                    self.nodes.insert(n.clone(), r);
                    t.nodes.insert(n);
                }
            }
            Key::Alive(n) => {
                self.alive.insert(n.clone());
                t.nodes.insert(n);
            }
            Key::Network(n) => {
                if let Some(spec) = decode::<NetworkSpec>(key, value) {
                    self.networks.insert(n.clone(), spec);
                    t.networks.insert(n);
                }
            }
            Key::Block { network, block } => {
                if let Some(r) = decode::<BlockRecord>(key, value) {
                    self.blocks
                        .entry(network)
                        .or_default()
                        .insert(block, r.node);
                }
            }
            Key::Endpoint { network, .. } => {
                if let Some(e) = decode::<EndpointEntry>(key, value) {
                    let k = String::from_utf8_lossy(key).into_owned();
                    self.endpoints
                        .entry(network.clone())
                        .or_default()
                        .insert(k, e);
                    t.peers.insert(network);
                }
            }
        }
    }

    /// Applies a delete.
    pub fn delete(&mut self, key: &[u8], t: &mut Touched) {
        let Some(parsed) = Key::parse(key) else {
            return;
        };
        match parsed {
            Key::Node(n) => {
                self.nodes.remove(&n);
                t.nodes.insert(n);
            }
            Key::Alive(n) => {
                self.alive.remove(&n);
                t.nodes.insert(n);
            }
            Key::Network(n) => {
                self.networks.remove(&n);
                t.networks.insert(n);
            }
            Key::Block { network, block } => {
                if let Some(m) = self.blocks.get_mut(&network) {
                    m.remove(&block);
                }
            }
            Key::Endpoint { network, .. } => {
                let k = String::from_utf8_lossy(key);
                if let Some(m) = self.endpoints.get_mut(&network) {
                    if m.remove(k.as_ref()).is_some() {
                        t.peers.insert(network);
                    }
                }
            }
        }
    }

    /// Replaces everything with a fresh listing (after a compaction or a
    /// reconnect); touches every network and node old or new.
    pub fn replace<'a>(&mut self, kvs: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Touched {
        let mut t = Touched {
            all_peers: true,
            ..Touched::default()
        };
        t.peers.extend(self.endpoints.keys().cloned());
        t.networks.extend(self.networks.keys().cloned());
        t.nodes.extend(self.nodes.keys().cloned());
        *self = Cache::default();
        for (k, v) in kvs {
            self.put(k, v, &mut t);
        }
        t
    }

    /// Endpoints of `network` published by nodes other than `me`.
    pub fn remote_endpoints(&self, network: &str, me: &str) -> Vec<RemoteEndpoint> {
        let Some(m) = self.endpoints.get(network) else {
            return vec![];
        };
        m.values()
            .filter(|e| e.node != me)
            .filter_map(|e| {
                Some(RemoteEndpoint {
                    ip: e.ip,
                    mac: MacAddress::parse("mac", &e.mac).ok()?.0,
                    host: e.vtep,
                })
            })
            .collect()
    }

    /// How many endpoints `node` has published.
    pub fn endpoint_count(&self, node: &str) -> usize {
        self.endpoints
            .values()
            .flat_map(|m| m.values())
            .filter(|e| e.node == node)
            .count()
    }

    /// The blocks `node` holds, by network.
    pub fn blocks_of(&self, node: &str) -> Vec<(String, Cidr)> {
        self.blocks
            .iter()
            .flat_map(|(n, m)| {
                m.iter()
                    .filter(|(_, holder)| holder.as_str() == node)
                    .map(move |(b, _)| (n.clone(), *b))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys;

    fn entry(node: &str, ip: &str) -> (String, Vec<u8>) {
        let e = EndpointEntry {
            name: format!("e{ip}"),
            network: "ov".into(),
            ip: ip.parse().expect("ip"),
            mac: "02:00:00:00:00:07".into(),
            node: node.into(),
            vtep: "192.0.2.1".parse().expect("vtep"),
        };
        (
            keys::endpoint(node, "ov", e.ip),
            serde_json::to_vec(&e).expect("json"),
        )
    }

    #[test]
    fn remote_endpoints_exclude_this_node_and_deletes_touch_their_network() {
        let mut c = Cache::default();
        let mut t = Touched::default();
        let (k1, v1) = entry("h1", "10.5.0.2");
        let (k2, v2) = entry("h2", "10.5.0.3");
        c.put(k1.as_bytes(), &v1, &mut t);
        c.put(k2.as_bytes(), &v2, &mut t);
        assert_eq!(t.peers, BTreeSet::from(["ov".to_owned()]));
        let remote = c.remote_endpoints("ov", "h1");
        assert_eq!(remote.len(), 1);
        assert_eq!(remote[0].ip.to_string(), "10.5.0.3");
        assert_eq!(c.endpoint_count("h2"), 1);
        let mut t = Touched::default();
        c.delete(k2.as_bytes(), &mut t);
        assert!(t.peers.contains("ov"));
        assert!(c.remote_endpoints("ov", "h1").is_empty());
        let t = c.replace(std::iter::empty());
        assert!(t.peers.contains("ov"), "a re-list touches what it dropped");
    }
}
