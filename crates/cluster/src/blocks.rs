//! Cluster IPAM: a node claims address blocks of an overlay network's
//! subnet with an etcd transaction (create-if-absent), then allocates from
//! them locally (the engine's store keeps each address's owner). Held
//! blocks are also kept in `<state-dir>/cluster-blocks.json`, so a restart
//! (even while etcd is down) allocates only from blocks it holds; at start
//! they are asserted again in etcd.
//!
//! Block size: an IPv4 subnet is cut into /26 blocks (a smaller subnet is
//! one block), an IPv6 subnet into /122 blocks: 64 addresses, few enough
//! that a node holds little it does not use, many enough that a claim is
//! rare. A node starts its search at a place given by its name, so nodes
//! creating at once seldom race for the same block; a lost race just moves
//! on to the next block.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use bulkhead_model::Cidr;
use etcd_client::{Compare, CompareOp, Txn, TxnOp};

use crate::error::{ClusterError, Result};
use crate::keys::{self, BlockRecord};
use crate::Shared;

const FILE: &str = "cluster-blocks.json";
/// Most candidate blocks one claim looks at (an IPv6 /64 has 2^58).
const MAX_CANDIDATES: u128 = 4096;

/// The blocks this node holds, by network name.
#[derive(Debug, Default)]
pub struct Held {
    path: PathBuf,
    map: BTreeMap<String, Vec<Cidr>>,
}

impl Held {
    pub fn load(dir: &Path) -> Result<Held> {
        let path = dir.join(FILE);
        let io = |source| ClusterError::File {
            path: path.display().to_string(),
            source,
        };
        let map = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(io(e)),
        };
        Ok(Held { path, map })
    }

    /// Writes the file (temporary file, fsync, rename).
    fn save(&self) -> Result<()> {
        let io = |source| ClusterError::File {
            path: self.path.display().to_string(),
            source,
        };
        let tmp = self.path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(&self.map).unwrap_or_default();
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).map_err(io)?;
            f.write_all(&bytes).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, &self.path).map_err(io)
    }

    /// Remembers that `network` is a cluster network here (with no block
    /// yet): a re-list that no longer finds it in etcd removes it locally.
    pub fn track(&mut self, network: &str) -> Result<()> {
        if self.map.contains_key(network) {
            return Ok(());
        }
        self.map.insert(network.to_owned(), Vec::new());
        self.save()
    }

    /// Whether `network` is a cluster network here ([`Held::track`]).
    pub fn tracks(&self, network: &str) -> bool {
        self.map.contains_key(network)
    }

    pub fn of(&self, network: &str) -> Vec<Cidr> {
        self.map.get(network).cloned().unwrap_or_default()
    }

    pub fn all(&self) -> Vec<(String, Cidr)> {
        self.map
            .iter()
            .flat_map(|(n, v)| v.iter().map(move |b| (n.clone(), *b)))
            .collect()
    }

    pub fn add(&mut self, network: &str, block: Cidr) -> Result<()> {
        let v = self.map.entry(network.to_owned()).or_default();
        if !v.contains(&block) {
            v.push(block);
            v.sort();
        }
        self.save()
    }

    pub fn remove(&mut self, network: &str, block: Option<Cidr>) -> Result<()> {
        match block {
            Some(b) => {
                if let Some(v) = self.map.get_mut(network) {
                    v.retain(|x| *x != b);
                }
            }
            None => {
                self.map.remove(network);
            }
        }
        self.save()
    }
}

/// The block prefix length for `subnet`.
pub fn block_prefix(subnet: &Cidr) -> u8 {
    subnet.prefix().max(if subnet.is_ipv4() { 26 } else { 122 })
}

/// The `i`-th block of `subnet`.
fn nth_block(subnet: &Cidr, i: u128) -> Cidr {
    let p = block_prefix(subnet);
    let (bits, base) = match subnet.network() {
        IpAddr::V4(a) => (32u32, u128::from(u32::from(a))),
        IpAddr::V6(a) => (128, u128::from(a)),
    };
    let addr = base + (i << (bits - u32::from(p)));
    let ip = if bits == 32 {
        IpAddr::V4((addr as u32).into())
    } else {
        IpAddr::V6(addr.into())
    };
    Cidr::new(ip, p)
}

