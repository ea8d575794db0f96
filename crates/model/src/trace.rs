//! A packet to trace, as the user gives it: the body of `POST /v1/trace`
//! and what the engine's `trace` validates (it needs the engine's state to
//! resolve endpoint names and host addresses, so validation lives there).

use serde::{Deserialize, Serialize};

use crate::raw;

/// What to trace, every field raw.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceSpec {
    /// Source endpoint name or IP address.
    pub from: String,
    /// Destination endpoint name, IP address or `HOST_IP:PORT`.
    pub to: String,
    /// Protocol name or number.
    #[serde(deserialize_with = "required_scalar")]
    pub protocol: String,
    /// Destination port (or the port of `to` = `IP:PORT`), as given.
    #[serde(
        default,
        deserialize_with = "raw::opt_scalar",
        skip_serializing_if = "Option::is_none"
    )]
    pub port: Option<String>,
    /// The source address the `from` endpoint writes (spoofing when it is
    /// not its own: it is dropped at its switch port).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    /// Source port (default 49152).
    #[serde(
        default,
        deserialize_with = "raw::opt_scalar",
        skip_serializing_if = "Option::is_none"
    )]
    pub source_port: Option<String>,
    /// Trace a packet of an established connection (a reply).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub established: bool,
}

impl TraceSpec {
    /// A new connection's first packet `from -> to`.
    pub fn new(from: &str, to: &str, protocol: &str, port: Option<&str>) -> Self {
        Self {
            from: from.into(),
            to: to.into(),
            protocol: protocol.into(),
            port: port.map(Into::into),
            ..Self::default()
        }
    }
}

fn required_scalar<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    raw::opt_scalar(d)?.ok_or_else(|| serde::de::Error::custom("must not be null"))
}
