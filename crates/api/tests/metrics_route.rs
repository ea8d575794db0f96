//! `GET /metrics` on the API socket: a service's exposition is served as
//! Prometheus text; every other method is refused with 405 without the
//! service seeing anything; a service without metrics (the trait's
//! default) answers 404.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bulkhead_api::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Default)]
struct Counting {
    commands: AtomicUsize,
    scrapes: AtomicUsize,
}

impl Service for Counting {
    async fn handle(&self, _cmd: Command) -> Result<Response, ApiError> {
        self.commands.fetch_add(1, Ordering::SeqCst);
        Ok(Response::Removed)
    }

    fn metrics(&self) -> Option<String> {
        let n = self.scrapes.fetch_add(1, Ordering::SeqCst) + 1;
        Some(format!("# TYPE scrapes_total counter\nscrapes_total {n}\n"))
    }
}

struct NoMetrics;

impl Service for NoMetrics {
    async fn handle(&self, _cmd: Command) -> Result<Response, ApiError> {
        Ok(Response::Removed)
    }
}

async fn raw(socket: &Path, request: &str) -> String {
    let mut s = tokio::net::UnixStream::connect(socket).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn metrics_are_served_read_only_and_only_by_a_service_that_has_them() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("m.sock");
    let service = Arc::new(Counting::default());
    let server = Server::bind(&socket).unwrap();
    tokio::spawn(server.serve(service.clone(), std::future::pending()));

    let get = "GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";
    let text = raw(&socket, get).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains(METRICS_CONTENT_TYPE),
        "{text}"
    );
    assert!(text.ends_with("scrapes_total 1\n"), "{text}");

    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let req = format!(
            "{method} /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 2\r\n\r\n{{}}"
        );
        let text = raw(&socket, &req).await;
        assert!(text.starts_with("HTTP/1.1 405"), "{method}: {text}");
        assert!(text.contains("method_not_allowed"), "{text}");
    }
    assert_eq!(service.scrapes.load(Ordering::SeqCst), 1);
    assert_eq!(service.commands.load(Ordering::SeqCst), 0);

    let other = dir.path().join("n.sock");
    let server = Server::bind(&other).unwrap();
    tokio::spawn(server.serve(Arc::new(NoMetrics), std::future::pending()));
    let text = raw(&other, get).await;
    assert!(text.starts_with("HTTP/1.1 404"), "{text}");
}
