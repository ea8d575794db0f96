//! The watch: list everything under the prefix, then watch from the next
//! revision; on a compacted or cancelled watch, or a broken connection,
//! list again (the mirror is replaced and every network it held or holds
//! is re-synced, so nothing missed in between survives). Each change is
//! applied in order: networks → created or removed locally, nodes →
//! `ready`/`lost` in the log, remote endpoints → their network queued for
//! [`program`], which calls `Engine::sync_peers` (FDB and neighbour
//! entries, in-process) once per queued network per round.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bulkhead_model::Driver;
use etcd_client::{EventType, GetOptions, WatchOptions};

use crate::cache::Touched;
use crate::error::Result;
use crate::keys::PREFIX;
use crate::Shared;

/// Watches until the daemon stops.
pub async fn run(shared: Arc<Shared>) {
    let mut states = BTreeMap::new();
    loop {
        if let Err(e) = session(&shared, &mut states).await {
            tracing::warn!(error = %e, "cluster watch broke; listing again");
        }
        shared.watching.store(false, Ordering::Release);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn session(shared: &Arc<Shared>, states: &mut BTreeMap<String, bool>) -> Result<()> {
    let err = |e| shared.config.etcd_error(e);
    let resp = shared
        .kv()
        .get(PREFIX, Some(GetOptions::new().with_prefix()))
        .await
        .map_err(err)?;
    let revision = resp.header().map_or(0, |h| h.revision());
    let touched = shared
        .cache()
        .replace(resp.kvs().iter().map(|kv| (kv.key(), kv.value())));
    shared.listed.store(true, Ordering::Release);
    apply(shared, touched, states).await;
    let (_watcher, mut stream) = shared
        .client
        .watch_client()
        .watch(
            PREFIX,
            Some(
                WatchOptions::new()
                    .with_prefix()
                    .with_start_revision(revision + 1),
            ),
        )
        .await
        .map_err(err)?;
    shared.watching.store(true, Ordering::Release);
    tracing::info!(revision, "cluster watch live");
    while let Some(resp) = stream.message().await.map_err(err)? {
        if resp.compact_revision() > 0 || resp.canceled() {
            tracing::warn!(
                compacted = resp.compact_revision(),
                reason = resp.cancel_reason(),
                "cluster watch cancelled; listing again"
            );
            return Ok(());
        }
        let mut t = Touched::default();
        {
            let mut c = shared.cache();
            for ev in resp.events() {
                let Some(kv) = ev.kv() else { continue };
                match ev.event_type() {
                    EventType::Put => c.put(kv.key(), kv.value(), &mut t),
                    EventType::Delete => c.delete(kv.key(), &mut t),
                }
            }
        }
        apply(shared, t, states).await;
    }
    Ok(())
}

/// Acts on what a change touched (engine calls on the blocking pool).
async fn apply(shared: &Arc<Shared>, t: Touched, states: &mut BTreeMap<String, bool>) {
    {
        let c = shared.cache();
        for n in &t.nodes {
            let now = match (c.nodes.get(n), c.alive.contains(n)) {
                (_, true) => Some(true),
                (Some(_), false) => Some(false),
                (None, false) => None,
            };
            let before = match now {
                Some(s) => states.insert(n.clone(), s),
                None => states.remove(n),
            };
            match (before, now) {
                (b, Some(true)) if b != Some(true) => tracing::info!(node = %n, "node ready"),
                (b, Some(false)) if b != Some(false) => {
                    tracing::warn!(node = %n, "node lost (its lease expired); its endpoints stay programmed until it is removed")
                }
                (Some(_), None) => tracing::warn!(node = %n, "node removed"),
                _ => {}
            }
        }
    }
    if t.networks.is_empty() && !t.all_peers {
        mark(shared, t.peers);
        return;
    }
    let s = shared.clone();
    let peers = tokio::task::spawn_blocking(move || {
        let mut t = t;
        for n in &t.networks {
            crate::ops::follow_network(&s, n);
        }
        if t.all_peers {
            let overlays: Vec<String> = s
                .engine
                .networks()
                .into_iter()
                .filter(|n| n.driver == Driver::Overlay)
                .map(|n| n.name.to_string())
                .collect();
            // Cluster networks removed from etcd while the watch was down.
            for n in &overlays {
                let gone = !s.cache().networks.contains_key(n);
                if gone && s.held().tracks(n) {
                    crate::ops::follow_network(&s, n);
                }
            }
            t.peers.extend(overlays);
        }
        t.peers
    })
    .await
    .unwrap_or_default();
    mark(shared, peers);
}

/// Queues networks whose remote endpoints are to be programmed.
fn mark(shared: &Shared, networks: BTreeSet<String>) {
    if networks.is_empty() {
        return;
    }
    shared
        .dirty
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .extend(networks);
    shared.dirty_wake.notify_one();
}

/// Programs the queued networks, each once per round: while a round runs,
/// further changes queue up and the next round takes them all, so a burst
/// of remote creates costs one sync per burst, not one per endpoint (a
/// sync diffs the whole remote list of its network).
pub async fn program(shared: Arc<Shared>) {
    loop {
        shared.dirty_wake.notified().await;
        let networks = std::mem::take(&mut *shared.dirty.lock().unwrap_or_else(|p| p.into_inner()));
        if networks.is_empty() {
            continue;
        }
        let s = shared.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for n in &networks {
                match s.engine.network(n) {
                    Ok(net) if net.driver == Driver::Overlay => {
                        if let Err(e) = s.engine.sync_peers(n) {
                            tracing::warn!(network = %n, error = %e, "could not program remote endpoints");
                        }
                    }
                    _ => {}
                }
            }
        })
        .await;
    }
}
