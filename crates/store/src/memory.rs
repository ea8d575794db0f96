//! An in-memory [`Store`] for tests, with the semantics of the real one.
//!
//! Committed state is an immutable snapshot behind an `Arc`: a read
//! transaction holds the snapshot it started with, a write transaction
//! holds the writer lock (one writer at a time), edits a private copy and
//! publishes it on commit; dropping it publishes nothing. Copying the whole
//! state per write transaction is fine at test sizes; nothing is durable.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::backend::{RawRead, RawWrite};
use crate::envelope::Kind;
use crate::error::Result;
use crate::txn::{ReadTxn, WriteTxn};
use crate::Store;

type Table = BTreeMap<String, Vec<u8>>;
type Tables = [Table; Kind::ALL.len()];

/// A store that lives and dies with the process.
#[derive(Debug, Default)]
pub struct MemoryStore {
    committed: Mutex<Arc<Tables>>,
    writer: Mutex<()>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn snapshot(&self) -> Arc<Tables> {
        // A panic while holding this lock cannot leave a half-published state.
        Arc::clone(
            &self
                .committed
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }
}

impl Store for MemoryStore {
    fn begin_read(&self) -> Result<ReadTxn<'_>> {
        Ok(ReadTxn::new(Box::new(MemRead(self.snapshot()))))
    }

    fn begin_write(&self) -> Result<WriteTxn<'_>> {
        // A writer that panicked published nothing; its lock is safe to take over.
        let guard = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let tables = (*self.snapshot()).clone();
        Ok(WriteTxn::new(
            Box::new(MemWrite {
                store: self,
                tables,
                _guard: guard,
            }),
            self,
        ))
    }

    /// Nothing is durable: every commit is as durable as it will get.
    fn sync(&self) -> Result<()> {
        Ok(())
    }
}

fn get(tables: &Tables, kind: Kind, key: &str) -> Option<Vec<u8>> {
    tables[kind.index()].get(key).cloned()
}

fn scan(tables: &Tables, kind: Kind, prefix: &str) -> Vec<(String, Vec<u8>)> {
    tables[kind.index()]
        .range(prefix.to_owned()..)
        .take_while(|(k, _)| k.starts_with(prefix))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

struct MemRead(Arc<Tables>);

impl RawRead for MemRead {
    fn get(&self, kind: Kind, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(get(&self.0, kind, key))
    }
    fn scan(&self, kind: Kind, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        Ok(scan(&self.0, kind, prefix))
    }
}

struct MemWrite<'s> {
    store: &'s MemoryStore,
    tables: Tables,
    _guard: MutexGuard<'s, ()>,
}

impl RawRead for MemWrite<'_> {
    fn get(&self, kind: Kind, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(get(&self.tables, kind, key))
    }
    fn scan(&self, kind: Kind, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        Ok(scan(&self.tables, kind, prefix))
    }
}

impl RawWrite for MemWrite<'_> {
    fn put(&mut self, kind: Kind, key: &str, value: &[u8]) -> Result<()> {
        self.tables[kind.index()].insert(key.to_owned(), value.to_vec());
        Ok(())
    }
    fn delete(&mut self, kind: Kind, key: &str) -> Result<bool> {
        Ok(self.tables[kind.index()].remove(key).is_some())
    }
    fn commit(self: Box<Self>) -> Result<()> {
        let MemWrite {
            store,
            tables,
            _guard,
        } = *self;
        *store
            .committed
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(tables);
        Ok(())
    }
}
