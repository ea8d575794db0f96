//! bulkhead's engine: every operation on networks, namespaces, endpoints and
//! ACLs, as ordered steps that undo what they did when a later step fails,
//! and [`Engine::reconcile`], which repairs the kernel from the store.
//!
//! Contract:
//! - Input is validated (model, policy matrix) before anything changes.
//! - The store accepts a change (committed, with an intent record) before the
//!   kernel is touched; the in-memory state follows only when both are done.
//!   An operation returns only once its commits are durable: the store
//!   syncs after the engine lock is released, so concurrent operations
//!   share one fsync (group commit) and a crash before the sync loses only
//!   unacknowledged operations, whose kernel objects reconcile removes.
//! - Kernel tables are changed by diffs of compiled rulesets: one nf_tables
//!   transaction per namespace touched, never a dump-and-rewrite.
//! - Operations are serialised by one lock; they are short (milliseconds).
//!   An operation that panics leaves the lock poisoned and its work half
//!   done: the next taker of the lock reconciles from the store before it
//!   goes on (so does the next one after [`Engine::mark_for_reconcile`]),
//!   never continuing on half-changed state.
//! - Teardown is best effort: it gathers every error and still finishes.
//!   A delete returns once the object is durably gone and out of service;
//!   destroying devices (the kernel's RCU waits) runs in the background
//!   after the durable commit, and [`Engine::settle`] waits for it (also
//!   done on drop). See `docs/design.md`, "Deleting an endpoint".

mod acl;
pub mod acl_rows;
mod address;
mod adopt;
pub mod cluster;
mod dhcp;
pub mod drivers;
mod endpoint;
pub mod error;
pub mod events;
pub mod heap;
mod import;
#[cfg(test)]
mod incremental_tests;
mod namespace;
mod network;
mod observe;
#[cfg(test)]
mod panic_tests;
pub mod peers;
mod published;
mod reclaim;
mod reconcile;
pub mod records;
pub mod state;
mod stats;
mod tables;
pub mod tally;
mod tap;
#[cfg(test)]
mod test_kit;
pub mod trace;
pub mod undo;
mod wake;
pub mod watch;

use std::collections::BTreeSet;
use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bulkhead_dataplane::kernel::Kernel;
use bulkhead_store::{Store, StoreExt};

pub use cluster::ClusterHooks;
pub use error::{EngineError, Result};
pub use import::Imported;
pub use peers::{PeerEntry, PeerSource, StaticPeers};
pub use reconcile::ReconcileReport;
pub use records::{EndpointRecord, NamespaceRecord, NetworkRecord};
pub use stats::RuleCounters;
pub use trace::{step_label, TraceReport, TraceSpec, TraceStep};
pub use watch::{WatchOptions, Watcher};

use state::State;
use tables::Programmed;

/// Settings of one engine instance.
#[derive(Debug, Clone)]
pub struct Config {
    /// Prefix of the namespace pins this engine owns under `/run/netns`
    /// (default `bh-`). Reconcile removes pins with this prefix that no
    /// record owns, so two engines on one machine need different prefixes.
    pub netns_prefix: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            netns_prefix: "bh-".into(),
        }
    }
}

/// Kernel object name prefixes in the host namespace.
pub const SWITCH_PORT_PREFIX: &str = "bhp";
pub const NETWORK_DEVICE_PREFIX: &str = "bhn";

#[derive(Debug)]
struct Inner {
    state: State,
    programmed: Programmed,
    /// Intents of finished operations, cleared in the store lazily: inside
    /// the next operation's write transaction (one fsync per operation, not
    /// two), or when the engine is dropped. Reconcile is idempotent, so an
    /// intent that outlives its operation after a crash only makes the next
    /// start redo that operation.
    pending_intents: Vec<String>,
    /// This holder of the lock committed without syncing
    /// ([`Engine::transaction_clearing`]); [`Locked`] syncs on release.
    unsynced: bool,
    /// Network namespaces (by path) in which a deleted endpoint's veth side
    /// may still exist because its removal is queued in the background. A
    /// create into one of them settles the queue first; cleared by
    /// [`Engine::settle`].
    retiring: BTreeSet<PathBuf>,
    /// Addresses of deleted endpoints whose host conntrack clean-up is
    /// queued in the background: a create that is given one of them
    /// settles the queue first, so the clean-up cannot cut the new
    /// endpoint's connections; cleared by [`Engine::settle`].
    forgetting: BTreeSet<std::net::IpAddr>,
}

