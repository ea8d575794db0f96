//! The caller side of the transport: one HTTP/1.1 request per call.
//!
//! A [`Client`] holds only the socket path; each call connects, sends one
//! request built by [`encode_request`], and decodes the answer into the
//! response kind its command expects. Failures are [`ClientError`]s whose
//! messages are single lines fit for `bulkhead: <message>`; a daemon error
//! comes back as the daemon's own [`ApiError`].

use crate::command::{Command, Response};
use crate::error::{one_line, ApiError, ErrorBody, ErrorCode};
use crate::request::{
    AclRuleSpec, EndpointSpec, EventsRequest, ImportRequest, NamespaceSpec, NetworkSpec, TraceSpec,
};
use crate::response::{
    AclInfo, AclStatsInfo, EndpointInfo, EventsPage, HealthInfo, ImportResult, NamespaceInfo,
    NetworkInfo, TraceResult,
};
use crate::route::encode_request;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper_util::rt::TokioIo;
use std::io;
use std::path::{Path, PathBuf};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket could not be connected to.
    #[error("cannot reach bulkheadd at {}: {} (is bulkheadd running?)", socket.display(), os_text(error))]
    Connect {
        /// The socket path.
        socket: PathBuf,
        /// The OS error.
        error: io::Error,
    },
    /// The daemon refused or failed the request.
    #[error("{0}")]
    Api(#[from] ApiError),
    /// The HTTP exchange broke off.
    #[error("lost the connection to bulkheadd at {}: {error}", socket.display())]
    Http {
        /// The socket path.
        socket: PathBuf,
        /// The HTTP error.
        error: hyper::Error,
    },
    /// The exchange on a blocking socket broke off.
    #[error("lost the connection to bulkheadd at {}: {}", socket.display(), os_text(error))]
    Lost {
        /// The socket path.
        socket: PathBuf,
        /// The OS error.
        error: io::Error,
    },
    /// The daemon's answer is not an HTTP response this client can read.
    #[error("unreadable response from bulkheadd: {0}")]
    Malformed(String),
    /// The daemon answered with a body this client cannot read.
    #[error("unexpected response from bulkheadd: {0}")]
    Decode(serde_json::Error),
    /// The request could not be encoded.
    #[error("cannot encode the request: {0}")]
    Encode(serde_json::Error),
    /// The request could not be built (an invalid path or header).
    #[error("cannot build the request: {0}")]
    Request(hyper::http::Error),
}

/// `No such file or directory`, without the `(os error 2)` suffix.
fn os_text(error: &io::Error) -> String {
    let text = error.to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// A client of bulkheadd's API socket.
#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
}

macro_rules! expect {
    ($response:expr, $variant:ident) => {
        match $response {
            Response::$variant(v) => Ok(v),
            other => Err(unexpected(other)),
        }
    };
}

fn unexpected(response: Response) -> ClientError {
    ClientError::Api(ApiError::internal(format!(
        "unexpected response kind {:?}",
        response.kind()
    )))
}

impl Client {
    /// A client for the socket at `socket`.
    pub fn new(socket: impl Into<PathBuf>) -> Client {
        Client {
            socket: socket.into(),
        }
    }

