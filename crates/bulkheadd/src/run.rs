//! Start-up: open the store, open the kernel in the namespace the process
//! runs in (that namespace is "the host"), reconcile, then serve until
//! SIGINT or SIGTERM. The API serves root and the `--api-group`, within the
//! limits of [`ServerConfig`] (see `docs/api-security.md`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bulkhead_api::{Server, ServerConfig};
use bulkhead_dataplane::host::HostKernel;
use bulkhead_engine::{Config, Engine, StaticPeers};
use bulkhead_store::RedbStore;

use crate::listen;
use crate::metrics::Metrics;
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
    /// Who may use the API, and its timeouts and connection caps.
    pub api: ServerConfig,
    /// Where to serve `GET /metrics` over TCP (`None`: only on the API
    /// socket); see [`crate::listen`] for what may be bound.
    pub metrics_address: Option<SocketAddr>,
    /// Where to serve the read-only web console (`None`: no console).
    pub web_address: Option<SocketAddr>,
    /// The cluster to join (`None`: a cluster of one, as before).
    pub cluster: Option<bulkhead_cluster::Config>,
    /// Network namespaces kept made ahead of their create (0: none); see
    /// `docs/design.md`, "Namespaces made ahead".
    pub warm_namespaces: usize,
}

/// The gid of `group`: a group name from the group database, or a number.
pub fn resolve_group(group: &str) -> Result<u32, String> {
    if let Ok(gid) = group.parse::<u32>() {
        return Ok(gid);
    }
    match nix::unistd::Group::from_name(group) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        Ok(None) => Err(format!(
            "--api-group {group:?}: no such group; expected a group name or a numeric gid"
        )),
        Err(e) => Err(format!("--api-group {group:?}: cannot look it up: {e}")),
    }
}

/// A duration as `500ms`, `10s`, `2m`, `1h` or a plain number of seconds
/// (fractions allowed); zero and negative values are refused.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let (number, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (t, 1.0)
    };
    let secs = number
        .trim()
        .parse::<f64>()
        .ok()
        .map(|n| n * scale)
        .filter(|s| s.is_finite() && *s >= 0.001 && *s <= 86_400.0);
    secs.map(std::time::Duration::from_secs_f64).ok_or_else(|| {
        format!("{text:?}: expected a duration from 1ms to 24h, e.g. 500ms, 10s, 2m")
    })
}

/// Opens the store and the kernel and reconciles: the engine, ready.
pub fn open_engine(opts: &Options) -> Result<Engine, String> {
    open_engine_with(opts, None)
}

/// [`open_engine`], the store's commits timed for `metrics`.
pub fn open_engine_with(opts: &Options, metrics: Option<&Arc<Metrics>>) -> Result<Engine, String> {
    let store = RedbStore::open(&opts.state_dir).map_err(|e| e.to_string())?;
    if let Some(m) = metrics {
        store.observe_commits(m.commit_observer());
    }
    let kernel = HostKernel::open(None)
        .and_then(|k| k.warm_namespaces(opts.warm_namespaces))
        .map_err(|e| e.to_string())?;
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
    // The read-only listeners bind first: a bad address stops the daemon
    // before it changes anything.
    let metrics_listener = opts
        .metrics_address
        .map(|a| listen::bind("--metrics-address", a))
        .transpose()?;
    let web_listener = opts
        .web_address
        .map(|a| listen::bind("--web-address", a))
        .transpose()?;
    let metrics = Arc::new(Metrics::new());
    let engine = {
        let opts = opts.clone();
        let metrics = metrics.clone();
        tokio::task::spawn_blocking(move || open_engine_with(&opts, Some(&metrics)))
            .await
            .map_err(|e| e.to_string())??
    };
    // SIGTERM is caught from before the socket exists: a caller that sees
    // the socket may stop the daemon cleanly at once.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let server = Server::bind_with(&opts.socket, opts.api.clone()).map_err(|e| e.to_string())?;
    tracing::info!(
        socket = %opts.socket.display(),
        group = ?opts.api.group,
        header_timeout = ?opts.api.header_timeout,
        max_connections = opts.api.max_connections,
        "serving"
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let engine = Arc::new(engine);
    let cluster = match opts.cluster.clone() {
        Some(c) => Some(Arc::new(
            bulkhead_cluster::Cluster::start(c, engine.clone())
                .await
                .map_err(|e| e.to_string())?,
        )),
        None => None,
    };
    let wait_stop = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    if let Some(l) = metrics_listener {
        tracing::info!(address = ?l.local_addr().ok(), "serving metrics");
        let (engine, metrics) = (engine.clone(), metrics.clone());
        let handler: listen::Handler = Arc::new(move |path, _| match path {
            "/metrics" => {
                listen::Reply::ok(bulkhead_api::METRICS_CONTENT_TYPE, metrics.render(&engine))
            }
            _ => listen::Reply::error(404, format!("{path}: only /metrics is served here")),
        });
        tokio::spawn(listen::serve(l, handler, wait_stop(stopped.clone())));
    }
    if let Some(l) = web_listener {
        tracing::info!(address = ?l.local_addr().ok(), "serving the web console");
        let handler = crate::web::handler(engine.clone(), metrics.clone());
        tokio::spawn(listen::serve(l, handler, wait_stop(stopped.clone())));
    }
    let shutdown = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
        let _ = stop.send(true);
    };
    // Drop events and firewall tamper repair (stops when dropped, after
    // serving ends). A daemon that could not restore a tampered firewall
    // does not serve (spec §9).
    let _watcher = engine
        .watch(bulkhead_engine::WatchOptions::default())
        .map_err(|e| format!("start the event and tamper watcher: {e}"))?;
    server
        .serve(
            Arc::new(Daemon::with_metrics(engine.clone(), metrics).in_cluster(cluster)),
            shutdown,
        )
        .await
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_and_groups_parse_or_name_what_is_wrong() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["0", "-1s", "abc", "", "25h", "1d"] {
            let e = parse_duration(bad).expect_err(bad);
            assert!(e.contains("expected a duration"), "{e}");
        }
        assert_eq!(resolve_group("0"), Ok(0));
        assert_eq!(resolve_group("root"), Ok(0));
        let e = resolve_group("no-such-group-bh").expect_err("unknown group");
        assert!(
            e.contains("--api-group") && e.contains("no such group"),
            "{e}"
        );
    }
}