/// The engine. Cheap to share (`Arc`); every operation takes `&self`.
#[derive(Debug)]
pub struct Engine {
    kernel: Arc<dyn Kernel>,
    store: Arc<dyn Store>,
    config: Config,
    inner: Mutex<Inner>,
    /// Remote endpoints of overlay networks (lock order: `inner` first).
    peers: Mutex<peers::Peers>,
    /// The state may be half-changed (an operation panicked, or the repair
    /// after one failed): the next [`Engine::lock`] reconciles first.
    needs_reconcile: AtomicBool,
    /// Recent drops, tampering and repairs ([`events`]).
    events: Arc<events::EventRing>,
    /// The cluster control plane's hooks, if this host is in a cluster.
    cluster: std::sync::OnceLock<Arc<dyn ClusterHooks>>,
    /// Poked when a namespace gains a firewall (the watcher opens its
    /// sockets at once); `None` if no socket pair could be made (the
    /// watcher's periodic sync still finds it).
    wake: Option<wake::Wake>,
}

impl Engine {
    /// Loads the stored state and reconciles the kernel with it.
    pub fn open(
        kernel: Arc<dyn Kernel>,
        store: Arc<dyn Store>,
        config: Config,
    ) -> Result<(Self, ReconcileReport)> {
        let engine = Self {
            kernel,
            store,
            config,
            inner: Mutex::new(Inner {
                state: State::default(),
                programmed: Programmed::default(),
                pending_intents: Vec::new(),
                unsynced: false,
                retiring: BTreeSet::new(),
                forgetting: BTreeSet::new(),
            }),
            peers: Mutex::new(peers::Peers::default()),
            needs_reconcile: AtomicBool::new(false),
            events: Arc::new(events::EventRing::default()),
            cluster: std::sync::OnceLock::new(),
            wake: wake::Wake::new()
                .map_err(|e| tracing::warn!(error = %e, "no watcher wake-up: new namespaces are watched at the next periodic sync"))
                .ok(),
        };
        let report = engine.reconcile()?;
        engine.record_reconcile(&report);
        Ok((engine, report))
    }

