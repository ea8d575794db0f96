//! Cluster operations the daemon's API calls (blocking: they run on the
//! API's blocking threads and wait for etcd on the runtime), and the
//! watch's handling of network objects.
//!
//! - An overlay network is created locally first (all local checks), then
//!   claimed in etcd (create-if-absent); if etcd refuses or is down, the
//!   local network is removed again. Other nodes create it from the watch.
//! - A network is removed from etcd only while no node has published an
//!   endpoint on it; each node then removes it locally from the watch.
//! - `node rm` removes a node only while its lease is gone (etcd
//!   transaction guarded on `alive/<node>`): its endpoints, blocks and
//!   record go in one transaction.

use std::net::IpAddr;

use bulkhead_model::{Driver, NetworkSpec};
use etcd_client::{Compare, CompareOp, DeleteOptions, GetOptions, Txn, TxnOp};

use crate::cache::{Cache, Touched};
use crate::error::{ClusterError, Result};
use crate::keys::{self, EndpointEntry, PREFIX};
use crate::{Cluster, Shared};

/// A node as `node ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    pub name: String,
    pub underlay: IpAddr,
    /// `ready` or `lost`.
    pub state: &'static str,
    pub endpoints: usize,
    pub last_seen_ms: u64,
}

/// A fresh mirror of everything (one etcd range read).
async fn fresh(shared: &Shared) -> Result<Cache> {
    let resp = shared
        .kv()
        .get(PREFIX, Some(GetOptions::new().with_prefix()))
        .await
        .map_err(|e| shared.config.etcd_error(e))?;
    let mut c = Cache::default();
    let mut t = Touched::default();
    for kv in resp.kvs() {
        c.put(kv.key(), kv.value(), &mut t);
    }
    Ok(c)
}

/// Removes `name` if it is not ready (see the module doc).
pub(crate) async fn remove_node(shared: &Shared, name: &str) -> Result<()> {
    let c = fresh(shared).await?;
    if c.alive.contains(name) {
        return Err(ClusterError::Conflict(format!(
            "node {name:?} is ready (its lease is live); only a lost node can be removed"
        )));
    }
    if !c.nodes.contains_key(name) {
        return Err(ClusterError::Conflict(format!(
            "node {name:?}: no such node in the cluster"
        )));
    }
    let mut ops = vec![
        TxnOp::delete(keys::node(name), None),
        TxnOp::delete(
            keys::endpoints_of(name),
            Some(DeleteOptions::new().with_prefix()),
        ),
    ];
    ops.extend(
        c.blocks_of(name)
            .iter()
            .map(|(n, b)| TxnOp::delete(keys::block(n, b), None)),
    );
    // etcd limits a transaction's operations (128 by default).
    for chunk in ops.chunks(100) {
        let txn = Txn::new()
            .when([Compare::create_revision(
                keys::alive(name),
                CompareOp::Equal,
                0,
            )])
            .and_then(chunk.to_vec());
        let ok = shared
            .kv()
            .txn(txn)
            .await
            .map_err(|e| shared.config.etcd_error(e))?
            .succeeded();
        if !ok {
            return Err(ClusterError::Conflict(format!(
                "node {name:?} came back (ready) while it was being removed"
            )));
        }
    }
    Ok(())
}

/// Creates or removes local network `name` after its cluster object changed.
fn track(shared: &Shared, name: &str) {
    if let Err(e) = shared.held().track(name) {
        tracing::warn!(network = %name, error = %e, "could not remember a cluster network");
    }
}

pub(crate) fn follow_network(shared: &Shared, name: &str) {
    let spec = shared.cache().networks.get(name).cloned();
    let local = shared.engine.network(name).ok();
    match (spec, local) {
        (Some(spec), None) => match shared.engine.create_network(spec) {
            Ok(_) => {
                tracing::info!(network = %name, "created a cluster network");
                track(shared, name);
            }
            Err(e) => {
                tracing::error!(network = %name, error = %e, "cannot create a cluster network here")
            }
        },
        (Some(_), Some(_)) => track(shared, name),
        (None, Some(n)) if n.driver == Driver::Overlay => {
            if let Err(e) = shared.engine.delete_network(name) {
                tracing::warn!(network = %name, error = %e, "cluster network removed, but not here");
            }
            if let Err(e) = shared.held().remove(name, None) {
                tracing::warn!(network = %name, error = %e, "could not forget its blocks");
            }
        }
        _ => {}
    }
}

