//! bulkhead's API: the contract between bulkheadd and its callers.
//!
//! Callers (the CLI, the CNI plugin) build raw requests ([`request`]: the
//! model's raw specs, `bulkhead_model::{NetworkSpec, NamespaceSpec,
//! EndpointSpec, AclRuleSpec, TraceSpec}`, plus events and import), the
//! transport carries them as JSON over HTTP/1.1 on a Unix socket
//! ([`client`], [`server`]), and the daemon receives exactly one typed
//! [`Command`] per request and answers with one [`Response`] or an
//! [`ApiError`]. Nothing here validates domain values, touches the kernel, or
//! reads the store: requests carry what the user typed, and the daemon's
//! model turns it into typed values with errors that name the field.
//! Routes are documented in `docs/api.openapi.yaml`.

pub mod client;
pub mod command;
pub mod error;
pub mod gate;
pub mod metrics_route;
mod oneshot;
pub mod request;
pub mod response;
pub mod route;
pub mod server;
pub mod socket;
pub mod time;

pub use client::{Client, ClientError};
pub use command::{Command, Response, ResponseKind};
pub use error::{ApiError, ErrorBody, ErrorCode};
pub use gate::{Access, Peer};
pub use metrics_route::METRICS_CONTENT_TYPE;
pub use request::{
    AclRuleSpec, EndpointSpec, EventsRequest, ImportRequest, NamespaceSpec, NetworkSpec, TraceSpec,
    MAX_EVENTS_WAIT_MS,
};
pub use response::{
    AclCounterInfo, AclInfo, AclStatsInfo, EndpointInfo, EventInfo, EventsPage, HealthInfo,
    ImportResult, NamespaceInfo, NetworkInfo, NodeInfo, PortMappingInfo, TapInfo, TraceHop,
    TraceResult,
};
pub use route::{decode_request, encode_request, EncodedRequest, MAX_BODY, MAX_IMPORT_BODY};
pub use server::{Server, ServerConfig, Service, MAX_HEAD};
pub use socket::{BindError, DEFAULT_SOCKET};
