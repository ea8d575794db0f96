//! Intents: "operation X on object Y is in flight".
//!
//! The engine writes an intent in the same transaction as the desired-state
//! change, does the kernel work, then clears the intent in a later
//! transaction. An intent that survives a restart therefore marks an
//! operation whose kernel side may be half done; the engine reads them with
//! [`crate::Reader::list_intents`] on start and repairs. Ids are the store
//! revision of the intent's write, zero-padded, so key order is start order.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::envelope::{Kind, Record};

/// One in-flight operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    pub id: String,
    /// What is being done (`endpoint.create`, `network.delete`, …).
    pub op: String,
    pub object_kind: Kind,
    pub object_key: String,
    /// Seconds since the Unix epoch.
    pub started_at: u64,
    /// Whatever the engine needs to finish or undo the operation.
    pub detail: serde_json::Value,
}

impl Intent {
    pub(crate) fn new(
        id: String,
        op: &str,
        object_kind: Kind,
        object_key: &str,
        detail: serde_json::Value,
    ) -> Self {
        let started_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Self {
            id,
            op: op.to_owned(),
            object_kind,
            object_key: object_key.to_owned(),
            started_at,
            detail,
        }
    }
}

impl Record for Intent {
    const KIND: Kind = Kind::Intents;
    const SCHEMA: u32 = 1;
    fn key(&self) -> String {
        self.id.clone()
    }
}

/// The id of an intent written at `revision`.
pub(crate) fn id_for(revision: u64) -> String {
    format!("{revision:020}")
}