fn block_count(subnet: &Cidr) -> u128 {
    let n = u32::from(block_prefix(subnet) - subnet.prefix());
    if n >= 127 {
        u128::MAX
    } else {
        1u128 << n
    }
}

/// A stable start for `node`'s search (FNV-1a of its name).
fn start_of(node: &str, count: u128) -> u128 {
    let h = node.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    u128::from(h) % count
}

/// Claims a block of `network` (the one holding `containing`, if given)
/// for this node, in etcd first, then in the held-blocks file.
pub async fn claim(
    shared: &Shared,
    network: &str,
    subnet: Cidr,
    containing: Option<IpAddr>,
) -> Result<()> {
    let count = block_count(&subnet);
    let candidates: Vec<Cidr> = match containing {
        Some(ip) => {
            let p = block_prefix(&subnet);
            vec![Cidr::new(ip, p)]
        }
        None => {
            let start = start_of(shared.me(), count);
            (0..count.min(MAX_CANDIDATES))
                .map(|i| nth_block(&subnet, (start + i) % count))
                .collect()
        }
    };
    let taken: Vec<Cidr> = shared
        .cache()
        .blocks
        .get(network)
        .map(|m| m.keys().copied().collect())
        .unwrap_or_default();
    let record = serde_json::to_vec(&BlockRecord {
        node: shared.me().to_owned(),
    })
    .unwrap_or_default();
    let mut kv = shared.kv();
    for block in candidates.into_iter().filter(|b| !taken.contains(b)) {
        let key = keys::block(network, &block);
        let txn = Txn::new()
            .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, record.clone(), None)]);
        let won = kv
            .txn(txn)
            .await
            .map_err(|e| shared.config.etcd_error(e))?
            .succeeded();
        if won {
            tracing::info!(network, %block, "claimed an address block");
            return shared.held().add(network, block);
        }
        if containing.is_some() {
            break;
        }
    }
    Err(ClusterError::Conflict(match containing {
        Some(ip) => format!(
            "ip {ip:?}: its address block of network {network:?} is held by another node; allowed: none (allocate one) or an address of a block this node holds"
        ),
        None => format!("network {network:?}: every address block of {subnet} is held by a node; none is free to claim"),
    }))
}

/// At start: asserts every held block in etcd again (the file is the
/// node's memory; etcd may have lost the claim, e.g. after `node rm`).
/// A block another node took meanwhile is dropped, loudly.
pub async fn reassert(shared: &Shared) -> Result<()> {
    let held = shared.held().all();
    let me = serde_json::to_vec(&BlockRecord {
        node: shared.me().to_owned(),
    })
    .unwrap_or_default();
    let mut kv = shared.kv();
    for (network, block) in held {
        let key = keys::block(&network, &block);
        let txn = Txn::new()
            .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key.clone(), me.clone(), None)])
            .or_else([TxnOp::get(key, None)]);
        let resp = kv.txn(txn).await.map_err(|e| shared.config.etcd_error(e))?;
        if resp.succeeded() {
            continue;
        }
        let holder = resp.op_responses().into_iter().find_map(|r| match r {
            etcd_client::TxnOpResponse::Get(g) => g
                .kvs()
                .first()
                .and_then(|kv| serde_json::from_slice::<BlockRecord>(kv.value()).ok()),
            _ => None,
        });
        if let Some(h) = holder.filter(|h| h.node != shared.me()) {
            tracing::error!(%network, %block, holder = %h.node, "a block this node held was claimed by another node while it was removed; this node allocates from it no more");
            shared.held().remove(&network, Some(block))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_cut_the_subnet() {
        let s = Cidr::parse("s", "10.6.0.0/24").expect("cidr");
        assert_eq!(block_count(&s), 4);
        assert_eq!(nth_block(&s, 3).to_string(), "10.6.0.192/26");
        let small = Cidr::parse("s", "10.6.0.0/28").expect("cidr");
        assert_eq!(block_count(&small), 1);
        assert_eq!(nth_block(&small, 0).to_string(), "10.6.0.0/28");
        let v6 = Cidr::parse("s", "fd00:6::/64").expect("cidr");
        assert_eq!(nth_block(&v6, 1).to_string(), "fd00:6::40/122");
        assert!(start_of("h1", 4) < 4);
    }
}
