//! Publication of this node's endpoints of overlay networks (and of its
//! overlay networks, which are cluster objects): the wanted set is read
//! from the engine, diffed against what etcd holds for this node, and only
//! the difference is written, in transactions of at most [`CHUNK`]
//! operations (etcd's default limit is 128). The publisher runs when the
//! engine reports a change, when the lease is (re)granted, and every
//! [`RESYNC`] besides; after a failure (etcd down) it retries each second,
//! so what was created meanwhile is published when etcd returns.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bulkhead_model::Driver;
use etcd_client::{Compare, CompareOp, GetOptions, Txn, TxnOp};

use crate::error::{ClusterError, Result};
use crate::keys::{self, EndpointEntry};
use crate::Shared;

const CHUNK: usize = 100;
const RESYNC: Duration = Duration::from_secs(5);

/// Publishes until the daemon stops.
pub async fn run(shared: Arc<Shared>) {
    // What etcd holds for this node (`None`: unknown, list it first).
    let mut published: Option<BTreeMap<String, Vec<u8>>> = None;
    loop {
        match once(&shared, &mut published).await {
            Ok(()) => {
                let _ = tokio::time::timeout(RESYNC, shared.wake.notified()).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not publish endpoints; retrying");
                published = None;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// This node's wanted keys: every endpoint of every overlay network.
fn wanted(shared: &Shared) -> BTreeMap<String, Vec<u8>> {
    let engine = &shared.engine;
    let networks: BTreeMap<_, _> = engine
        .networks()
        .into_iter()
        .filter(|n| n.driver == Driver::Overlay)
        .map(|n| (n.id, n.name.to_string()))
        .collect();
    engine
        .endpoints()
        .into_iter()
        .filter_map(|e| {
            let network = networks.get(&e.network)?;
            let entry = EndpointEntry {
                name: e.name.to_string(),
                network: network.clone(),
                ip: e.ip_address.addr,
                mac: e.mac_address.to_string(),
                node: shared.me().to_owned(),
                vtep: shared.config.underlay,
            };
            Some((
                keys::endpoint(shared.me(), network, entry.ip),
                serde_json::to_vec(&entry).unwrap_or_default(),
            ))
        })
        .collect()
}

async fn once(
    shared: &Arc<Shared>,
    published: &mut Option<BTreeMap<String, Vec<u8>>>,
) -> Result<()> {
    let err = |e| shared.config.etcd_error(e);
    let mut kv = shared.kv();
    if published.is_none() {
        let resp = kv
            .get(
                keys::endpoints_of(shared.me()),
                Some(GetOptions::new().with_prefix()),
            )
            .await
            .map_err(err)?;
        *published = Some(
            resp.kvs()
                .iter()
                .map(|kv| {
                    (
                        String::from_utf8_lossy(kv.key()).into_owned(),
                        kv.value().to_vec(),
                    )
                })
                .collect(),
        );
    }
    let s = shared.clone();
    // A failed read must not look like "no endpoints": that would withdraw them all.
    let want = tokio::task::spawn_blocking(move || wanted(&s))
        .await
        .map_err(|e| ClusterError::Conflict(format!("reading the engine's endpoints: {e}")))?;
    let have = published.get_or_insert_with(BTreeMap::new);
    let mut ops: Vec<(String, Option<Vec<u8>>)> = Vec::new();
    for (k, v) in &want {
        if have.get(k) != Some(v) {
            ops.push((k.clone(), Some(v.clone())));
        }
    }
    for k in have.keys() {
        if !want.contains_key(k) {
            ops.push((k.clone(), None));
        }
    }
    // Writes go only while this node's record exists: a removed node
    // (`node rm`) must not reappear by a late publish; it registers first.
    let guard = Compare::create_revision(keys::node(shared.me()), CompareOp::Greater, 0);
    for chunk in ops.chunks(CHUNK) {
        let txn = Txn::new().when([guard.clone()]).and_then(
            chunk
                .iter()
                .map(|(k, v)| match v {
                    Some(v) => TxnOp::put(k.clone(), v.clone(), None),
                    None => TxnOp::delete(k.clone(), None),
                })
                .collect::<Vec<_>>(),
        );
        if !kv.txn(txn).await.map_err(err)?.succeeded() {
            tracing::debug!("node not registered yet; publishing after registration");
            *published = None;
            return Ok(());
        }
        for (k, v) in chunk {
            match v {
                Some(v) => have.insert(k.clone(), v.clone()),
                None => have.remove(k),
            };
        }
    }
    if !ops.is_empty() {
        tracing::debug!(changes = ops.len(), "published endpoints");
    }
    Ok(())
}
