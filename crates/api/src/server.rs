//! The daemon side of the transport: JSON over HTTP/1.1 on a Unix socket.
//!
//! [`Server::bind`] places the socket (see [`crate::socket`]);
//! [`Server::serve`] accepts connections until its shutdown future resolves.
//! Each connection is first checked by the peer's kernel credentials
//! ([`crate::gate`]): a peer that is not allowed gets one 403 and the
//! connection is closed; a connection over the caps gets a 503 written
//! without waiting and is closed. Request heads must arrive within the
//! header timeout, which in hyper 1 also bounds the idle time between
//! keep-alive requests; bodies must arrive within the same time after the
//! head (408), and heads are capped at [`MAX_HEAD`] bytes (431). The server
//! turns each request into a [`Command`] with [`decode_request`], hands it to
//! the [`Service`], and writes the [`Response`] (200, 201 for creations, 204
//! for removals) or the [`ApiError`] (status from its code, body
//! `{ "error": { "code", "message" } }`). Bodies over the route's limit are
//! refused with 413 before they are read in full. On shutdown it stops
//! accepting, lets in-flight requests finish (bounded wait), and removes the
//! socket file if it is still the one it bound.

use crate::command::{Command, Response};
use crate::error::{ApiError, ErrorCode};
use crate::gate::{Access, Limiter, Peer};
use crate::route::{body_limit, decode_request};
use crate::socket::{bind_socket, BindError};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::StatusCode;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How long shutdown waits for in-flight requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest request head (start line and headers) accepted; the API's
/// heads are a few hundred bytes.
pub const MAX_HEAD: usize = 16 * 1024;

/// Who may connect and how long and how many connections may stay open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The API group's gid: its members may use the API besides root, and
    /// the socket is made mode 0660 owned by root and this group.
    pub group: Option<u32>,
    /// Time allowed for a request head, for the idle time between requests
    /// on a kept-alive connection, and for a body after its head.
    pub header_timeout: Duration,
    /// Connections open at once, in all.
    pub max_connections: usize,
    /// Connections open at once per uid (uid 0 is held only to the total).
    pub max_connections_per_uid: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            group: None,
            header_timeout: Duration::from_secs(10),
            max_connections: 128,
            max_connections_per_uid: 32,
        }
    }
}

/// What executes commands: the daemon's engine, or a fake in tests.
pub trait Service: Send + Sync + 'static {
    /// Executes one command. Implementations may write `async fn handle`.
    fn handle(&self, cmd: Command) -> impl Future<Output = Result<Response, ApiError>> + Send;

    /// The Prometheus text exposition answered to `GET /metrics` (outside
    /// `/v1`: the path scrapers expect); `None` (the default): no metrics,
    /// 404. Runs on the blocking pool, so it may read the kernel.
    fn metrics(&self) -> Option<String> {
        None
    }
}

/// A bound, not yet serving, API socket.
#[derive(Debug)]
pub struct Server {
    listener: std::os::unix::net::UnixListener,
    path: PathBuf,
    inode: (u64, u64),
    config: ServerConfig,
}

impl Server {
    /// Binds the socket at `path` with mode 0600, for root only, with the
    /// default limits. Needs no runtime.
    pub fn bind(path: impl AsRef<Path>) -> Result<Server, BindError> {
        Self::bind_with(path, ServerConfig::default())
    }

    /// Binds the socket at `path` (mode 0600, or 0660 with the API group
    /// as its group) to serve with `config`. Needs no runtime.
    pub fn bind_with(path: impl AsRef<Path>, config: ServerConfig) -> Result<Server, BindError> {
        let path = path.as_ref().to_owned();
        let listener = bind_socket(&path, config.group)?;
        let meta = std::fs::metadata(&path).map_err(|source| BindError::Io {
            action: "inspect",
            path: path.clone(),
            source,
        })?;
        Ok(Server {
            listener,
            path,
            inode: (meta.dev(), meta.ino()),
            config,
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves requests until `shutdown` resolves. Must run inside a tokio runtime.
    pub async fn serve<S: Service>(
        self,
        service: Arc<S>,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        let listener = tokio::net::UnixListener::from_std(self.listener)?;
        let graceful = GracefulShutdown::new();
        let cfg = self.config;
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(cfg.header_timeout)
            .max_buf_size(MAX_HEAD.max(8192))
            .max_header_size(MAX_HEAD);
        // A refused peer gets its 403, then the connection closes.
        let mut refusing = http.clone();
        refusing.keep_alive(false);
        let access = Access { group: cfg.group };
        let limiter = Limiter::new(cfg.max_connections, cfg.max_connections_per_uid);
        let mut busy_log = RateLog::default();
        tokio::pin!(shutdown);
        loop {
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let peer = match Peer::of(&stream) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "API connection refused: no peer credentials");
                    continue;
                }
            };
            let Some(slot) = limiter.admit(peer.uid) else {
                busy_log.warn(&peer, limiter.open());
                // Best effort, never waits (the socket is non-blocking):
                // the peer sees a 503 or a close. Written on the plain
                // socket, since tokio's `try_write` on a stream the reactor
                // has not yet seen writable would not even try.
                if let Ok(mut s) = stream.into_std() {
                    let _ = std::io::Write::write(&mut s, &busy_response());
                }
                continue;
            };
            let io = TokioIo::new(stream);
            if access.allows(&peer) {
                let svc = service.clone();
                let timeout = cfg.header_timeout;
                let handler =
                    hyper::service::service_fn(move |req| respond(svc.clone(), req, timeout));
                let conn = graceful.watch(http.serve_connection(io, handler));
                tokio::spawn(async move {
                    let _slot = slot;
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            } else {
                tracing::warn!(
                    uid = peer.uid,
                    gid = peer.gid,
                    pid = peer.pid,
                    "API connection refused: not root and not in the API group"
                );
                let uid = peer.uid;
                let handler = hyper::service::service_fn(move |_req| async move {
                    Ok::<_, Infallible>(forbidden(uid))
                });
                let conn = graceful.watch(refusing.serve_connection(io, handler));
                tokio::spawn(async move {
                    let _slot = slot;
                    let _ = conn.await;
                });
            }
        }
        drop(listener);
        remove_if_ours(&self.path, self.inode);
        if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("in-flight API requests did not finish in time");
        }
        Ok(())
    }
}

fn remove_if_ours(path: &Path, inode: (u64, u64)) {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if (meta.dev(), meta.ino()) == inode {
            let _ = std::fs::remove_file(path);
        }
    }
}

