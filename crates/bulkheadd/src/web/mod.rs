//! The web console (`bulkheadd --web-address`): a read-only page that draws
//! the host's topology and shows each endpoint's ACLs with live counters,
//! the recent drops, and a trace form.
//!
//! Contract: everything the browser loads is embedded in the binary
//! (`include_str!`: one HTML page, one script, one style sheet; no CDN, no
//! fonts, works offline), served by [`crate::listen`], which refuses every
//! method but GET and HEAD. The page polls three read-only JSON routes
//! ([`data`]): `/api/topology`, `/api/events?after=SEQ`, and
//! `/api/trace?from=…&to=…` (a trace computes a verdict, it changes
//! nothing). `/metrics` is served here too, for convenience. See
//! `docs/console.md`.

pub mod data;

use std::collections::BTreeMap;
use std::sync::Arc;

use bulkhead_engine::Engine;

use crate::listen::{Handler, Reply};
use crate::metrics::Metrics;

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/console.js");
const STYLE: &str = include_str!("assets/console.css");

const JSON: &str = "application/json";

/// The console's request handler over `engine`.
pub fn handler(engine: Arc<Engine>, metrics: Arc<Metrics>) -> Handler {
    Arc::new(move |path, query| route(&engine, &metrics, path, query))
}

fn json(result: Result<serde_json::Value, Reply>) -> Reply {
    match result {
        Ok(v) => Reply::ok(JSON, v.to_string()),
        Err(e) => e,
    }
}

fn route(engine: &Engine, metrics: &Metrics, path: &str, query: &str) -> Reply {
    let q = parse_query(query);
    match path {
        "/" | "/index.html" => Reply::ok("text/html; charset=utf-8", INDEX),
        "/console.js" => Reply::ok("text/javascript; charset=utf-8", SCRIPT),
        "/console.css" => Reply::ok("text/css; charset=utf-8", STYLE),
        "/api/topology" => json(data::topology(engine)),
        "/api/events" => json(data::events(engine, &q)),
        "/api/trace" => json(data::trace(engine, &q)),
        "/metrics" => Reply::ok(bulkhead_api::METRICS_CONTENT_TYPE, metrics.render(engine)),
        _ => Reply::error(404, format!("{path}: no such page")),
    }
}

/// `a=1&b=x%20y` → {a: 1, b: "x y"}; `+` is a space. Undecodable escapes
/// are kept as written.
pub fn parse_query(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 3 <= bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_decode_escapes_and_plus() {
        let q = parse_query("from=ep%201&to=10.0.0.2%3A80&x=a+b&bad=%zz&tail=%4");
        assert_eq!(q["from"], "ep 1");
        assert_eq!(q["to"], "10.0.0.2:80");
        assert_eq!(q["x"], "a b");
        assert_eq!(q["bad"], "%zz");
        assert_eq!(q["tail"], "%4");
    }

    #[test]
    fn assets_are_embedded_and_reference_nothing_outside() {
        for asset in [INDEX, SCRIPT, STYLE] {
            // The SVG namespace is a name, not something loaded.
            let asset = asset.replace("http://www.w3.org/2000/svg", "");
            assert!(!asset.contains("http://") && !asset.contains("https://"));
            assert!(!asset.contains("//cdn") && !asset.contains("@import"));
        }
        assert!(INDEX.contains("console.js") && INDEX.contains("console.css"));
    }
}
