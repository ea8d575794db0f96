//! This node's registration: a lease of `--node-ttl`, the lease-bound
//! `alive/<node>` key, and the lease-free `nodes/<node>` record whose
//! `last_seen` is refreshed with every keepalive. Keepalives go every
//! third of the TTL. When etcd is unreachable the loop retries every
//! second; once the lease has expired meanwhile, a new one is granted and
//! the publisher republishes (the node is `ready` again). The same loop
//! removes nodes lost longer than `--lost-node-grace`.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::PutOptions;

use crate::error::Result;
use crate::keys::{self, NodeRecord};
use crate::Shared;

/// Keeps this node registered, for as long as the daemon runs.
pub async fn keep(shared: Arc<Shared>) {
    let mut announced = false;
    loop {
        if let Err(e) = session(&shared, &mut announced).await {
            tracing::warn!(error = %e, "cluster lease lost or etcd unreachable; retrying");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn record(shared: &Shared) -> Vec<u8> {
    serde_json::to_vec(&NodeRecord {
        name: shared.me().to_owned(),
        underlay: shared.config.underlay,
        last_seen_ms: keys::now_ms(),
    })
    .unwrap_or_default()
}

/// One lease's life: grant, register, keep alive until it fails.
async fn session(shared: &Arc<Shared>, announced: &mut bool) -> Result<()> {
    let err = |e| shared.config.etcd_error(e);
    let ttl = shared.config.node_ttl.as_secs().max(2) as i64;
    let mut lease = shared.client.lease_client();
    let id = lease.grant(ttl, None).await.map_err(err)?.id();
    let mut kv = shared.kv();
    kv.put(keys::node(shared.me()), record(shared), None)
        .await
        .map_err(err)?;
    kv.put(
        keys::alive(shared.me()),
        record(shared),
        Some(PutOptions::new().with_lease(id)),
    )
    .await
    .map_err(err)?;
    // Every registration, not only the first: a node removed while it was
    // cut off from etcd comes back holding blocks etcd no longer records.
    crate::blocks::reassert(shared).await?;
    *announced = true;
    tracing::info!(node = %shared.me(), lease = id, ttl, "registered: ready");
    // A new lease may follow an expired one: publish what etcd may lack.
    shared.wake.notify_one();
    let (mut keeper, mut stream) = lease.keep_alive(id).await.map_err(err)?;
    let period = Duration::from_millis((ttl as u64 * 1000) / 3);
    loop {
        tokio::time::sleep(period).await;
        keeper.keep_alive().await.map_err(err)?;
        match stream.message().await.map_err(err)? {
            Some(r) if r.ttl() > 0 => {}
            _ => {
                tracing::warn!(node = %shared.me(), "the node's lease expired; registering again");
                return Ok(());
            }
        }
        kv.put(keys::node(shared.me()), record(shared), None)
            .await
            .map_err(err)?;
        if let Some(grace) = shared.config.lost_node_grace {
            remove_expired(shared, grace).await;
        }
    }
}

/// Removes nodes lost for longer than `grace`.
async fn remove_expired(shared: &Shared, grace: Duration) {
    let now = keys::now_ms();
    let expired: Vec<String> = {
        let c = shared.cache();
        c.nodes
            .values()
            .filter(|n| !c.alive.contains(&n.name))
            .filter(|n| now.saturating_sub(n.last_seen_ms) > grace.as_millis() as u64)
            .map(|n| n.name.clone())
            .collect()
    };
    for name in expired {
        match crate::ops::remove_node(shared, &name).await {
            Ok(()) => {
                tracing::warn!(node = %name, ?grace, "removed a node lost longer than --lost-node-grace")
            }
            Err(e) => tracing::warn!(node = %name, error = %e, "could not remove a lost node"),
        }
    }
}
