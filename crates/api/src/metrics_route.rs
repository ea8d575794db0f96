//! `GET /metrics` on the API socket: the service's Prometheus text
//! exposition ([`Service::metrics`]), outside `/v1` because that is the
//! path scrapers expect.
//!
//! Contract: read-only — any other method is refused with 405 and nothing
//! runs; the body of a request is ignored; the exposition is gathered on
//! the blocking pool (it may read the kernel); a service without metrics
//! answers 404.

use std::sync::Arc;

use hyper::StatusCode;

use crate::error::ApiError;
use crate::server::Service;

/// The content type of the Prometheus text exposition format.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

const JSON: &str = "application/json";

/// Status, content type and body of the answer to `method /metrics`.
pub(crate) async fn answer<S: Service>(
    service: Arc<S>,
    method: &str,
) -> (StatusCode, &'static str, Vec<u8>) {
    if method != "GET" {
        let e = ApiError::new(
            crate::error::ErrorCode::MethodNotAllowed,
            format!("{method} /metrics: method not allowed (allowed: GET)"),
        );
        return (StatusCode::METHOD_NOT_ALLOWED, JSON, e.to_body());
    }
    match tokio::task::spawn_blocking(move || service.metrics()).await {
        Ok(Some(text)) => (StatusCode::OK, METRICS_CONTENT_TYPE, text.into_bytes()),
        Ok(None) => {
            let e = ApiError::not_found("GET /metrics: this service has no metrics");
            (StatusCode::NOT_FOUND, JSON, e.to_body())
        }
        Err(_) => {
            let e = ApiError::internal("GET /metrics: gathering the metrics failed");
            (StatusCode::INTERNAL_SERVER_ERROR, JSON, e.to_body())
        }
    }
}
