//! The server's bounds on one connection, with a fake service: a head over
//! `MAX_HEAD` gets 431, a body that does not follow its head gets 408 after
//! the header timeout, an idle kept-alive connection is closed after it, and
//! a head that never finishes is cut off at the deadline even though bytes
//! keep coming. Each case is timed against a server with the default
//! (10 s) timeout too, which must still be holding the connection.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bulkhead_api::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

struct Ok200;

impl Service for Ok200 {
    async fn handle(&self, _cmd: Command) -> Result<Response, ApiError> {
        Ok(Response::Health(HealthInfo {
            status: "ok".into(),
            version: "test".into(),
        }))
    }
}

fn serve(dir: &Path, name: &str, header_timeout: Duration) -> std::path::PathBuf {
    let socket = dir.join(name);
    let config = ServerConfig {
        header_timeout,
        ..ServerConfig::default()
    };
    let server = Server::bind_with(&socket, config).expect("bind");
    tokio::spawn(server.serve(Arc::new(Ok200), std::future::pending()));
    socket
}

/// Reads until the peer closes or `limit` passes; (text, closed by peer).
async fn read_until_closed(s: &mut UnixStream, limit: Duration) -> (String, bool) {
    let mut out = Vec::new();
    let closed = tokio::time::timeout(limit, s.read_to_end(&mut out))
        .await
        .is_ok();
    (String::from_utf8_lossy(&out).into_owned(), closed)
}

#[tokio::test]
async fn heads_bodies_and_idle_connections_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let short = serve(dir.path(), "short.sock", Duration::from_millis(300));
    let long = serve(dir.path(), "long.sock", Duration::from_secs(10));

    // An oversized head: refused whatever the timeout.
    let mut s = UnixStream::connect(&short).await.unwrap();
    let pad = "a".repeat(MAX_HEAD + 1024);
    let head = format!("GET /v1/health HTTP/1.1\r\nhost: x\r\nx-pad: {pad}\r\n\r\n");
    let _ = s.write_all(head.as_bytes()).await;
    let (text, _) = read_until_closed(&mut s, Duration::from_secs(5)).await;
    assert!(text.starts_with("HTTP/1.1 431"), "{text:?}");

    for (socket, bounded) in [(&long, false), (&short, true)] {
        // A body promised and never sent.
        let mut body = UnixStream::connect(socket).await.unwrap();
        body.write_all(b"POST /v1/namespaces HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\n")
            .await
            .unwrap();
        // An idle kept-alive connection after one answered request.
        let mut idle = UnixStream::connect(socket).await.unwrap();
        idle.write_all(b"GET /v1/health HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        // A head trickled a byte every 50 ms, never finished.
        let mut slow = UnixStream::connect(socket).await.unwrap();
        let trickle = tokio::spawn(async move {
            for b in b"GET /v1/health HTTP/1.1\r\nhost: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                .iter()
                .cycle()
            {
                if slow.write_all(&[*b]).await.is_err() {
                    return true; // closed by the server
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            false
        });
        let start = Instant::now();
        let (text, closed) = read_until_closed(&mut body, Duration::from_millis(1500)).await;
        assert_eq!(closed, bounded, "body: {text:?}");
        if bounded {
            assert!(text.starts_with("HTTP/1.1 408"), "{text:?}");
            assert!(text.contains("request_timeout"), "{text:?}");
        }
        let (text, closed) = read_until_closed(&mut idle, Duration::from_millis(1500)).await;
        assert!(text.starts_with("HTTP/1.1 200"), "{text:?}");
        assert_eq!(closed, bounded, "idle connection");
        let cut = tokio::time::timeout(Duration::from_secs(2), trickle).await;
        assert_eq!(cut.is_ok(), bounded, "trickled head");
        if bounded {
            assert!(
                start.elapsed() < Duration::from_secs(2),
                "{:?}",
                start.elapsed()
            );
        }
    }
}
