//! The API's one command enum dispatched to the engine. Engine calls block
//! (netlink, fsync); the engine serialises them itself. On the daemon's
//! multi-thread runtime a call runs right on the worker that decoded the
//! request, inside `block_in_place` (the worker's other tasks move to
//! another thread meanwhile), so the answer waits for no thread hand-off;
//! the profile showed two wake-ups per call (runtime → blocking pool →
//! runtime) on the path. On a current-thread runtime (tests) it runs on
//! the blocking pool, which that runtime needs.
//!
//! A panic inside an operation is a bug: it is caught here, logged with its
//! message, and the caller gets a 500 `internal error` that does not carry
//! the message (it may hold internal detail). The engine is reconciled from
//! the store at once, and, should that fail, again before the next
//! operation, so nothing goes on from half-changed state.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use bulkhead_api::{ApiError, Command, HealthInfo, Response, Service};
use bulkhead_engine::{EndpointRecord, Engine, EngineError};
use bulkhead_model::Isolation;

use crate::convert;
use crate::metrics::{self, Metrics};

/// The daemon's service: the engine behind the API.
#[derive(Debug, Clone)]
pub struct Daemon {
    engine: Arc<Engine>,
    metrics: Arc<Metrics>,
    /// The cluster control plane, when the daemon joined one.
    cluster: Option<Arc<bulkhead_cluster::Cluster>>,
}

impl Daemon {
    pub fn new(engine: Arc<Engine>) -> Self {
        Self::with_metrics(engine, Arc::new(Metrics::new()))
    }

    /// A daemon that counts its requests in `metrics` (shared with the
    /// store's commit observer and the metrics listener).
    pub fn with_metrics(engine: Arc<Engine>, metrics: Arc<Metrics>) -> Self {
        Self {
            engine,
            metrics,
            cluster: None,
        }
    }

    /// This daemon, serving the cluster operations of `cluster`.
    pub fn in_cluster(mut self, cluster: Option<Arc<bulkhead_cluster::Cluster>>) -> Self {
        self.cluster = cluster;
        self
    }
}

pub fn api_error(e: EngineError) -> ApiError {
    let msg = e.to_string();
    match e {
        EngineError::Invalid(v) => ApiError::bad_request(msg).about(v.field),
        EngineError::Policy(_) => ApiError::bad_request(msg),
        EngineError::NotFound { .. } => ApiError::not_found(msg),
        EngineError::Conflict(_) => ApiError::conflict(msg),
        EngineError::Kernel(_) | EngineError::Store(_) => ApiError::internal(msg),
        EngineError::Unavailable(_) => ApiError::new(bulkhead_api::ErrorCode::Unavailable, msg),
    }
}

fn endpoint_info(engine: &Engine, e: &EndpointRecord) -> bulkhead_api::EndpointInfo {
    let network = engine
        .networks()
        .into_iter()
        .find(|n| n.id == e.network)
        .map(|n| n.name.to_string())
        .unwrap_or_default();
    let (namespace, vm) = engine
        .namespaces()
        .into_iter()
        .find(|n| n.id == e.namespace)
        .map(|n| (n.name.to_string(), n.isolation == Isolation::Vm))
        .unwrap_or_default();
    convert::endpoint(e, &network, &namespace, vm)
}

fn namespace_info(engine: &Engine, n: &bulkhead_model::Namespace) -> Response {
    let adopted = engine.is_adopted(n.id);
    Response::Namespace(convert::namespace(
        n,
        engine.namespace_endpoints(n.id),
        adopted,
    ))
}

/// Runs one command against the engine (blocking).
pub fn dispatch(engine: &Engine, cmd: Command) -> Result<Response, EngineError> {
    dispatch_in(engine, None, cmd)
}

