//! The API's one command enum dispatched to the engine. Engine calls block
//! (netlink, fsync), so each runs on tokio's blocking pool; the engine
//! serialises them itself.

use std::sync::Arc;

use bulkhead_api::{ApiError, Command, HealthInfo, Response, Service, TraceHop, TraceResult};
use bulkhead_engine::{EndpointRecord, Engine, EngineError};
use bulkhead_model::{EndpointSpec, NamespaceSpec, NetworkSpec};

use crate::convert;

/// The daemon's service: the engine behind the API.
#[derive(Debug, Clone)]
pub struct Daemon {
    engine: Arc<Engine>,
}

impl Daemon {
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }
}

pub fn api_error(e: EngineError) -> ApiError {
    let msg = e.to_string();
    match e {
        EngineError::Invalid(_) | EngineError::Policy(_) => ApiError::bad_request(msg),
        EngineError::NotFound { .. } => ApiError::not_found(msg),
        EngineError::Conflict(_) => ApiError::conflict(msg),
        EngineError::Kernel(_) | EngineError::Store(_) => ApiError::internal(msg),
    }
}

fn endpoint_info(engine: &Engine, e: &EndpointRecord) -> bulkhead_api::EndpointInfo {
    let network = engine
        .networks()
        .into_iter()
        .find(|n| n.id == e.network)
        .map(|n| n.name.to_string())
        .unwrap_or_default();
    let namespace = engine
        .namespaces()
        .into_iter()
        .find(|n| n.id == e.namespace)
        .map(|n| n.name.to_string())
        .unwrap_or_default();
    convert::endpoint(e, &network, &namespace)
}

fn namespace_info(engine: &Engine, n: &bulkhead_model::Namespace) -> Response {
    let adopted = engine.is_adopted(n.id);
    Response::Namespace(convert::namespace(
        n,
        engine.namespace_endpoints(n.id),
        adopted,
    ))
}

fn verdict(v: bulkhead_policy::Verdict) -> String {
    match v {
        bulkhead_policy::Verdict::Allow => "allow".into(),
        bulkhead_policy::Verdict::Block => "block".into(),
    }
}

/// Runs one command against the engine (blocking).
pub fn dispatch(engine: &Engine, cmd: Command) -> Result<Response, EngineError> {
    Ok(match cmd {
        Command::Health => Response::Health(HealthInfo {
            status: "ok".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }),
        Command::NetworkCreate(r) => {
            let spec = NetworkSpec {
                name: r.name,
                driver: r.driver,
                subnets: r.subnet.into_iter().collect(),
                gateway: r.gateway,
                uplink: r.uplink,
                vni: r.vni,
                acl_profile: r.acl_profile,
            };
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
        Command::NamespaceCreate(r) => {
            let spec = NamespaceSpec {
                name: r.name,
                isolation: r.isolation,
            };
            match (r.netns_path, r.container_id) {
                (Some(path), container) => {
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
            }
        }
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
        Command::EndpointCreate(r) => {
            let spec = EndpointSpec {
                name: r.name,
                network: r.network,
                namespace: r.namespace,
                ip: r.ip,
                mac: r.mac,
                publish: r.publish,
                acl_mode: r.acl_mode,
                ifname: r.ifname,
            };
            let options = bulkhead_engine::EndpointOptions {
                container_id: r.container_id,
            };
            let e = engine.create_endpoint(spec, options)?;
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
            let rule = engine.add_acl(&endpoint, convert::acl_spec(rule))?;
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
        Command::Trace(r) => {
            let t = engine.trace(&r.from, &r.to, &r.protocol, r.port.as_deref())?;
            Response::Trace(TraceResult {
                verdict: verdict(t.verdict),
                hops: t
                    .hops
                    .iter()
                    .map(|h| TraceHop {
                        point: h.point.to_owned(),
                        location: format!("{} {}", h.endpoint, h.direction),
                        rule: h.rule.clone(),
                        verdict: verdict(h.verdict),
                    })
                    .collect(),
            })
        }
        Command::Import(r) => Response::Import(crate::import::import(engine, r.document)?),
    })
}

impl Service for Daemon {
    async fn handle(&self, cmd: Command) -> Result<Response, ApiError> {
        let engine = Arc::clone(&self.engine);
        tokio::task::spawn_blocking(move || dispatch(&engine, cmd))
            .await
            .map_err(|e| ApiError::internal(format!("operation panicked: {e}")))?
            .map_err(api_error)
    }
}
