//! The read-only TCP listeners (`--metrics-address`, `--web-address`):
//! which addresses they may bind, and a small HTTP server that answers
//! only GET and HEAD.
//!
//! Contract (written up in `docs/console.md`):
//! - An address is `PORT` (loopback, 127.0.0.1), `localhost:PORT`
//!   (127.0.0.1), or an IP literal with a port (`127.0.0.1:8469`,
//!   `[::1]:8469`, `192.0.2.10:8469`). Loopback is the default; a
//!   non-loopback address is bound only when the flag names that address
//!   itself. The wildcards `0.0.0.0` and `::` are refused (they name no
//!   interface, they mean every one), and so are host names (a name may
//!   resolve to an address nobody meant to expose).
//! - Every method other than GET and HEAD is refused with 405 before any
//!   handler runs: there is no write operation to reach.
//! - A request whose `Host` is not an IP literal or `localhost` is refused
//!   (403), so a web page on another site cannot read these listeners
//!   through DNS rebinding.
//! - Handlers run on the blocking pool (they may read the kernel).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE, HOST};
use hyper::StatusCode;
use hyper_util::rt::{TokioIo, TokioTimer};

/// Connections served at once per listener; more wait in the backlog.
const MAX_CONNECTIONS: usize = 64;

/// Parses the value of `flag` (`--web-address`, `--metrics-address`) by
/// the rules in the module doc.
pub fn parse_address(flag: &str, text: &str) -> Result<SocketAddr, String> {
    let wrong = |why: &str| format!("{flag} {text:?}: {why}");
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port));
    }
    if let Some(port) = text.strip_prefix("localhost:") {
        let port = port
            .parse::<u16>()
            .map_err(|_| wrong("expected a port from 0 to 65535 after localhost:"))?;
        return Ok(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port));
    }
    let addr: SocketAddr = text.parse().map_err(|_| {
        wrong(
            "expected PORT, localhost:PORT or IP:PORT with an IP address \
             (e.g. 127.0.0.1:8469, [::1]:8469); host names are not resolved",
        )
    })?;
    if addr.ip().is_unspecified() {
        return Err(wrong(
            "a wildcard address binds every interface; name the one address \
             to serve on (e.g. 127.0.0.1:8469, or a non-loopback IP of this host)",
        ));
    }
    if let IpAddr::V4(v4) = addr.ip() {
        if v4.is_broadcast() || v4.is_multicast() {
            return Err(wrong("expected a unicast address of this host"));
        }
    }
    if addr.ip().is_multicast() {
        return Err(wrong("expected a unicast address of this host"));
    }
    Ok(addr)
}

/// One answer of a handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn ok(content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status: 200,
            content_type,
            body: body.into(),
        }
    }

    /// An error as JSON `{ "error": "…" }`.
    pub fn error(status: u16, message: impl Into<String>) -> Self {
        let body = serde_json::json!({ "error": message.into() });
        Self {
            status,
            content_type: "application/json",
            body: body.to_string().into_bytes(),
        }
    }
}

/// What answers a GET: path and raw query (without `?`) in, reply out.
pub type Handler = Arc<dyn Fn(&str, &str) -> Reply + Send + Sync>;

/// Binds `addr` (no runtime needed), logging a warning for a
/// non-loopback address.
pub fn bind(flag: &str, addr: SocketAddr) -> Result<std::net::TcpListener, String> {
    let listener = std::net::TcpListener::bind(addr)
        .map_err(|e| format!("{flag} {addr}: cannot bind: {e}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("{flag} {addr}: {e}"))?;
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, flag, "serving read-only data on a non-loopback address, without authentication");
    }
    Ok(listener)
}

fn host_allowed(req: &hyper::Request<Incoming>) -> bool {
    let Some(host) = req.headers().get(HOST).and_then(|h| h.to_str().ok()) else {
        return true;
    };
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.parse::<u16>().is_ok() => name,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name == "localhost" || name.parse::<IpAddr>().is_ok()
}

type HttpResponse = hyper::Response<Full<Bytes>>;

/// The HTTP response for `reply` (for HEAD, hyper sends the head only,
/// with the length the body would have).
fn response(reply: Reply) -> HttpResponse {
    let mut r = hyper::Response::new(Full::new(Bytes::from(reply.body)));
    *r.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(reply.content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'self'; img-src 'self' data:"),
    );
    r
}

async fn answer(handler: Handler, req: hyper::Request<Incoming>) -> HttpResponse {
    let method = req.method().clone();
    if method != hyper::Method::GET && method != hyper::Method::HEAD {
        let mut r = response(Reply::error(
            405,
            format!("{method}: this listener is read-only (allowed: GET, HEAD)"),
        ));
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    if !host_allowed(&req) {
        return response(Reply::error(403, "Host must be an IP address or localhost"));
    }
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or_default().to_owned();
    let reply = tokio::task::spawn_blocking(move || handler(&path, &query))
        .await
        .unwrap_or_else(|_| Reply::error(500, "internal error"));
    response(reply)
}

/// Serves `listener` with `handler` until `shutdown` resolves.
pub async fn serve(
    listener: std::net::TcpListener,
    handler: Handler,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10));
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => s.map_err(std::io::Error::other)?,
            () = &mut shutdown => return Ok(()),
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        let handler = handler.clone();
        let service = hyper::service::service_fn(move |req| {
            let handler = handler.clone();
            async move { Ok::<_, std::convert::Infallible>(answer(handler, req).await) }
        });
        let conn = http.serve_connection(TokioIo::new(stream), service);
        tokio::spawn(async move {
            let _slot = slot;
            let _ = conn.await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_default_to_loopback_and_a_public_one_must_be_named() {
        let ok = |t: &str| parse_address("--web-address", t).unwrap().to_string();
        assert_eq!(ok("8469"), "127.0.0.1:8469");
        assert_eq!(ok("localhost:8469"), "127.0.0.1:8469");
        assert_eq!(ok("127.0.0.1:9"), "127.0.0.1:9");
        assert_eq!(ok("[::1]:9"), "[::1]:9");
        // Named explicitly: bound (with a warning at start).
        assert_eq!(ok("192.0.2.10:8469"), "192.0.2.10:8469");
        for (bad, why) in [
            ("0.0.0.0:8469", "wildcard"),
            ("[::]:8469", "wildcard"),
            ("example.com:80", "host names are not resolved"),
            ("localhost:x", "expected a port"),
            ("224.0.0.1:80", "unicast"),
            ("255.255.255.255:80", "unicast"),
            ("", "expected PORT"),
        ] {
            let e = parse_address("--web-address", bad).expect_err(bad);
            assert!(
                e.starts_with("--web-address") && e.contains(why),
                "{bad}: {e}"
            );
        }
    }
}