/// Runs one command; cluster commands and overlay networks go through the
/// cluster control plane when there is one ([`crate::cluster_ops`]).
pub fn dispatch_in(
    engine: &Engine,
    cluster: Option<&bulkhead_cluster::Cluster>,
    cmd: Command,
) -> Result<Response, EngineError> {
    use crate::cluster_ops as cl;
    Ok(match cmd {
        Command::NetworkCreate(spec) if cl::is_overlay(&spec) && cluster.is_some() => {
            Response::Network(convert::network(
                &cl::cluster(cluster)?.create_network(spec)?,
                0,
            ))
        }
        Command::NetworkRemove { name } if cluster.is_some() => {
            cl::cluster(cluster)?.delete_network(&name)?;
            Response::Removed
        }
        Command::EndpointListAll => {
            let mut all: Vec<_> = engine
                .endpoints()
                .iter()
                .map(|e| endpoint_info(engine, e))
                .collect();
            if let Some(c) = cluster {
                for e in &mut all {
                    e.node = Some(c.node().to_owned());
                }
                all.extend(c.remote_endpoints()?.iter().map(cl::remote_endpoint));
            }
            Response::Endpoints(all)
        }
        Command::NodeList => Response::Nodes(
            cl::cluster(cluster)?
                .nodes()?
                .iter()
                .map(cl::node)
                .collect(),
        ),
        Command::NodeRemove { name } => {
            cl::cluster(cluster)?.remove_node(&name)?;
            Response::Removed
        }
        Command::Health => Response::Health(HealthInfo {
            status: "ok".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }),
        Command::NetworkCreate(spec) => {
            let n = engine.create_network(spec)?;
            Response::Network(convert::network(&n, 0))
        }
        Command::NetworkList => Response::Networks(
            engine
                .networks()
                .iter()
                .map(|n| convert::network(n, engine.endpoint_count(n.id)))
                .collect(),
        ),
        Command::NetworkInspect { name } => {
            let n = engine.network(&name)?;
            Response::Network(convert::network(&n, engine.endpoint_count(n.id)))
        }
        Command::NetworkRemove { name } => {
            engine.delete_network(&name)?;
            Response::Removed
        }
        Command::NamespaceCreate(spec) => match (spec.netns_path.clone(), &spec.container_id) {
            (Some(path), _) => {
                let container = spec.container_id.clone();
                let (n, _) = engine.adopt_namespace(spec, &path, container.as_deref())?;
                namespace_info(engine, &n)
            }
            (None, Some(c)) => {
                return Err(EngineError::Invalid(bulkhead_model::InvalidValue::new(
                    "container_id",
                    c,
                    "only together with netns_path (an adopted namespace)",
                )))
            }
            (None, None) => Response::Namespace(convert::namespace(
                &engine.create_namespace(spec)?,
                vec![],
                false,
            )),
        },
        Command::NamespaceList => Response::Namespaces(
            engine
                .namespaces()
                .iter()
                .map(|n| {
                    let adopted = engine.is_adopted(n.id);
                    convert::namespace(n, engine.namespace_endpoints(n.id), adopted)
                })
                .collect(),
        ),
        Command::NamespaceInspect { name } => namespace_info(engine, &engine.namespace(&name)?),
        Command::NamespaceRemove { name } => {
            engine.delete_namespace(&name)?;
            Response::Removed
        }
        Command::EndpointCreate(spec) => {
            let e = engine.create_endpoint(spec)?;
            let record = engine.endpoint(e.name.as_str())?;
            Response::Endpoint(endpoint_info(engine, &record))
        }
        Command::EndpointList => Response::Endpoints(
            engine
                .endpoints()
                .iter()
                .map(|e| endpoint_info(engine, e))
                .collect(),
        ),
        Command::EndpointInspect { name } => {
            Response::Endpoint(endpoint_info(engine, &engine.endpoint(&name)?))
        }
        Command::EndpointRemove { name } => {
            engine.delete_endpoint(&name)?;
            Response::Removed
        }
        Command::AclAdd { endpoint, rule } => {
            let rule = engine.add_acl(&endpoint, rule)?;
            Response::Acl(convert::acl(&rule))
        }
        Command::AclList { endpoint } => {
            Response::Acls(engine.acls(&endpoint)?.iter().map(convert::acl).collect())
        }
        Command::AclStats { endpoint } => Response::AclStats(convert::acl_stats(
            &engine.acls(&endpoint)?,
            &engine.acl_counters(&endpoint)?,
        )),
        Command::AclRemove { endpoint, id } => {
            engine.remove_acl(&endpoint, &id)?;
            Response::Removed
        }
        Command::Trace(spec) => Response::Trace(convert::trace(&engine.trace(&spec)?)),
        Command::Import(r) => Response::Import(crate::import::import(engine, r.document)?),
        Command::Events(r) => crate::events::events(engine, r)?,
    })
}

impl Service for Daemon {
    async fn handle(&self, cmd: Command) -> Result<Response, ApiError> {
        let route = metrics::route(&cmd);
        let started = std::time::Instant::now();
        let result = self.execute(cmd).await;
        let outcome = metrics::outcome(&result);
        self.metrics.observe_api(route, &outcome, started.elapsed());
        result
    }

    fn metrics(&self) -> Option<String> {
        Some(self.metrics.render(&self.engine))
    }
}

impl Daemon {
    /// Runs `cmd` on the blocking pool, a panic caught and repaired.
    async fn execute(&self, cmd: Command) -> Result<Response, ApiError> {
        let engine = Arc::clone(&self.engine);
        let cluster = self.cluster.clone();
        let op = move || {
            let result = catch_unwind(AssertUnwindSafe(|| {
                dispatch_in(&engine, cluster.as_deref(), cmd)
            }));
            if let Err(payload) = &result {
                recover(&engine, panic_message(payload.as_ref()));
            }
            result.ok()
        };
        let multi = tokio::runtime::Handle::current().runtime_flavor()
            == tokio::runtime::RuntimeFlavor::MultiThread;
        let outcome = if multi {
            Ok(tokio::task::block_in_place(op))
        } else {
            tokio::task::spawn_blocking(op).await
        };
        match outcome {
            Ok(Some(result)) => result.map_err(api_error),
            // The panic was logged and repaired; its text stays in the log.
            Ok(None) | Err(_) => Err(ApiError::internal("internal error")),
        }
    }
}

/// After a panic in an operation: log it, and reconcile at once (the
/// engine keeps the mark, and retries, if the reconcile fails).
fn recover(engine: &Engine, message: String) {
    tracing::error!(panic = %message, "an API operation panicked; reconciling");
    engine.mark_for_reconcile();
    match engine.reconcile() {
        Ok(report) => tracing::warn!(?report, "reconciled after a panic"),
        Err(e) => {
            tracing::error!(error = %e, "reconcile after a panic failed; retrying before the next operation")
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
