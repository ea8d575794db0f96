//! The engine's error: what went wrong, in one line, with the kind the API
//! maps to a status (bad input, not found, conflict, kernel, store).

use bulkhead_model::InvalidValue;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    Invalid(#[from] InvalidValue),
    #[error("{0}")]
    Policy(#[from] bulkhead_policy::PolicyError),
    #[error("{kind} {name:?} not found")]
    NotFound { kind: &'static str, name: String },
    #[error("{0}")]
    Conflict(String),
    #[error("kernel: {0}")]
    Kernel(String),
    #[error("store: {0}")]
    Store(#[from] bulkhead_store::StoreError),
    /// A service the operation needs (the cluster's etcd) cannot be reached.
    #[error("{0}")]
    Unavailable(String),
}

impl EngineError {
    pub fn not_found(kind: &'static str, name: impl Into<String>) -> Self {
        EngineError::NotFound {
            kind,
            name: name.into(),
        }
    }

    pub fn kernel(e: impl std::fmt::Display) -> Self {
        EngineError::Kernel(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, EngineError>;
