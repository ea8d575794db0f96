//! The one typed command enum between the transport and the engine.
//!
//! Every API operation is exactly one [`Command`] variant, and every success
//! is one [`Response`] variant. The HTTP routes ([`crate::route`]) only
//! translate to and from these; the daemon's engine only ever sees them. A
//! command determines the kind of its response ([`ResponseKind`]), which lets
//! the client decode a body without guessing.

use crate::request::{
    AclRuleSpec, EndpointSpec, EventsRequest, ImportRequest, NamespaceSpec, NetworkSpec, TraceSpec,
};
use crate::response::{
    AclInfo, AclStatsInfo, EndpointInfo, EventsPage, HealthInfo, ImportResult, NamespaceInfo,
    NetworkInfo, NodeInfo, TraceResult,
};
use serde::Serialize;

/// One API operation, with its raw (unvalidated) arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Is the daemon up?
    Health,
    /// Create a network.
    NetworkCreate(NetworkSpec),
    /// List networks.
    NetworkList,
    /// Show one network.
    NetworkInspect {
        /// Network name.
        name: String,
    },
    /// Remove a network.
    NetworkRemove {
        /// Network name.
        name: String,
    },
    /// Create a namespace (compartment).
    NamespaceCreate(NamespaceSpec),
    /// List namespaces.
    NamespaceList,
    /// Show one namespace.
    NamespaceInspect {
        /// Namespace name.
        name: String,
    },
    /// Remove a namespace.
    NamespaceRemove {
        /// Namespace name.
        name: String,
    },
    /// Create an endpoint.
    EndpointCreate(EndpointSpec),
    /// List endpoints.
    EndpointList,
    /// Show one endpoint.
    EndpointInspect {
        /// Endpoint name.
        name: String,
    },
    /// Remove an endpoint.
    EndpointRemove {
        /// Endpoint name.
        name: String,
    },
    /// Add a custom ACL rule to an endpoint.
    AclAdd {
        /// Endpoint name.
        endpoint: String,
        /// The rule, raw.
        rule: AclRuleSpec,
    },
    /// List an endpoint's custom ACL rules.
    AclList {
        /// Endpoint name.
        endpoint: String,
    },
    /// An endpoint's custom ACL rules with every rule's counters
    /// (`acl ls --stats`).
    AclStats {
        /// Endpoint name.
        endpoint: String,
    },
    /// Remove one custom ACL rule.
    AclRemove {
        /// Endpoint name.
        endpoint: String,
        /// Rule id.
        id: String,
    },
    /// Explain the verdict for a packet.
    Trace(TraceSpec),
    /// Import an HCN v2 JSON document.
    Import(ImportRequest),
    /// Recent events (long poll).
    Events(EventsRequest),
    /// List endpoints, with the other cluster nodes' endpoints (`endpoint
    /// ls --all-nodes`).
    EndpointListAll,
    /// List the cluster's nodes.
    NodeList,
    /// Remove a node that is not ready.
    NodeRemove {
        /// Node name.
        name: String,
    },
}

/// A successful result; its variant follows from the command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Response {
    /// For [`Command::Health`].
    Health(HealthInfo),
    /// For network create and inspect.
    Network(NetworkInfo),
    /// For network list.
    Networks(Vec<NetworkInfo>),
    /// For namespace create and inspect.
    Namespace(NamespaceInfo),
    /// For namespace list.
    Namespaces(Vec<NamespaceInfo>),
    /// For endpoint create and inspect.
    Endpoint(EndpointInfo),
    /// For endpoint list.
    Endpoints(Vec<EndpointInfo>),
    /// For ACL add.
    Acl(AclInfo),
    /// For ACL list.
    Acls(Vec<AclInfo>),
    /// For ACL list with counters.
    AclStats(AclStatsInfo),
    /// For trace.
    Trace(TraceResult),
    /// For import.
    Import(ImportResult),
    /// For events.
    Events(EventsPage),
    /// For node list.
    Nodes(Vec<NodeInfo>),
    /// For every remove: nothing to report (HTTP 204).
    Removed,
}

/// The shape of the response a command expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseKind {
    /// [`Response::Health`].
    Health,
    /// [`Response::Network`].
    Network,
    /// [`Response::Networks`].
    Networks,
    /// [`Response::Namespace`].
    Namespace,
    /// [`Response::Namespaces`].
    Namespaces,
    /// [`Response::Endpoint`].
    Endpoint,
    /// [`Response::Endpoints`].
    Endpoints,
    /// [`Response::Acl`].
    Acl,
    /// [`Response::Acls`].
    Acls,
    /// [`Response::AclStats`].
    AclStats,
    /// [`Response::Trace`].
    Trace,
    /// [`Response::Import`].
    Import,
    /// [`Response::Events`].
    Events,
    /// [`Response::Nodes`].
    Nodes,
    /// [`Response::Removed`].
    Removed,
}

