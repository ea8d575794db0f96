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

/// What an in-flight operation does to its object (the object's kind is
/// [`Intent::object_kind`]): reconcile finishes a delete and rebuilds
/// anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Create,
    Delete,
    /// A change of the object's ACLs.
    Change,
}

/// One in-flight operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    pub id: String,
    pub op: Op,
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
        op: Op,
        object_kind: Kind,
        object_key: &str,
        detail: serde_json::Value,
    ) -> Self {
        let started_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Self {
            id,
            op,
            object_kind,
            object_key: object_key.to_owned(),
            started_at,
            detail,
        }
    }
}

impl Record for Intent {
    const KIND: Kind = Kind::Intents;
    /// 2: `op` is the verb alone (`"delete"`); schema 1 wrote it after the
    /// object (`"endpoint.delete"`, `"acl.change"`).
    const SCHEMA: u32 = 2;
    fn key(&self) -> String {
        self.id.clone()
    }
    fn upgrade(from_schema: u32, mut body: serde_json::Value) -> Result<serde_json::Value, String> {
        if from_schema < 2 {
            if let Some(op) = body.get_mut("op") {
                let verb = op
                    .as_str()
                    .and_then(|o| o.rsplit('.').next())
                    .ok_or_else(|| format!("intent op {op}: not text"))?
                    .to_owned();
                *op = serde_json::Value::String(verb);
            }
        }
        Ok(body)
    }
}

/// The id of an intent written at `revision`.
pub(crate) fn id_for(revision: u64) -> String {
    format!("{revision:020}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schema_1_op_reads_as_its_verb() {
        for (old, op) in [
            ("endpoint.delete", Op::Delete),
            ("network.create", Op::Create),
            ("acl.change", Op::Change),
        ] {
            let body = serde_json::json!({
                "id": "00000000000000000007", "op": old, "object_kind": "endpoints",
                "object_key": "k", "started_at": 1, "detail": null,
            });
            let up = Intent::upgrade(1, body).unwrap();
            let intent: Intent = serde_json::from_value(up).unwrap();
            assert_eq!(intent.op, op, "{old}");
        }
    }
}