    /// The socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Sends any command and returns the response its kind calls for.
    pub async fn execute(&self, cmd: &Command) -> Result<Response, ClientError> {
        let encoded = encode_request(cmd).map_err(ClientError::Encode)?;
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|error| ClientError::Connect {
                socket: self.socket.clone(),
                error,
            })?;
        let http_err = |error| ClientError::Http {
            socket: self.socket.clone(),
            error,
        };
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(http_err)?;
        let driver = tokio::spawn(conn);
        let mut builder = hyper::Request::builder()
            .method(encoded.method)
            .uri(&encoded.path)
            .header(HOST, "localhost");
        if encoded.body.is_some() {
            builder = builder.header(CONTENT_TYPE, "application/json");
        }
        let request = builder
            .body(Full::new(Bytes::from(encoded.body.unwrap_or_default())))
            .map_err(ClientError::Request)?;
        let response = sender.send_request(request).await.map_err(http_err)?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(http_err)?
            .to_bytes();
        driver.abort();
        finish(cmd, status, &body)
    }

    /// `GET /v1/health`.
    pub async fn health(&self) -> Result<HealthInfo, ClientError> {
        expect!(self.execute(&Command::Health).await?, Health)
    }

    /// `POST /v1/networks`.
    pub async fn network_create(&self, req: NetworkSpec) -> Result<NetworkInfo, ClientError> {
        expect!(self.execute(&Command::NetworkCreate(req)).await?, Network)
    }

    /// `GET /v1/networks`.
    pub async fn network_list(&self) -> Result<Vec<NetworkInfo>, ClientError> {
        expect!(self.execute(&Command::NetworkList).await?, Networks)
    }

    /// `GET /v1/networks/{name}`.
    pub async fn network_inspect(&self, name: &str) -> Result<NetworkInfo, ClientError> {
        let name = name.to_owned();
        expect!(
            self.execute(&Command::NetworkInspect { name }).await?,
            Network
        )
    }

    /// `DELETE /v1/networks/{name}`.
    pub async fn network_remove(&self, name: &str) -> Result<(), ClientError> {
        let name = name.to_owned();
        self.execute(&Command::NetworkRemove { name })
            .await
            .map(drop)
    }

    /// `POST /v1/namespaces`.
    pub async fn namespace_create(&self, req: NamespaceSpec) -> Result<NamespaceInfo, ClientError> {
        expect!(
            self.execute(&Command::NamespaceCreate(req)).await?,
            Namespace
        )
    }

    /// `GET /v1/namespaces`.
    pub async fn namespace_list(&self) -> Result<Vec<NamespaceInfo>, ClientError> {
        expect!(self.execute(&Command::NamespaceList).await?, Namespaces)
    }

    /// `GET /v1/namespaces/{name}`.
    pub async fn namespace_inspect(&self, name: &str) -> Result<NamespaceInfo, ClientError> {
        let name = name.to_owned();
        expect!(
            self.execute(&Command::NamespaceInspect { name }).await?,
            Namespace
        )
    }

    /// `DELETE /v1/namespaces/{name}`.
    pub async fn namespace_remove(&self, name: &str) -> Result<(), ClientError> {
        let name = name.to_owned();
        self.execute(&Command::NamespaceRemove { name })
            .await
            .map(drop)
    }

    /// `POST /v1/endpoints`.
    pub async fn endpoint_create(&self, req: EndpointSpec) -> Result<EndpointInfo, ClientError> {
        expect!(self.execute(&Command::EndpointCreate(req)).await?, Endpoint)
    }

    /// `GET /v1/endpoints`.
    pub async fn endpoint_list(&self) -> Result<Vec<EndpointInfo>, ClientError> {
        expect!(self.execute(&Command::EndpointList).await?, Endpoints)
    }

    /// `GET /v1/endpoints/{name}`.
    pub async fn endpoint_inspect(&self, name: &str) -> Result<EndpointInfo, ClientError> {
        let name = name.to_owned();
        expect!(
            self.execute(&Command::EndpointInspect { name }).await?,
            Endpoint
        )
    }

    /// `DELETE /v1/endpoints/{name}`.
    pub async fn endpoint_remove(&self, name: &str) -> Result<(), ClientError> {
        let name = name.to_owned();
        self.execute(&Command::EndpointRemove { name })
            .await
            .map(drop)
    }

    /// `POST /v1/endpoints/{endpoint}/acls`.
    pub async fn acl_add(&self, endpoint: &str, rule: AclRuleSpec) -> Result<AclInfo, ClientError> {
        let endpoint = endpoint.to_owned();
        expect!(
            self.execute(&Command::AclAdd { endpoint, rule }).await?,
            Acl
        )
    }

    /// `GET /v1/endpoints/{endpoint}/acls`.
    pub async fn acl_list(&self, endpoint: &str) -> Result<Vec<AclInfo>, ClientError> {
        let endpoint = endpoint.to_owned();
        expect!(self.execute(&Command::AclList { endpoint }).await?, Acls)
    }

    /// `GET /v1/endpoints/{endpoint}/acls?stats=true`.
    pub async fn acl_stats(&self, endpoint: &str) -> Result<AclStatsInfo, ClientError> {
        let endpoint = endpoint.to_owned();
        expect!(
            self.execute(&Command::AclStats { endpoint }).await?,
            AclStats
        )
    }

    /// `DELETE /v1/endpoints/{endpoint}/acls/{id}`.
    pub async fn acl_remove(&self, endpoint: &str, id: &str) -> Result<(), ClientError> {
        let cmd = Command::AclRemove {
            endpoint: endpoint.to_owned(),
            id: id.to_owned(),
        };
        self.execute(&cmd).await.map(drop)
    }

    /// `POST /v1/trace`.
    pub async fn trace(&self, req: TraceSpec) -> Result<TraceResult, ClientError> {
        expect!(self.execute(&Command::Trace(req)).await?, Trace)
    }

    /// `POST /v1/events`: events after `req.after`, waiting up to
    /// `req.wait_ms` for one.
    pub async fn events(&self, req: EventsRequest) -> Result<EventsPage, ClientError> {
        expect!(self.execute(&Command::Events(req)).await?, Events)
    }

    /// `POST /v1/import`.
    pub async fn import(&self, document: serde_json::Value) -> Result<ImportResult, ClientError> {
        let cmd = Command::Import(ImportRequest { document });
        expect!(self.execute(&cmd).await?, Import)
    }
}

/// The response `cmd` calls for, from the answer's status and body.
pub(crate) fn finish(cmd: &Command, status: u16, body: &[u8]) -> Result<Response, ClientError> {
    if (200..300).contains(&status) {
        Response::decode(cmd.response_kind(), body).map_err(ClientError::Decode)
    } else {
        Err(ClientError::Api(error_from(status, body)))
    }
}

/// The daemon's error from a failure body, or one made from the status.
fn error_from(status: u16, body: &[u8]) -> ApiError {
    if let Ok(parsed) = serde_json::from_slice::<ErrorBody>(body) {
        // Through `new`: the message is folded to one line whatever sent it.
        let ApiError {
            code,
            message,
            field,
        } = parsed.error;
        return ApiError {
            field,
            ..ApiError::new(code, message)
        };
    }
    let text = one_line(&String::from_utf8_lossy(body));
    let text: String = text.chars().take(200).collect();
    ApiError::new(
        ErrorCode::from_http_status(status),
        format!("bulkheadd answered HTTP {status}: {text}"),
    )
}
