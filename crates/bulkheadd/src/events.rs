//! `POST /v1/events`: the engine's events ring as API pages.
//!
//! Contract: answers with the events after the request's cursor (all kept
//! ones without one), optionally only those naming an endpoint, waiting up
//! to the request's `wait_ms` (capped at [`MAX_EVENTS_WAIT_MS`]) for one to
//! exist; never takes the engine lock for long (the ring has its own), so a
//! waiting reader holds up no operation. `last` is the ring's newest
//! sequence number, the cursor of the next call.

use std::time::Duration;

use bulkhead_api::{EventInfo, EventsPage, EventsRequest, Response, MAX_EVENTS_WAIT_MS};
use bulkhead_engine::events::{Event, EventKind};
use bulkhead_engine::{Engine, EngineError};
use bulkhead_model::Protocol;

fn kind(k: EventKind) -> &'static str {
    match k {
        EventKind::Drop => "drop",
        EventKind::Tamper => "tamper",
        EventKind::Restore => "restore",
        EventKind::Reconcile => "reconcile",
    }
}

/// The API's view of one event.
pub fn info(e: &Event) -> EventInfo {
    EventInfo {
        seq: e.seq,
        time_ms: e.time_ms,
        kind: kind(e.kind).into(),
        endpoint: e.endpoint.clone(),
        namespace: e.namespace.clone(),
        point: e.point.clone(),
        direction: e.direction.clone(),
        rule: e.rule.clone(),
        protocol: e.protocol.map(|p| Protocol::Number(p).to_string()),
        src: e.src.map(|a| a.to_string()),
        dst: e.dst.map(|a| a.to_string()),
        src_port: e.src_port,
        dst_port: e.dst_port,
        detail: e.detail.clone(),
    }
}

/// Whether `e` names endpoint `name` (tamper events list every endpoint of
/// the namespace, comma separated).
fn names(e: &Event, name: &str) -> bool {
    e.endpoint
        .as_deref()
        .is_some_and(|list| list.split(',').any(|n| n == name))
}

pub fn events(engine: &Engine, r: EventsRequest) -> Result<Response, EngineError> {
    let ring = engine.events();
    if let Some(name) = &r.endpoint {
        // An endpoint deleted since may still have events; only a name that
        // is neither an endpoint nor in any event is refused.
        let known = engine.endpoints().iter().any(|e| e.name.as_str() == name)
            || !ring.since(0, |e| names(e, name)).is_empty();
        if !known {
            return Err(EngineError::not_found("endpoint", name.clone()));
        }
    }
    let keep = |e: &Event| r.endpoint.as_deref().is_none_or(|n| names(e, n));
    let after = r.after.unwrap_or(0);
    let wait = Duration::from_millis(r.wait_ms.unwrap_or(0).min(MAX_EVENTS_WAIT_MS));
    let events = if wait.is_zero() {
        ring.since(after, keep)
    } else {
        ring.wait(after, wait, keep)
    };
    Ok(Response::Events(EventsPage {
        events: events.iter().map(info).collect(),
        last: ring.last_seq(),
    }))
}
