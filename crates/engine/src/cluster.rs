//! Hooks a cluster control plane (the `bulkhead-cluster` crate, on etcd)
//! gives the engine, so the engine stays free of I/O to other hosts.
//!
//! Contract:
//! - [`ClusterHooks::endpoints_changed`] is called after an endpoint of an
//!   overlay network was created or deleted here, with the engine lock
//!   released; it must not block (the control plane publishes later).
//! - [`ClusterHooks::address_blocks`] answers, without I/O, which address
//!   blocks of an overlay network this node may allocate from (`None`: the
//!   network is not a cluster network, the whole subnet is this host's).
//! - When no held block has a free address (or a requested address lies in
//!   no held block), the engine releases its lock, asks
//!   [`ClusterHooks::claim_block`] for one more block (an etcd round trip),
//!   and tries once more. The engine lock is never held across that call.

use std::net::IpAddr;

use bulkhead_model::{Cidr, Network};
use bulkhead_store::{Reader, StoreExt};

use crate::error::Result;
use crate::Engine;

/// What the engine asks of a cluster control plane.
pub trait ClusterHooks: Send + Sync + std::fmt::Debug {
    /// Local endpoints of overlay network `network` changed.
    fn endpoints_changed(&self, network: &Network);
    /// The address blocks this node holds in `network` (`None`: allocate
    /// from the whole subnet, as a host without a cluster does).
    fn address_blocks(&self, network: &Network) -> Option<Vec<Cidr>>;
    /// Claims one more block of `network` for this node (the one holding
    /// `containing` if given). `seen`: how many blocks the caller found
    /// full; when the node holds more by now (a concurrent create claimed
    /// one), there is nothing to claim. Blocking; called without the
    /// engine lock.
    fn claim_block(&self, network: &Network, containing: Option<IpAddr>, seen: usize)
        -> Result<()>;
}

/// Claims one create makes before it gives up.
const CLAIM_ATTEMPTS: usize = 4;

/// The outcome of looking for an address in the held blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BlockPick {
    /// Not a cluster network: the store's IPAM picks (or checks `ip`).
    Anywhere,
    /// This address is free in a held block.
    Free(IpAddr),
    /// No held block (of this many) can serve: claim one (holding this
    /// address, if given).
    NeedBlock(Option<IpAddr>, usize),
}

/// The `i`-th address of `block` (no overflow: callers stay inside it).
fn nth(block: &Cidr, i: u128) -> IpAddr {
    match block.network() {
        IpAddr::V4(a) => IpAddr::V4((u32::from(a).wrapping_add(i as u32)).into()),
        IpAddr::V6(a) => IpAddr::V6((u128::from(a).wrapping_add(i)).into()),
    }
}

fn block_size(block: &Cidr) -> u128 {
    let bits = if block.is_ipv4() { 32 } else { 128 };
    // Blocks are small (a /26 by default); a larger one is scanned only in
    // its first 2^16 addresses.
    1u128 << (bits - u32::from(block.prefix())).min(16)
}

impl Engine {
    /// Installs the cluster hooks (once; a second call is refused).
    pub fn set_cluster_hooks(&self, hooks: std::sync::Arc<dyn ClusterHooks>) -> bool {
        self.cluster.set(hooks).is_ok()
    }

    pub(crate) fn notify_cluster(&self, network: &Network) {
        if network.driver == bulkhead_model::Driver::Overlay {
            if let Some(h) = self.cluster.get() {
                h.endpoints_changed(network);
            }
        }
    }

    /// Picks an address for a new endpoint of `network` from the blocks this
    /// node holds (under the engine lock: the store has one writer, this
    /// engine, so what is free now is free at the allocation that follows).
    pub(crate) fn pick_in_blocks(
        &self,
        network: &Network,
        requested: Option<IpAddr>,
    ) -> Result<BlockPick> {
        let Some(blocks) = self.cluster.get().and_then(|h| h.address_blocks(network)) else {
            return Ok(BlockPick::Anywhere);
        };
        if let Some(ip) = requested {
            return Ok(if blocks.iter().any(|b| b.contains(ip)) {
                BlockPick::Free(ip)
            } else {
                BlockPick::NeedBlock(Some(ip), blocks.len())
            });
        }
        let key = network.id.to_string();
        let taken: std::collections::BTreeSet<IpAddr> = self
            .store
            .read(|r| r.allocations(&key))?
            .into_iter()
            .map(|a| a.ip)
            .collect();
        let subnet = network.subnets[0];
        let reserved = |ip: IpAddr| {
            ip == subnet.network()
                || (subnet.is_ipv4() && ip == subnet.last())
                || Some(ip) == network.gateway
        };
        for block in &blocks {
            for i in 0..block_size(block) {
                let ip = nth(block, i);
                if subnet.contains(ip) && !reserved(ip) && !taken.contains(&ip) {
                    return Ok(BlockPick::Free(ip));
                }
            }
        }
        Ok(BlockPick::NeedBlock(None, blocks.len()))
    }

    /// Asks the control plane for a block (engine lock not held).
    pub(crate) fn claim_block(
        &self,
        network: &Network,
        containing: Option<IpAddr>,
        seen: usize,
    ) -> Result<()> {
        match self.cluster.get() {
            Some(h) => h.claim_block(network, containing, seen),
            None => Ok(()),
        }
    }
}

impl Engine {
    /// Creates an endpoint (see [`Engine::create_endpoint_in`]); in a
    /// cluster network, claims an address block when none it holds can
    /// serve, then tries again (a few times: concurrent creates may fill
    /// the new block first).
    pub fn create_endpoint(
        &self,
        spec: bulkhead_model::EndpointSpec,
    ) -> Result<bulkhead_model::Endpoint> {
        let mut need = match self.create_endpoint_in(spec.clone())? {
            Ok(e) => return self.created(e),
            Err(need) => need,
        };
        let network = self.network(&spec.network)?;
        for _ in 0..CLAIM_ATTEMPTS {
            self.claim_block(&network, need.0, need.1)?;
            need = match self.create_endpoint_in(spec.clone())? {
                Ok(e) => return self.created(e),
                Err(need) => need,
            };
        }
        Err(crate::EngineError::Conflict(format!(
            "ip {:?}: no address block of network {:?} this node holds or can claim has it free",
            need.0
                .map_or_else(|| "(none)".to_owned(), |ip| ip.to_string()),
            network.name.as_str()
        )))
    }

    fn created(&self, e: bulkhead_model::Endpoint) -> Result<bulkhead_model::Endpoint> {
        if let Some(n) = self.network_by_id(e.network) {
            self.notify_cluster(&n);
        }
        Ok(e)
    }

    /// Deletes an endpoint (see [`Engine::delete_endpoint_in`]) and tells
    /// the cluster control plane.
    pub fn delete_endpoint(&self, name: &str) -> Result<()> {
        let network = self
            .endpoint(name)
            .ok()
            .and_then(|r| self.network_by_id(r.network));
        let out = self.delete_endpoint_in(name);
        if let Some(n) = network {
            self.notify_cluster(&n);
        }
        out
    }

    fn network_by_id(&self, id: bulkhead_model::Id) -> Option<Network> {
        self.lock().state.networks.get(&id).cloned()
    }
}
