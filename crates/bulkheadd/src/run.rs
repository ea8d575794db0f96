//! Start-up: open the store, open the kernel in the namespace the process
//! runs in (that namespace is "the host"), reconcile, then serve until
//! SIGINT or SIGTERM.

use std::path::PathBuf;
use std::sync::Arc;

use bulkhead_api::Server;
use bulkhead_dataplane::host::HostKernel;
use bulkhead_engine::{Config, Engine, StaticPeers};
use bulkhead_store::RedbStore;

use crate::service::Daemon;

/// What the daemon needs to start.
#[derive(Debug, Clone)]
pub struct Options {
    pub state_dir: PathBuf,
    pub socket: PathBuf,
    pub netns_prefix: String,
    /// A static peer list for overlay networks (JSON: network name →
    /// remote endpoints); the etcd control plane will replace it.
    pub peers: Option<PathBuf>,
}

/// Opens the store and the kernel and reconciles: the engine, ready.
pub fn open_engine(opts: &Options) -> Result<Engine, String> {
    let store = RedbStore::open(&opts.state_dir).map_err(|e| e.to_string())?;
    let kernel = HostKernel::open(None).map_err(|e| e.to_string())?;
    let config = Config {
        netns_prefix: opts.netns_prefix.clone(),
    };
    let (engine, report) =
        Engine::open(Arc::new(kernel), Arc::new(store), config).map_err(|e| e.to_string())?;
    tracing::info!(?report, "reconciled");
    if let Some(path) = &opts.peers {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("read peers {}: {e}", path.display()))?;
        let peers =
            StaticPeers::from_json(&text).map_err(|e| format!("peers {}: {e}", path.display()))?;
        engine
            .set_peer_source(Arc::new(peers))
            .map_err(|e| e.to_string())?;
    }
    for e in &report.errors {
        tracing::warn!(error = %e, "reconcile");
    }
    Ok(engine)
}

/// Runs the daemon until a termination signal.
pub async fn run(opts: Options) -> Result<(), String> {
    let engine = {
        let opts = opts.clone();
        tokio::task::spawn_blocking(move || open_engine(&opts))
            .await
            .map_err(|e| e.to_string())??
    };
    let server = Server::bind(&opts.socket).map_err(|e| e.to_string())?;
    tracing::info!(socket = %opts.socket.display(), "serving");
    let shutdown = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
    };
    let engine = Arc::new(engine);
    // Drop events and firewall tamper repair (stops when dropped, after
    // serving ends).
    let _watcher = engine
        .watch(bulkhead_engine::WatchOptions::default())
        .map_err(
            |e| tracing::warn!(error = %e, "no events or tamper repair: watcher did not start"),
        )
        .ok();
    server
        .serve(Arc::new(Daemon::new(engine.clone())), shutdown)
        .await
        .map_err(|e| e.to_string())
}
