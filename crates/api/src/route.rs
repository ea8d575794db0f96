//! The HTTP routes: a pure translation between requests and [`Command`]s.
//!
//! [`decode_request`] is the server's route parser and the fuzz target's
//! entry point: it does no I/O, never panics, and every failure is a one-line
//! [`ApiError`] that names the route, and for body errors the field.
//! [`encode_request`] is its inverse, used by the client; for every command
//! `decode_request(encode_request(c)) == c`. Path segments are percent-encoded
//! so no name can change the route.

use crate::command::Command;
use crate::error::{ApiError, ErrorCode};
use serde::de::DeserializeOwned;

/// Largest accepted body, except on `/v1/import`.
pub const MAX_BODY: usize = 1 << 20;
/// Largest accepted body on `/v1/import`.
pub const MAX_IMPORT_BODY: usize = 16 << 20;

/// The body limit that applies to a request path.
pub fn body_limit(path: &str) -> usize {
    if path.split('?').next() == Some("/v1/import") {
        MAX_IMPORT_BODY
    } else {
        MAX_BODY
    }
}

/// An HTTP request as the client sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedRequest {
    /// `GET`, `POST` or `DELETE`.
    pub method: &'static str,
    /// Absolute path, segments percent-encoded.
    pub path: String,
    /// JSON body, if the route takes one.
    pub body: Option<Vec<u8>>,
}

/// Parses one HTTP request into a [`Command`]. Pure; see the module docs.
pub fn decode_request(method: &str, path: &str, body: &[u8]) -> Result<Command, ApiError> {
    let route = format!("{method} {path}");
    let (path, stats) = acl_stats_query(&route, path)?;
    if body.len() > body_limit(path) {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "{route}: body of {} bytes is over the limit of {} bytes",
                body.len(),
                body_limit(path)
            ),
        ));
    }
    let segments = split_path(path).ok_or_else(|| no_route(&route))?;
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let allowed: &[&str] = match segs.as_slice() {
        ["health"] => &["GET"],
        ["networks" | "namespaces" | "endpoints"] => &["GET", "POST"],
        ["nodes"] => &["GET"],
        ["nodes", _] => &["DELETE"],
        ["networks" | "namespaces" | "endpoints", _] => &["GET", "DELETE"],
        ["endpoints", _, "acls"] => &["GET", "POST"],
        ["endpoints", _, "acls", _] => &["DELETE"],
        ["trace" | "import" | "events"] => &["POST"],
        _ => return Err(no_route(&route)),
    };
    if !allowed.contains(&method) {
        return Err(ApiError::new(
            ErrorCode::MethodNotAllowed,
            format!(
                "{route}: method not allowed (allowed: {})",
                allowed.join(", ")
            ),
        ));
    }
    if method != "POST" && !body.is_empty() {
        return Err(ApiError::bad_request(format!("{route}: takes no body")));
    }
    let name = |i: usize| segments[i].clone();
    Ok(match (method, segs.as_slice()) {
        ("GET", ["health"]) => Command::Health,
        ("GET", ["networks"]) => Command::NetworkList,
        ("POST", ["networks"]) => Command::NetworkCreate(parse_body(&route, body)?),
        ("GET", ["networks", _]) => Command::NetworkInspect { name: name(1) },
        ("DELETE", ["networks", _]) => Command::NetworkRemove { name: name(1) },
        ("GET", ["namespaces"]) => Command::NamespaceList,
        ("POST", ["namespaces"]) => Command::NamespaceCreate(parse_body(&route, body)?),
        ("GET", ["namespaces", _]) => Command::NamespaceInspect { name: name(1) },
        ("DELETE", ["namespaces", _]) => Command::NamespaceRemove { name: name(1) },
        ("GET", ["endpoints"]) if stats => Command::EndpointListAll,
        ("GET", ["endpoints"]) => Command::EndpointList,
        ("GET", ["nodes"]) => Command::NodeList,
        ("DELETE", ["nodes", _]) => Command::NodeRemove { name: name(1) },
        ("POST", ["endpoints"]) => Command::EndpointCreate(parse_body(&route, body)?),
        ("GET", ["endpoints", _]) => Command::EndpointInspect { name: name(1) },
        ("DELETE", ["endpoints", _]) => Command::EndpointRemove { name: name(1) },
        ("GET", ["endpoints", _, "acls"]) if stats => Command::AclStats { endpoint: name(1) },
        ("GET", ["endpoints", _, "acls"]) => Command::AclList { endpoint: name(1) },
        ("POST", ["endpoints", _, "acls"]) => Command::AclAdd {
            endpoint: name(1),
            rule: parse_body(&route, body)?,
        },
        ("DELETE", ["endpoints", _, "acls", _]) => Command::AclRemove {
            endpoint: name(1),
            id: name(3),
        },
        ("POST", ["trace"]) => Command::Trace(parse_body(&route, body)?),
        ("POST", ["import"]) => Command::Import(parse_body(&route, body)?),
        ("POST", ["events"]) => Command::Events(parse_body(&route, body)?),
        _ => return Err(no_route(&route)),
    })
}