impl Command {
    /// What a successful response to this command looks like.
    pub fn response_kind(&self) -> ResponseKind {
        match self {
            Command::Health => ResponseKind::Health,
            Command::NetworkCreate(_) | Command::NetworkInspect { .. } => ResponseKind::Network,
            Command::NetworkList => ResponseKind::Networks,
            Command::NamespaceCreate(_) | Command::NamespaceInspect { .. } => {
                ResponseKind::Namespace
            }
            Command::NamespaceList => ResponseKind::Namespaces,
            Command::EndpointCreate(_) | Command::EndpointInspect { .. } => ResponseKind::Endpoint,
            Command::EndpointList | Command::EndpointListAll => ResponseKind::Endpoints,
            Command::NodeList => ResponseKind::Nodes,
            Command::AclAdd { .. } => ResponseKind::Acl,
            Command::AclList { .. } => ResponseKind::Acls,
            Command::AclStats { .. } => ResponseKind::AclStats,
            Command::Trace(_) => ResponseKind::Trace,
            Command::Import(_) => ResponseKind::Import,
            Command::Events(_) => ResponseKind::Events,
            Command::NetworkRemove { .. }
            | Command::NamespaceRemove { .. }
            | Command::EndpointRemove { .. }
            | Command::NodeRemove { .. }
            | Command::AclRemove { .. } => ResponseKind::Removed,
        }
    }

    /// True for commands that create something (answered with HTTP 201).
    pub fn creates(&self) -> bool {
        matches!(
            self,
            Command::NetworkCreate(_)
                | Command::NamespaceCreate(_)
                | Command::EndpointCreate(_)
                | Command::AclAdd { .. }
        )
    }
}

impl Response {
    /// The kind of this response.
    pub fn kind(&self) -> ResponseKind {
        match self {
            Response::Health(_) => ResponseKind::Health,
            Response::Network(_) => ResponseKind::Network,
            Response::Networks(_) => ResponseKind::Networks,
            Response::Namespace(_) => ResponseKind::Namespace,
            Response::Namespaces(_) => ResponseKind::Namespaces,
            Response::Endpoint(_) => ResponseKind::Endpoint,
            Response::Endpoints(_) => ResponseKind::Endpoints,
            Response::Acl(_) => ResponseKind::Acl,
            Response::Acls(_) => ResponseKind::Acls,
            Response::AclStats(_) => ResponseKind::AclStats,
            Response::Trace(_) => ResponseKind::Trace,
            Response::Import(_) => ResponseKind::Import,
            Response::Events(_) => ResponseKind::Events,
            Response::Nodes(_) => ResponseKind::Nodes,
            Response::Removed => ResponseKind::Removed,
        }
    }

    /// Decodes a success body of the given kind.
    pub fn decode(kind: ResponseKind, body: &[u8]) -> Result<Response, serde_json::Error> {
        use serde_json::from_slice as de;
        Ok(match kind {
            ResponseKind::Health => Response::Health(de(body)?),
            ResponseKind::Network => Response::Network(de(body)?),
            ResponseKind::Networks => Response::Networks(de(body)?),
            ResponseKind::Namespace => Response::Namespace(de(body)?),
            ResponseKind::Namespaces => Response::Namespaces(de(body)?),
            ResponseKind::Endpoint => Response::Endpoint(de(body)?),
            ResponseKind::Endpoints => Response::Endpoints(de(body)?),
            ResponseKind::Acl => Response::Acl(de(body)?),
            ResponseKind::Acls => Response::Acls(de(body)?),
            ResponseKind::AclStats => Response::AclStats(de(body)?),
            ResponseKind::Trace => Response::Trace(de(body)?),
            ResponseKind::Import => Response::Import(de(body)?),
            ResponseKind::Events => Response::Events(de(body)?),
            ResponseKind::Nodes => Response::Nodes(de(body)?),
            ResponseKind::Removed => Response::Removed,
        })
    }

    /// The JSON body of this response; none for [`Response::Removed`].
    pub fn to_body(&self) -> Result<Option<Vec<u8>>, serde_json::Error> {
        match self {
            Response::Removed => Ok(None),
            other => serde_json::to_vec(other).map(Some),
        }
    }
}
