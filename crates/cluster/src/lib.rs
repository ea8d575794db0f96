//! bulkhead's cluster control plane on etcd (spec §10, `docs/cluster.md`,
//! ADR 0008): this node's lease, its published endpoints, the cluster's
//! overlay networks and address blocks, and a watch that programs remote
//! endpoints into the engine in-process.
//!
//! Contract:
//! - The engine stays free of etcd: it gets a [`PeerSource`] (remote
//!   endpoints from the watched mirror, [`cache`]) and [`ClusterHooks`]
//!   (held address blocks; "endpoints changed" wakes the publisher). All
//!   etcd I/O runs on the daemon's runtime, never under the engine lock.
//! - Endpoints are published without a lease: a daemon crash withdraws
//!   nothing; only removing the node (`node rm`, `--lost-node-grace`) does.
//! - The node's liveness is a lease-bound key (`alive/<node>`): gone when
//!   the lease expires, the node is `lost`.
//! - etcd down: what is programmed stays; an operation that needs etcd
//!   fails naming the endpoints; an endpoint from a held block is created
//!   and published when etcd answers again (the publisher diffs).

mod blocks;
pub mod cache;
pub mod config;
pub mod error;
pub mod keys;
mod node;
pub mod ops;
mod publish;
mod watch;

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bulkhead_dataplane::kernel::RemoteEndpoint;
use bulkhead_engine::{ClusterHooks, Engine, PeerSource};
use bulkhead_model::{Cidr, Driver, Network};
use etcd_client::Client;

pub use config::Config;
pub use error::{ClusterError, Result};

/// State shared by the control plane's tasks.
pub(crate) struct Shared {
    pub config: Config,
    pub client: Client,
    pub engine: Arc<Engine>,
    pub cache: Mutex<cache::Cache>,
    /// Wakes the publisher.
    pub wake: tokio::sync::Notify,
    pub runtime: tokio::runtime::Handle,
    pub held: Mutex<blocks::Held>,
    /// The watch is live (its mirror is current).
    pub watching: AtomicBool,
    /// Networks whose remote endpoints changed, not programmed yet
    /// ([`watch::program`]), and its wake-up.
    pub dirty: Mutex<std::collections::BTreeSet<String>>,
    pub dirty_wake: tokio::sync::Notify,
    /// The watch has listed etcd once: the mirror is the whole truth.
    pub listed: AtomicBool,
    /// Held while a block is claimed ([`Hooks::claim_block`]).
    pub claiming: Mutex<()>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub fn cache(&self) -> MutexGuard<'_, cache::Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
    pub fn held(&self) -> MutexGuard<'_, blocks::Held> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }
    pub fn me(&self) -> &str {
        &self.config.node
    }
    pub fn kv(&self) -> etcd_client::KvClient {
        self.client.kv_client()
    }

    /// Runs `fut` on the daemon's runtime and waits for it from a blocking
    /// thread (the engine's hooks are called from one).
    pub fn block_on<T: Send + 'static>(
        &self,
        fut: impl std::future::Future<Output = T> + Send + 'static,
    ) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        self.runtime.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv()
            .unwrap_or_else(|_| unreachable!("the task sends before it ends"))
    }
}

/// A running cluster control plane (its tasks stop when it is dropped).
#[derive(Debug)]
pub struct Cluster {
    shared: Arc<Shared>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Cluster {
    /// Joins the cluster: connects (lazily; etcd may be down), installs the
    /// engine's peer source and hooks, and starts the lease keeper, the
    /// watch and the publisher. Call from the daemon's runtime.
    pub async fn start(config: Config, engine: Arc<Engine>) -> Result<Cluster> {
        config.validate()?;
        let client = config.connect().await?;
        let held = blocks::Held::load(&config.state_dir)?;
        let shared = Arc::new(Shared {
            config,
            client,
            engine: engine.clone(),
            cache: Mutex::default(),
            wake: tokio::sync::Notify::new(),
            runtime: tokio::runtime::Handle::current(),
            held: Mutex::new(held),
            watching: AtomicBool::new(false),
            claiming: Mutex::new(()),
            listed: AtomicBool::new(false),
            dirty: Mutex::default(),
            dirty_wake: tokio::sync::Notify::new(),
        });
        if !engine.set_cluster_hooks(Arc::new(Hooks(shared.clone()))) {
            return Err(ClusterError::Config(
                "the engine already has a cluster control plane".into(),
            ));
        }
        let source = Arc::new(Peers(shared.clone()));
        let e = engine.clone();
        tokio::task::spawn_blocking(move || e.set_peer_source(source))
            .await
            .map_err(|e| ClusterError::Config(e.to_string()))?
            .map_err(|e| ClusterError::Config(e.to_string()))?;
        let tasks = vec![
            tokio::spawn(node::keep(shared.clone())),
            tokio::spawn(watch::run(shared.clone())),
            tokio::spawn(watch::program(shared.clone())),
            tokio::spawn(publish::run(shared.clone())),
        ];
        tracing::info!(node = %shared.me(), etcd = %shared.config.endpoints_text(), "joined the cluster");
        Ok(Cluster { shared, tasks })
    }

    /// Whether the watch is live.
    pub fn watching(&self) -> bool {
        self.shared.watching.load(Ordering::Acquire)
    }

    pub fn node(&self) -> &str {
        self.shared.me()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Remote endpoints from the watched mirror.
#[derive(Debug)]
struct Peers(Arc<Shared>);

impl PeerSource for Peers {
    fn is_current(&self) -> bool {
        self.0.listed.load(Ordering::Acquire)
    }

    fn remote_endpoints(&self, network: &Network) -> bulkhead_engine::Result<Vec<RemoteEndpoint>> {
        Ok(self
            .0
            .cache()
            .remote_endpoints(network.name.as_str(), self.0.me()))
    }
}

/// The engine's hooks.
#[derive(Debug)]
struct Hooks(Arc<Shared>);

impl ClusterHooks for Hooks {
    fn endpoints_changed(&self, _network: &Network) {
        self.0.wake.notify_one();
    }

    fn address_blocks(&self, network: &Network) -> Option<Vec<Cidr>> {
        (network.driver == Driver::Overlay).then(|| self.0.held().of(network.name.as_str()))
    }

    fn claim_block(
        &self,
        network: &Network,
        containing: Option<IpAddr>,
        seen: usize,
    ) -> bulkhead_engine::Result<()> {
        // One claim at a time per node: concurrent creates that all found
        // the blocks full need one new block, not one each.
        let _claiming = self.0.claiming.lock().unwrap_or_else(|p| p.into_inner());
        let held = self.0.held().of(network.name.as_str());
        let covered = containing.is_some_and(|ip| held.iter().any(|b| b.contains(ip)));
        if covered || (containing.is_none() && held.len() > seen) {
            return Ok(());
        }
        let shared = self.0.clone();
        let (name, subnet) = (network.name.to_string(), network.subnets[0]);
        self.0
            .block_on(async move { blocks::claim(&shared, &name, subnet, containing).await })
            .map_err(Into::into)
    }
}
