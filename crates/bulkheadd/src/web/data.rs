//! The console's JSON: the same shapes as the API's answers (built by the
//! same [`crate::dispatch`]), so the page shows exactly what `bulkhead`
//! would, and only read-only commands are ever dispatched from here.
//!
//! Contract: `/api/topology` is every network, namespace and endpoint,
//! each endpoint with its ACLs and the counters of every rule at both
//! points (as `acl ls --stats`), each counter marked allowing or dropping;
//! `/api/events` is the newest events after a cursor (at most
//! [`MAX_EVENTS`]); `/api/trace` is `bulkhead trace` from query parameters.

use std::collections::BTreeMap;

use bulkhead_api::{Command, EventsRequest, Response, TraceSpec};
use bulkhead_engine::Engine;
use serde_json::{json, Value};

use crate::listen::Reply;
use crate::service::{api_error, dispatch};

/// The most events one `/api/events` answer carries (the newest).
pub const MAX_EVENTS: usize = 100;

/// Runs a read-only command; an error becomes the API's status and text.
fn read(engine: &Engine, cmd: Command) -> Result<Response, Reply> {
    dispatch(engine, cmd).map_err(|e| {
        let e = api_error(e);
        Reply::error(e.code.http_status(), e.message)
    })
}

fn value(r: Response) -> Value {
    serde_json::to_value(r).unwrap_or(Value::Null)
}

pub fn topology(engine: &Engine) -> Result<Value, Reply> {
    let networks = value(read(engine, Command::NetworkList)?);
    let namespaces = value(read(engine, Command::NamespaceList)?);
    let Response::Endpoints(endpoints) = read(engine, Command::EndpointList)? else {
        return Err(Reply::error(500, "endpoint list: unexpected answer"));
    };
    let mut out = Vec::new();
    for e in endpoints {
        let name = e.name.clone();
        // One read of the kernel's counters, for the rows and their verdicts.
        let (Ok(acls), Ok(counters)) = (engine.acls(&name), engine.acl_counters(&name)) else {
            // Removed since the listing: left out of this picture.
            continue;
        };
        let stats = crate::convert::acl_stats(&acls, &counters);
        let mut rows = serde_json::to_value(&stats.counters).unwrap_or(Value::Null);
        if let Value::Array(rows) = &mut rows {
            for (row, c) in rows.iter_mut().zip(&counters) {
                let allows = crate::metrics::allows(c, &acls);
                row["verdict"] = json!(if allows { "allowed" } else { "dropped" });
            }
        }
        let mut ep = serde_json::to_value(&e).unwrap_or(Value::Null);
        ep["acls"] = serde_json::to_value(&stats.acls).unwrap_or(Value::Null);
        ep["counters"] = rows;
        out.push(ep);
    }
    Ok(json!({
        "networks": networks,
        "namespaces": namespaces,
        "endpoints": out,
        "last_event": engine.events().last_seq(),
    }))
}

pub fn events(engine: &Engine, q: &BTreeMap<String, String>) -> Result<Value, Reply> {
    let after = match q.get("after") {
        None => None,
        Some(a) => Some(a.parse::<u64>().map_err(|_| {
            Reply::error(
                400,
                format!("after {a:?}: expected an event sequence number"),
            )
        })?),
    };
    let request = EventsRequest {
        after,
        endpoint: q.get("endpoint").cloned().filter(|e| !e.is_empty()),
        wait_ms: None,
    };
    let Response::Events(mut page) = read(engine, Command::Events(request))? else {
        return Err(Reply::error(500, "events: unexpected answer"));
    };
    let skip = page.events.len().saturating_sub(MAX_EVENTS);
    page.events.drain(..skip);
    Ok(serde_json::to_value(page).unwrap_or(Value::Null))
}

pub fn trace(engine: &Engine, q: &BTreeMap<String, String>) -> Result<Value, Reply> {
    let field = |k: &str| q.get(k).cloned().filter(|v| !v.is_empty());
    let (Some(from), Some(to)) = (field("from"), field("to")) else {
        return Err(Reply::error(400, "trace: from and to are required"));
    };
    let request = TraceSpec {
        from,
        to,
        protocol: field("protocol").unwrap_or_else(|| "tcp".into()),
        port: field("port"),
        source_ip: field("source_ip"),
        source_port: field("source_port"),
        established: matches!(
            q.get("established").map(String::as_str),
            Some("true" | "on" | "1")
        ),
    };
    Ok(value(read(engine, Command::Trace(request))?))
}