type HttpResponse = hyper::Response<Full<Bytes>>;

fn forbidden(uid: u32) -> HttpResponse {
    let e = ApiError::new(
        ErrorCode::Forbidden,
        format!(
            "uid {uid} may not use bulkheadd's API: allowed are root and members of the \
             group given with bulkheadd --api-group"
        ),
    );
    json_response(StatusCode::FORBIDDEN, Some(e.to_body()))
}

/// The whole 503 answer to a connection over the caps, written raw.
fn busy_response() -> Vec<u8> {
    let body = ApiError::unavailable("too many open connections to bulkheadd; try again").to_body();
    let mut out = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    out
}

/// Logs refusals over the connection caps at most once a second, so a
/// flood of connections cannot flood the log as well.
#[derive(Debug, Default)]
struct RateLog {
    last: Option<std::time::Instant>,
    suppressed: u64,
}

impl RateLog {
    fn warn(&mut self, peer: &Peer, open: usize) {
        let now = std::time::Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            self.suppressed += 1;
            return;
        }
        tracing::warn!(
            uid = peer.uid,
            pid = peer.pid,
            open,
            suppressed = self.suppressed,
            "API connection refused: too many open connections"
        );
        self.last = Some(now);
        self.suppressed = 0;
    }
}

async fn respond<S: Service>(
    service: Arc<S>,
    req: hyper::Request<Incoming>,
    body_timeout: Duration,
) -> Result<HttpResponse, Infallible> {
    let method = req.method().as_str().to_owned();
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    if path.split('?').next() == Some("/metrics") {
        let (status, content_type, body) = crate::metrics_route::answer(service, &method).await;
        let mut response = hyper::Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        return Ok(response);
    }
    let result = run(&*service, req, &method, &path, body_timeout).await;
    let response = match result {
        Ok((status, body)) => json_response(status, body),
        Err(e) => {
            let status = StatusCode::from_u16(e.code.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            json_response(status, Some(e.to_body()))
        }
    };
    tracing::debug!(%method, %path, status = response.status().as_u16(), "api request");
    Ok(response)
}

async fn run<S: Service>(
    service: &S,
    req: hyper::Request<Incoming>,
    method: &str,
    path: &str,
    body_timeout: Duration,
) -> Result<(StatusCode, Option<Vec<u8>>), ApiError> {
    let limit = body_limit(path);
    let too_large = || {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("{method} {path}: body is over the limit of {limit} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let collect = Limited::new(req.into_body(), limit).collect();
    let Ok(collected) = tokio::time::timeout(body_timeout, collect).await else {
        return Err(ApiError::new(
            ErrorCode::RequestTimeout,
            format!(
                "{method} {path}: the body did not arrive within {} ms",
                body_timeout.as_millis()
            ),
        ));
    };
    let body = match collected {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return Err(too_large()),
        Err(e) => {
            return Err(ApiError::bad_request(format!(
                "{method} {path}: cannot read body: {e}"
            )))
        }
    };
    let cmd = decode_request(method, path, &body)?;
    let status = if cmd.creates() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let response = service.handle(cmd).await?;
    let body = response.to_body().map_err(|e| {
        ApiError::internal(format!(
            "cannot encode the response to {method} {path}: {e}"
        ))
    })?;
    match body {
        None => Ok((StatusCode::NO_CONTENT, None)),
        Some(body) => Ok((status, Some(body))),
    }
}

fn json_response(status: StatusCode, body: Option<Vec<u8>>) -> HttpResponse {
    let has_body = body.is_some();
    let mut response = hyper::Response::new(Full::new(Bytes::from(body.unwrap_or_default())));
    *response.status_mut() = status;
    if has_body {
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    response
}
