//! Typed transactions over a backend.
//!
//! [`ReadTxn`] is a consistent snapshot; [`WriteTxn`] is the only writer
//! while it lives, sees its own writes, and takes effect only through
//! [`WriteTxn::commit`] (dropping it rolls everything back). Every mutation
//! (put or delete) takes the next store revision: revisions are strictly
//! increasing across the life of the store, so the revision a record carries
//! identifies its last write and `put_if_revision` can detect lost updates.

use std::fmt;

use crate::backend::{HasRaw, RawRead, RawWrite};
use crate::envelope::{self, Kind, Record, Versioned};
use crate::error::{Result, StoreError};
use crate::intent::{self, Intent};
use crate::ipam::{self, Allocation};
use crate::Store;

/// The store's own keys in [`Kind::Meta`].
pub(crate) const RESERVED_META_PREFIX: &str = "store/";
const REVISION_KEY: &str = "store/revision";

/// Typed reads, available in read and write transactions.
pub trait Reader: HasRaw {
    /// The record under `key`, if any.
    fn get<T: Record>(&self, key: &str) -> Result<Option<T>> {
        Ok(self.get_versioned::<T>(key)?.map(|v| v.record))
    }

    /// The record under `key` with the revision of its last write.
    fn get_versioned<T: Record>(&self, key: &str) -> Result<Option<Versioned<T>>> {
        self.raw()
            .get(T::KIND, key)?
            .map(|bytes| envelope::decode::<T>(key, &bytes))
            .transpose()
    }

    /// Every record of the type, in key order.
    fn list<T: Record>(&self) -> Result<Vec<T>> {
        list_prefix(self.raw(), "")
    }

    /// The records of the type whose keys start with `prefix`, in key order
    /// (rows of one owner in [`Kind::Acls`]).
    fn list_prefix<T: Record>(&self, prefix: &str) -> Result<Vec<T>> {
        list_prefix(self.raw(), prefix)
    }

    /// The store's revision: that of its latest write (0 for a new store).
    fn revision(&self) -> Result<u64> {
        read_revision(self.raw())
    }

    /// Operations left in flight, oldest first.
    fn list_intents(&self) -> Result<Vec<Intent>> {
        self.list::<Intent>()
    }

    /// The addresses allocated in `network`, in address order.
    fn allocations(&self, network: &str) -> Result<Vec<Allocation>> {
        ipam::allocations(self.raw(), network)
    }
}

pub(crate) fn list_prefix<T: Record>(raw: &dyn RawRead, prefix: &str) -> Result<Vec<T>> {
    raw.scan(T::KIND, prefix)?
        .into_iter()
        .map(|(key, bytes)| envelope::decode::<T>(&key, &bytes).map(|v| v.record))
        .collect()
}

fn read_revision(raw: &dyn RawRead) -> Result<u64> {
    match raw.get(Kind::Meta, REVISION_KEY)? {
        None => Ok(0),
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|source| StoreError::Decode {
            kind: Kind::Meta,
            key: REVISION_KEY.to_owned(),
            source,
        }),
    }
}

/// A consistent snapshot of the store.
pub struct ReadTxn<'s> {
    raw: Box<dyn RawRead + 's>,
}

impl<'s> ReadTxn<'s> {
    pub(crate) fn new(raw: Box<dyn RawRead + 's>) -> Self {
        Self { raw }
    }
}

impl HasRaw for ReadTxn<'_> {
    fn raw(&self) -> &dyn RawRead {
        &*self.raw
    }
}

impl Reader for ReadTxn<'_> {}

impl fmt::Debug for ReadTxn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadTxn").finish_non_exhaustive()
    }
}

/// The store's single write transaction. Commit with [`WriteTxn::commit`];
/// drop to roll back.
pub struct WriteTxn<'s> {
    raw: Box<dyn RawWrite + 's>,
    /// The store, for [`Store::sync`] after a durable commit.
    store: &'s dyn Store,
    /// The revision last handed out in this transaction, once loaded.
    revision: Option<u64>,
    /// Told how long the commit took (see [`crate::CommitObserver`]).
    observer: Option<&'s crate::CommitObserver>,
}

impl<'s> WriteTxn<'s> {
    pub(crate) fn new(raw: Box<dyn RawWrite + 's>, store: &'s dyn Store) -> Self {
        Self {
            raw,
            store,
            revision: None,
            observer: None,
        }
    }

    /// The same transaction, its commit timed for `observer`.
    pub(crate) fn observed(mut self, observer: Option<&'s crate::CommitObserver>) -> Self {
        self.observer = observer;
        self
    }

