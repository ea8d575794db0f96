//! The byte-level contract every storage engine implements.
//!
//! A backend stores opaque values under string keys in the seven [`Kind`]
//! tables. A read view is a consistent snapshot; a write view sees its own
//! changes, is the only writer while it lives, and either commits all of
//! its changes (durable at the next `Store::sync`) or, when dropped without [`RawWrite::commit`],
//! none of them. Everything typed (envelopes, revisions, intents, IPAM) is
//! built once on top of this, so both backends share one set of semantics.
//! The module is private: `Store` can only be implemented in this crate.

use crate::envelope::Kind;
use crate::error::Result;

/// A consistent read view.
pub trait RawRead {
    fn get(&self, kind: Kind, key: &str) -> Result<Option<Vec<u8>>>;
    /// Every entry whose key starts with `prefix`, in key order.
    fn scan(&self, kind: Kind, prefix: &str) -> Result<Vec<(String, Vec<u8>)>>;
}

/// The single write view; dropping it without commit discards its changes.
pub trait RawWrite: RawRead {
    fn put(&mut self, kind: Kind, key: &str, value: &[u8]) -> Result<()>;
    /// Whether the key existed.
    fn delete(&mut self, kind: Kind, key: &str) -> Result<bool>;
    /// Commits every change or none, after every earlier commit; durable
    /// once [`crate::Store::sync`] returns for a call made after this.
    fn commit(self: Box<Self>) -> Result<()>;
}

/// Gives the typed layer its byte-level view (the seal of [`crate::Reader`]).
pub trait HasRaw {
    fn raw(&self) -> &dyn RawRead;
}
