//! Request bodies: what the user typed, not yet validated.
//!
//! The bodies that create objects (and the trace query) are the model's raw
//! specs, re-exported here, so a request reaches the engine without a copy;
//! events and import are the API's own. Every field is raw text (numbers
//! are accepted from JSON clients and kept as text); the daemon turns these
//! into domain types with errors that name the field. Unknown fields are
//! refused (`deny_unknown_fields`) so a typo never silently becomes a
//! default. Path parameters (the endpoint of an ACL) are not part of these
//! bodies; the [`crate::Command`] carries them.

use serde::{Deserialize, Serialize};

/// `POST /v1/endpoints/{endpoint}/acls`: one custom ACL rule, the model's
/// own raw rule (the endpoint is a path parameter).
pub use bulkhead_model::AclRuleSpec;
/// `POST /v1/endpoints`: the model's raw endpoint.
pub use bulkhead_model::EndpointSpec;
/// `POST /v1/namespaces`: the model's raw namespace.
pub use bulkhead_model::NamespaceSpec;
/// `POST /v1/networks`: the model's raw network.
pub use bulkhead_model::NetworkSpec;
/// `POST /v1/trace`: explain the verdict for one packet.
pub use bulkhead_model::TraceSpec;

/// `POST /v1/events`: recent events (drops, tampering, repairs), oldest
/// first. A long poll: with `wait_ms`, the daemon answers as soon as an
/// event newer than `after` exists, or after `wait_ms` (at most
/// [`MAX_EVENTS_WAIT_MS`]) with none; `bulkhead events --follow` repeats it
/// with the last sequence number it saw.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsRequest {
    /// Only events of this endpoint (name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Only events with a sequence number above this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<u64>,
    /// How long to wait for a newer event, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
}

/// The longest wait of one `POST /v1/events`.
pub const MAX_EVENTS_WAIT_MS: u64 = 10_000;

/// `POST /v1/import`: an HCN v2 JSON document, sent as the body itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ImportRequest {
    /// The document, untouched; the daemon maps it to the model.
    pub document: serde_json::Value,
}