    /// Stores `record` under its key (insert or replace); returns the new
    /// revision it carries.
    pub fn put<T: Record>(&mut self, record: &T) -> Result<u64> {
        let key = record.key();
        check_key::<T>(&key)?;
        let revision = self.bump()?;
        let bytes = envelope::encode(record, &key, revision)?;
        self.raw.put(T::KIND, &key, &bytes)?;
        Ok(revision)
    }

    /// Like [`WriteTxn::put`], but only if the stored record is still at
    /// `expected` (`None`: only if there is no record yet).
    pub fn put_if_revision<T: Record>(&mut self, record: &T, expected: Option<u64>) -> Result<u64> {
        let key = record.key();
        let found = match self.raw.get(T::KIND, &key)? {
            Some(bytes) => Some(envelope::revision_of(T::KIND, &key, &bytes)?),
            None => None,
        };
        if found != expected {
            return Err(StoreError::Conflict {
                kind: T::KIND,
                key,
                expected,
                found,
            });
        }
        self.put(record)
    }

    /// Removes the record under `key`; whether there was one.
    pub fn delete<T: Record>(&mut self, key: &str) -> Result<bool> {
        self.delete_raw(T::KIND, key)
    }

    /// Removes every record of the type whose key starts with `prefix`; how
    /// many there were.
    pub fn delete_prefix<T: Record>(&mut self, prefix: &str) -> Result<usize> {
        let keys: Vec<String> = self
            .raw
            .scan(T::KIND, prefix)?
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        for key in &keys {
            self.delete_raw(T::KIND, key)?;
        }
        Ok(keys.len())
    }

    /// Makes every change of the transaction durable, or none of them.
    pub fn commit(self) -> Result<()> {
        let store = self.store;
        self.commit_deferred()?;
        store.sync()
    }

    /// Commits every change or none: visible to later transactions at once,
    /// after every earlier commit, durable after the next [`Store::sync`]
    /// (a crash before it may lose this and every later commit, never an
    /// earlier one without this one).
    pub fn commit_deferred(self) -> Result<()> {
        let started = std::time::Instant::now();
        let result = self.raw.commit();
        if let Some(observe) = self.observer {
            observe.0(started.elapsed(), result.is_ok());
        }
        result
    }

    /// Records that `op` on `object_kind/object_key` is in flight, in the
    /// same transaction as the desired-state change it belongs to. The
    /// returned intent's id is unique and sorts in start order.
    pub fn put_intent(
        &mut self,
        op: intent::Op,
        object_kind: Kind,
        object_key: &str,
        detail: serde_json::Value,
    ) -> Result<Intent> {
        let id = intent::id_for(self.next_revision()?);
        let intent = Intent::new(id, op, object_kind, object_key, detail);
        self.put(&intent)?;
        Ok(intent)
    }

    /// Marks the intent done; whether it existed.
    pub fn clear_intent(&mut self, id: &str) -> Result<bool> {
        self.delete::<Intent>(id)
    }

    pub(crate) fn delete_raw(&mut self, kind: Kind, key: &str) -> Result<bool> {
        if self.raw.get(kind, key)?.is_none() {
            return Ok(false);
        }
        self.bump()?;
        self.raw.delete(kind, key)
    }

    fn next_revision(&mut self) -> Result<u64> {
        let current = match self.revision {
            Some(r) => r,
            None => read_revision(&*self.raw)?,
        };
        Ok(current + 1)
    }

    /// Takes the next revision and persists the counter in this transaction.
    fn bump(&mut self) -> Result<u64> {
        let next = self.next_revision()?;
        self.raw
            .put(Kind::Meta, REVISION_KEY, next.to_string().as_bytes())?;
        self.revision = Some(next);
        Ok(next)
    }
}

fn check_key<T: Record>(key: &str) -> Result<()> {
    let bad = |allowed| {
        Err(StoreError::InvalidKey {
            field: "key",
            value: format!("{}/{key}", T::KIND),
            allowed,
        })
    };
    if key.is_empty() || key.chars().any(char::is_control) {
        return bad("a non-empty string without control characters");
    }
    if T::KIND == Kind::Meta && key.starts_with(RESERVED_META_PREFIX) {
        return bad("meta keys starting with \"store/\" belong to the store");
    }
    Ok(())
}

impl HasRaw for WriteTxn<'_> {
    fn raw(&self) -> &dyn RawRead {
        &*self.raw
    }
}

impl Reader for WriteTxn<'_> {}

impl fmt::Debug for WriteTxn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteTxn")
            .field("revision", &self.revision)
            .finish_non_exhaustive()
    }
}