impl Cluster {
    fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(
            std::sync::Arc<Shared>,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>,
    ) -> T {
        let s = self.shared.clone();
        self.shared.block_on(f(s))
    }

    /// Creates an overlay network here and claims it in the cluster.
    pub fn create_network(
        &self,
        spec: NetworkSpec,
    ) -> bulkhead_engine::Result<bulkhead_model::Network> {
        let network = self.shared.engine.create_network(spec.clone())?;
        let value = serde_json::to_vec(&spec).unwrap_or_default();
        let name = spec.name.clone();
        let out = self.run(move |s| {
            Box::pin(async move {
                let key = keys::network(&name);
                let txn = Txn::new()
                    .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
                    .and_then([TxnOp::put(key.clone(), value, None)])
                    .or_else([TxnOp::get(key, None)]);
                let resp = s.kv().txn(txn).await.map_err(|e| s.config.etcd_error(e))?;
                if resp.succeeded() {
                    return Ok(());
                }
                Err(ClusterError::Conflict(format!(
                    "network {name:?} already exists in the cluster; use another name"
                )))
            })
        });
        if let Err(e) = out {
            if let Err(u) = self.shared.engine.delete_network(network.name.as_str()) {
                tracing::warn!(network = %network.name, error = %u, "undo of a local network failed");
            }
            return Err(e.into());
        }
        Ok(network)
    }

    /// Removes a cluster network (refused while any node has endpoints on it).
    pub fn delete_network(&self, name: &str) -> bulkhead_engine::Result<()> {
        let local = self.shared.engine.network(name)?;
        if local.driver != Driver::Overlay {
            return self.shared.engine.delete_network(name);
        }
        let n = name.to_owned();
        self.run(move |s| {
            Box::pin(async move {
                let c = fresh(&s).await?;
                let mut users: Vec<String> = c
                    .endpoints
                    .get(&n)
                    .into_iter()
                    .flat_map(|m| m.values())
                    .map(|e| e.node.clone())
                    .collect();
                users.dedup();
                if !users.is_empty() {
                    return Err(ClusterError::Conflict(format!(
                        "network {n:?} still has endpoints on node(s) {}; remove them first",
                        users.join(", ")
                    )));
                }
                let txn = Txn::new().and_then([
                    TxnOp::delete(keys::network(&n), None),
                    TxnOp::delete(
                        keys::blocks_of(&n),
                        Some(DeleteOptions::new().with_prefix()),
                    ),
                ]);
                s.kv().txn(txn).await.map_err(|e| s.config.etcd_error(e))?;
                Ok(())
            })
        })?;
        self.shared.held().remove(name, None)?;
        match self.shared.engine.delete_network(name) {
            Err(bulkhead_engine::EngineError::NotFound { .. }) => Ok(()),
            other => other,
        }
    }

    /// Every node, with its state and published endpoint count.
    pub fn nodes(&self) -> bulkhead_engine::Result<Vec<NodeStatus>> {
        let c = self.run(|s| Box::pin(async move { fresh(&s).await }))?;
        Ok(c.nodes
            .values()
            .map(|n| NodeStatus {
                name: n.name.clone(),
                underlay: n.underlay,
                state: if c.alive.contains(&n.name) {
                    "ready"
                } else {
                    "lost"
                },
                endpoints: c.endpoint_count(&n.name),
                last_seen_ms: n.last_seen_ms,
            })
            .collect())
    }

    /// Removes a node that is not ready.
    pub fn remove_node(&self, name: &str) -> bulkhead_engine::Result<()> {
        let n = name.to_owned();
        Ok(self.run(move |s| Box::pin(async move { remove_node(&s, &n).await }))?)
    }

    /// Every published endpoint of other nodes.
    pub fn remote_endpoints(&self) -> bulkhead_engine::Result<Vec<EndpointEntry>> {
        let c = self.run(|s| Box::pin(async move { fresh(&s).await }))?;
        let me = self.shared.me();
        Ok(c.endpoints
            .values()
            .flat_map(|m| m.values())
            .filter(|e| e.node != me)
            .cloned()
            .collect())
    }
}
