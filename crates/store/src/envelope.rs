//! The envelope every stored value is wrapped in, and the [`Record`] trait
//! a stored type implements (its table, schema version and key). The
//! engine's record types themselves live in `bulkhead_engine::records`.
//!
//! A record type names its table ([`Kind`]), its schema version and its key.
//! On disk every value is the JSON envelope
//! `{"schema": u32, "revision": u64, "body": <record>}`: `schema` is the
//! record type's version when it was written, `revision` the store-wide
//! revision of the write. A body with a newer schema than the reader's is
//! rejected, never guessed at; an older one goes through [`Record::upgrade`].

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};

/// The table a record lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Networks,
    Namespaces,
    Endpoints,
    /// Owned by the store's IPAM (pools and allocations).
    Ipam,
    /// Owned by the store's intents ([`crate::Intent`]).
    Intents,
    /// Small singletons (counters, format versions). Keys starting with
    /// `store/` are the store's own.
    Meta,
    /// Rows owned by records of another table, one per element, so that
    /// changing one element writes (and logs) one small row instead of the
    /// whole owner (the engine: an endpoint's ACL rules, keyed
    /// `<endpoint id>/<rule id>`). Last, so older tables keep their index.
    Acls,
}

impl Kind {
    /// Every table, in a fixed order.
    pub const ALL: [Kind; 7] = [
        Kind::Networks,
        Kind::Namespaces,
        Kind::Endpoints,
        Kind::Ipam,
        Kind::Intents,
        Kind::Meta,
        Kind::Acls,
    ];

    /// The table's name on disk.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Networks => "networks",
            Kind::Namespaces => "namespaces",
            Kind::Endpoints => "endpoints",
            Kind::Ipam => "ipam",
            Kind::Intents => "intents",
            Kind::Meta => "meta",
            Kind::Acls => "acls",
        }
    }

    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored type. The engine's embed the model types plus what only the
/// store needs; the API has its own presentation types, so the wire and
/// disk formats evolve independently.
pub trait Record: Serialize + DeserializeOwned {
    /// The table it lives in.
    const KIND: Kind;
    /// The current version of this type's layout; bump it on incompatible
    /// changes and teach [`Record::upgrade`] the old layouts.
    const SCHEMA: u32;
    /// The record's key (its id), unique within [`Record::KIND`].
    fn key(&self) -> String;
    /// Turns a body written with an older `from_schema` into the current
    /// layout. The default accepts it as is (enough for added fields with
    /// serde defaults).
    fn upgrade(from_schema: u32, body: serde_json::Value) -> Result<serde_json::Value, String> {
        let _ = from_schema;
        Ok(body)
    }
}

/// A record with the revision of its last write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<T> {
    pub revision: u64,
    pub record: T,
}

#[derive(Serialize)]
struct EnvelopeOut<'a, T> {
    schema: u32,
    revision: u64,
    body: &'a T,
}

/// The envelope's head; the body is skipped, not built.
#[derive(Deserialize)]
struct EnvelopeHead {
    schema: u32,
    revision: u64,
}

#[derive(Deserialize)]
struct EnvelopeIn<B> {
    body: B,
}

pub(crate) fn encode<T: Record>(record: &T, key: &str, revision: u64) -> Result<Vec<u8>> {
    let envelope = EnvelopeOut {
        schema: T::SCHEMA,
        revision,
        body: record,
    };
    serde_json::to_vec(&envelope).map_err(|source| StoreError::Encode {
        kind: T::KIND,
        key: key.to_owned(),
        source,
    })
}

/// The revision of a stored envelope, whatever its body.
pub(crate) fn revision_of(kind: Kind, key: &str, bytes: &[u8]) -> Result<u64> {
    #[derive(Deserialize)]
    struct Head {
        revision: u64,
    }
    serde_json::from_slice::<Head>(bytes)
        .map(|h| h.revision)
        .map_err(|source| StoreError::Decode {
            kind,
            key: key.to_owned(),
            source,
        })
}

pub(crate) fn decode<T: Record>(key: &str, bytes: &[u8]) -> Result<Versioned<T>> {
    let decode_err = |source| StoreError::Decode {
        kind: T::KIND,
        key: key.to_owned(),
        source,
    };
    let head: EnvelopeHead = serde_json::from_slice(bytes).map_err(decode_err)?;
    if head.schema > T::SCHEMA {
        return Err(StoreError::SchemaTooNew {
            kind: T::KIND,
            key: key.to_owned(),
            found: head.schema,
            supported: T::SCHEMA,
        });
    }
    let record = if head.schema == T::SCHEMA {
        serde_json::from_slice::<EnvelopeIn<T>>(bytes)
            .map_err(decode_err)?
            .body
    } else {
        let old =
            serde_json::from_slice::<EnvelopeIn<serde_json::Value>>(bytes).map_err(decode_err)?;
        let body = T::upgrade(head.schema, old.body).map_err(|reason| StoreError::Upgrade {
            kind: T::KIND,
            key: key.to_owned(),
            from: head.schema,
            reason,
        })?;
        serde_json::from_value(body).map_err(decode_err)?
    };
    Ok(Versioned {
        revision: head.revision,
        record,
    })
}