/// The path without its query, and whether the query asks for ACL
/// counters (`stats=true|false`, on `GET /v1/endpoints/{name}/acls`) or
/// for every cluster node's endpoints (`all_nodes=true|false`, on `GET
/// /v1/endpoints`); no other query is accepted.
fn acl_stats_query<'a>(route: &str, path: &'a str) -> Result<(&'a str, bool), ApiError> {
    let Some((bare, query)) = path.split_once('?') else {
        return Ok((path, false));
    };
    if bare == "/v1/endpoints" && route.starts_with("GET ") {
        return match query {
            "all_nodes=true" => Ok((bare, true)),
            "all_nodes=false" | "" => Ok((bare, false)),
            _ => Err(ApiError::bad_request(format!(
                "{route}: query {query:?} is not supported (allowed: all_nodes=true, all_nodes=false)"
            ))),
        };
    }
    let acls = matches!(
        split_path(bare).as_deref(),
        Some([e, _, a]) if e == "endpoints" && a == "acls"
    );
    if !acls || !route.starts_with("GET ") {
        return Err(ApiError::bad_request(format!(
            "{route}: query parameters are not supported"
        )));
    }
    match query {
        "stats=true" => Ok((bare, true)),
        "stats=false" | "" => Ok((bare, false)),
        _ => Err(ApiError::bad_request(format!(
            "{route}: query {query:?} is not supported (allowed: stats=true, stats=false)"
        ))),
    }
}

/// Builds the HTTP request for a command. Inverse of [`decode_request`].
pub fn encode_request(cmd: &Command) -> Result<EncodedRequest, serde_json::Error> {
    let seg = percent_encode;
    let (method, path, body) = match cmd {
        Command::Health => ("GET", "/v1/health".to_owned(), None),
        Command::NetworkCreate(r) => ("POST", "/v1/networks".into(), Some(serde_json::to_vec(r)?)),
        Command::NetworkList => ("GET", "/v1/networks".into(), None),
        Command::NetworkInspect { name } => ("GET", format!("/v1/networks/{}", seg(name)), None),
        Command::NetworkRemove { name } => ("DELETE", format!("/v1/networks/{}", seg(name)), None),
        Command::NamespaceCreate(r) => (
            "POST",
            "/v1/namespaces".into(),
            Some(serde_json::to_vec(r)?),
        ),
        Command::NamespaceList => ("GET", "/v1/namespaces".into(), None),
        Command::NamespaceInspect { name } => {
            ("GET", format!("/v1/namespaces/{}", seg(name)), None)
        }
        Command::NamespaceRemove { name } => {
            ("DELETE", format!("/v1/namespaces/{}", seg(name)), None)
        }
        Command::EndpointCreate(r) => {
            ("POST", "/v1/endpoints".into(), Some(serde_json::to_vec(r)?))
        }
        Command::EndpointList => ("GET", "/v1/endpoints".into(), None),
        Command::EndpointListAll => ("GET", "/v1/endpoints?all_nodes=true".into(), None),
        Command::NodeList => ("GET", "/v1/nodes".into(), None),
        Command::NodeRemove { name } => ("DELETE", format!("/v1/nodes/{}", seg(name)), None),
        Command::EndpointInspect { name } => ("GET", format!("/v1/endpoints/{}", seg(name)), None),
        Command::EndpointRemove { name } => {
            ("DELETE", format!("/v1/endpoints/{}", seg(name)), None)
        }
        Command::AclAdd { endpoint, rule } => (
            "POST",
            format!("/v1/endpoints/{}/acls", seg(endpoint)),
            Some(serde_json::to_vec(rule)?),
        ),
        Command::AclList { endpoint } => {
            ("GET", format!("/v1/endpoints/{}/acls", seg(endpoint)), None)
        }
        Command::AclStats { endpoint } => (
            "GET",
            format!("/v1/endpoints/{}/acls?stats=true", seg(endpoint)),
            None,
        ),
        Command::AclRemove { endpoint, id } => (
            "DELETE",
            format!("/v1/endpoints/{}/acls/{}", seg(endpoint), seg(id)),
            None,
        ),
        Command::Trace(r) => ("POST", "/v1/trace".into(), Some(serde_json::to_vec(r)?)),
        Command::Import(r) => ("POST", "/v1/import".into(), Some(serde_json::to_vec(r)?)),
        Command::Events(r) => ("POST", "/v1/events".into(), Some(serde_json::to_vec(r)?)),
    };
    Ok(EncodedRequest { method, path, body })
}

fn no_route(route: &str) -> ApiError {
    ApiError::not_found(format!(
        "{route}: no such route (see docs/api.openapi.yaml)"
    ))
}

/// Splits `/v1/a/b` into decoded segments `[a, b]`. `None` when the prefix
/// is wrong, a segment is empty (a trailing `/` included: `/v1/networks/`
/// must not turn an empty name into a list), or an escape is invalid.
fn split_path(path: &str) -> Option<Vec<String>> {
    let rest = path.strip_prefix("/v1/")?;
    rest.split('/')
        .map(|s| percent_decode(s).filter(|d| !d.is_empty()))
        .collect()
}

fn parse_body<T: DeserializeOwned>(route: &str, body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(format!("{route}: needs a JSON body")));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            ApiError::bad_request(format!("{route}: invalid body: {inner}"))
        } else {
            ApiError::bad_request(format!("{route}: invalid field `{path}`: {inner}"))
        }
    })?;
    de.end()
        .map_err(|e| ApiError::bad_request(format!("{route}: invalid body: {e}")))?;
    Ok(value)
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn percent_encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes; `None` on a bad escape or invalid UTF-8.
fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            if !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
#[path = "route_tests.rs"]
mod tests;
