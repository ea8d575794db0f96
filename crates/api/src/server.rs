//! The daemon side of the transport: JSON over HTTP/1.1 on a Unix socket.
//!
//! [`Server::bind`] places the socket (see [`crate::socket`]);
//! [`Server::serve`] accepts connections until its shutdown future resolves,
//! turns each request into a [`Command`] with [`decode_request`], hands it to
//! the [`Service`], and writes the [`Response`] (200, 201 for creations, 204
//! for removals) or the [`ApiError`] (status from its code, body
//! `{ "error": { "code", "message" } }`). Bodies over the route's limit are
//! refused with 413 before they are read in full. On shutdown it stops
//! accepting, lets in-flight requests finish (bounded wait), and removes the
//! socket file if it is still the one it bound.

use crate::command::{Command, Response};
use crate::error::{ApiError, ErrorCode};
use crate::route::{body_limit, decode_request};
use crate::socket::{bind_socket, BindError};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::StatusCode;
use hyper_util::rt::TokioIo;
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

/// What executes commands: the daemon's engine, or a fake in tests.
pub trait Service: Send + Sync + 'static {
    /// Executes one command. Implementations may write `async fn handle`.
    fn handle(&self, cmd: Command) -> impl Future<Output = Result<Response, ApiError>> + Send;
}

/// A bound, not yet serving, API socket.
#[derive(Debug)]
pub struct Server {
    listener: std::os::unix::net::UnixListener,
    path: PathBuf,
    inode: (u64, u64),
}

impl Server {
    /// Binds the socket at `path` with mode 0600. Needs no runtime.
    pub fn bind(path: impl AsRef<Path>) -> Result<Server, BindError> {
        let path = path.as_ref().to_owned();
        let listener = bind_socket(&path)?;
        let meta = std::fs::metadata(&path).map_err(|source| BindError::Io {
            action: "inspect",
            path: path.clone(),
            source,
        })?;
        Ok(Server {
            listener,
            path,
            inode: (meta.dev(), meta.ino()),
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
        let http = hyper::server::conn::http1::Builder::new();
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
            let svc = service.clone();
            let handler = hyper::service::service_fn(move |req| respond(svc.clone(), req));
            let conn = http.serve_connection(TokioIo::new(stream), handler);
            let conn = graceful.watch(conn);
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
            });
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

async fn respond<S: Service>(
    service: Arc<S>,
    req: hyper::Request<Incoming>,
) -> Result<HttpResponse, Infallible> {
    let method = req.method().as_str().to_owned();
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    let result = run(&*service, req, &method, &path).await;
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
    let body = match Limited::new(req.into_body(), limit).collect().await {
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