    /// The engine lock, repaired first if an operation panicked under it
    /// or [`Engine::mark_for_reconcile`] asked for it: the state and the
    /// kernel are reconciled from the store (which an operation changes
    /// only in whole transactions) before the caller sees them.
    fn lock(&self) -> Locked<'_> {
        let mut inner = Locked {
            guard: Some(self.lock_raw()),
            store: &*self.store,
        };
        if self.needs_reconcile.load(Ordering::Acquire) {
            match self.reconcile_counted(&mut inner) {
                Ok(report) => tracing::warn!(?report, "reconciled after a failed operation"),
                Err(e) => {
                    tracing::error!(error = %e, "reconcile failed; retrying at the next operation")
                }
            }
        }
        inner
    }

    /// The engine lock as it is; a poisoned lock is taken over and marked
    /// for reconcile.
    fn lock_raw(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| {
            tracing::error!("an engine operation panicked; its changes will be reconciled");
            self.inner.clear_poison();
            self.needs_reconcile.store(true, Ordering::Release);
            poisoned.into_inner()
        })
    }

    /// Asks for a reconcile before the next operation (e.g. after a panic
    /// outside the engine lock that may have cut an operation short).
    pub fn mark_for_reconcile(&self) {
        self.needs_reconcile.store(true, Ordering::Release);
    }

    /// Whether a reconcile is due before the next operation.
    pub fn needs_reconcile(&self) -> bool {
        self.needs_reconcile.load(Ordering::Acquire) || self.inner.is_poisoned()
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    fn netns_name(&self, namespace: &bulkhead_model::Name) -> String {
        format!("{}{}", self.config.netns_prefix, namespace)
    }

    /// Clears a finished operation's intent. A failure here is harmless (the
    /// next start repairs idempotently), so it is logged, not returned.
    fn clear_intent(&self, id: &str) {
        if let Err(e) = self.store.transaction(|t| t.clear_intent(id).map(|_| ())) {
            tracing::warn!(intent = id, error = %e, "could not clear intent");
        }
    }

    /// Runs `f` in one write transaction that also clears the intents of
    /// operations finished earlier ([`Inner::pending_intents`]); they stay
    /// pending if the transaction fails. The commit is durable when the
    /// engine lock is released ([`Locked`]), before the operation returns.
    fn transaction_clearing<R>(
        &self,
        inner: &mut Inner,
        f: impl FnOnce(&mut bulkhead_store::WriteTxn<'_>) -> bulkhead_store::Result<R>,
    ) -> Result<R> {
        let pending = &inner.pending_intents;
        // Marked before the commit: a commit that fails after its log append
        // may still be replayed, so its caller waits like any other.
        inner.unsynced = true;
        let out = self.store.transaction_deferred(|t| {
            for id in pending {
                t.clear_intent(id)?;
            }
            f(t)
        })?;
        inner.pending_intents.clear();
        Ok(out)
    }

    /// Makes every pending intent clear durable now (also done on drop).
    pub fn flush_intents(&self) {
        let ids = std::mem::take(&mut self.lock().pending_intents);
        if ids.is_empty() {
            return;
        }
        if let Err(e) = self.store.transaction(|t| {
            for id in &ids {
                t.clear_intent(id)?;
            }
            Ok(())
        }) {
            tracing::warn!(error = %e, "could not clear intents");
        }
    }
}

/// The engine lock as operations hold it. Released, it syncs the store if
/// its holder committed ([`Inner::unsynced`]): after the lock is free, so
/// the next operation runs while this one waits for its fsync, and every
/// operation waiting meanwhile shares the next one. The operation has not
/// returned yet, so nothing is acknowledged before it is durable.
struct Locked<'e> {
    guard: Option<MutexGuard<'e, Inner>>,
    store: &'e dyn Store,
}

impl Deref for Locked<'_> {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        self.guard
            .as_deref()
            .unwrap_or_else(|| unreachable!("taken only in drop"))
    }
}

impl DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut Inner {
        self.guard
            .as_deref_mut()
            .unwrap_or_else(|| unreachable!("taken only in drop"))
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        let Some(mut guard) = self.guard.take() else {
            return;
        };
        let unsynced = std::mem::take(&mut guard.unsynced);
        drop(guard);
        if !unsynced {
            return;
        }
        if let Err(e) = self.store.sync() {
            // The operation would be acknowledged without being durable, and
            // after a failed fsync the page cache may have dropped its
            // writes: stop (as databases do on fsync failure); the restart
            // replays the log and reconciles.
            tracing::error!(error = %e, "store sync failed; stopping");
            if !std::thread::panicking() {
                std::process::abort();
            }
        }
    }
}

impl Engine {
    /// Blocks until the clean-up queued by earlier deletes has run: deleted
    /// endpoints' switch ports (and their veth sides) are destroyed, host
    /// conntrack entries forgotten. Shutdown and tests that check that
    /// nothing is left behind call this (so does drop).
    pub fn settle(&self) {
        let mut inner = self.lock();
        self.settle_locked(&mut inner);
    }

    /// [`Engine::settle`] under the engine lock (no delete can queue more
    /// meanwhile, so `retiring` may be cleared).
    fn settle_locked(&self, inner: &mut Inner) {
        self.kernel.settle();
        inner.retiring.clear();
        inner.forgetting.clear();
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.flush_intents();
        self.settle();
    }
}
