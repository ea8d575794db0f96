//! Errors of the cluster control plane. Every etcd failure names the etcd
//! endpoints, so an operator sees at once which cluster store is missing.

/// A cluster failure.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// etcd did not answer, or refused.
    #[error("etcd {endpoints}: {message}")]
    Etcd { endpoints: String, message: String },
    /// A setting is wrong (flag name, value, what is allowed).
    #[error("{0}")]
    Config(String),
    /// A cluster rule refuses the operation.
    #[error("{0}")]
    Conflict(String),
    /// A local file (held blocks, TLS material) could not be used.
    #[error("{path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
}

impl From<ClusterError> for bulkhead_engine::EngineError {
    fn from(e: ClusterError) -> Self {
        match e {
            ClusterError::Etcd { .. } => Self::Unavailable(e.to_string()),
            ClusterError::Conflict(m) => Self::Conflict(m),
            other => Self::Kernel(other.to_string()),
        }
    }
}

pub type Result<T, E = ClusterError> = std::result::Result<T, E>;
