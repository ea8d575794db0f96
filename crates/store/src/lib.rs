//! bulkhead's persistence: a transactional store of versioned, typed records.
//!
//! Records ([`Record`]) live in tables by [`Kind`], under string keys, each
//! wrapped in an envelope carrying its schema version and the store revision
//! of its last write. All access goes through transactions: a [`ReadTxn`] is
//! a consistent snapshot, a [`WriteTxn`] is the only writer while it lives
//! and changes nothing unless committed. A committed write transaction is
//! durable (fsync'd) before [`WriteTxn::commit`] returns;
//! [`WriteTxn::commit_deferred`] only commits (visible, ordered) and
//! [`Store::sync`] then makes every commit so far durable, one fsync shared
//! by concurrent callers (group commit). The same write transaction
//! also carries intents ([`Intent`]: operations in flight, for repair after
//! a crash) and IP address allocation ([`WriteTxn::allocate`]), so desired
//! state, intents and addresses always change together.
//!
//! Two implementations share one typed layer and so one set of semantics:
//! [`RedbStore`] (the daemon's, one file) and [`MemoryStore`] (tests).
//!
//! ```
//! use bulkhead_store::{Kind, MemoryStore, Reader, Record, StoreExt};
//! # #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
//! # struct Net { id: String }
//! # impl Record for Net {
//! #     const KIND: Kind = Kind::Networks;
//! #     const SCHEMA: u32 = 1;
//! #     fn key(&self) -> String { self.id.clone() }
//! # }
//! let store = MemoryStore::new();
//! store.transaction(|txn| txn.put(&Net { id: "n1".into() }))?;
//! let net: Option<Net> = store.read(|txn| txn.get("n1"))?;
//! assert_eq!(net, Some(Net { id: "n1".into() }));
//! # Ok::<(), bulkhead_store::StoreError>(())
//! ```

mod backend;
mod envelope;
mod error;
mod intent;
mod ipam;
mod memory;
mod redb_store;
mod txn;
mod wal;
mod wal_record;

pub use envelope::{Kind, Record, Versioned};
pub use error::{Result, StoreError};
pub use intent::{Intent, Op};
pub use ipam::{Allocation, Subnet};
pub use memory::MemoryStore;
pub use redb_store::{RedbStore, DB_FILE};
pub use txn::{ReadTxn, Reader, WriteTxn};
pub use wal::WAL_FILE;

/// Told, after every commit of a [`RedbStore`] write transaction, how long
/// it took (fsync included) and whether it succeeded; for metrics. It runs
/// on the committing thread, so it must be quick.
pub struct CommitObserver(pub Box<dyn Fn(std::time::Duration, bool) + Send + Sync>);

impl std::fmt::Debug for CommitObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CommitObserver")
    }
}

/// A transactional store. Implemented only in this crate (redb, memory;
/// etcd later); use it as `&dyn Store`, `Arc<dyn Store>` or generically.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// A snapshot of the committed state; never blocks writers.
    fn begin_read(&self) -> Result<ReadTxn<'_>>;
    /// The single write transaction; waits while another one is open.
    /// Dropping it without [`WriteTxn::commit`] rolls it back.
    fn begin_write(&self) -> Result<WriteTxn<'_>>;
    /// Returns once every transaction committed before the call is
    /// durable. Callers that arrive while a sync runs share the next one.
    /// An error means durability is lost: the store refuses later commits.
    fn sync(&self) -> Result<()>;
}

/// Closure-style transactions for every [`Store`] (including `dyn Store`).
pub trait StoreExt: Store {
    /// Runs `f` in a write transaction and commits if it returns `Ok`; on
    /// `Err` (or a panic) nothing it wrote is kept.
    fn transaction<R>(&self, f: impl FnOnce(&mut WriteTxn<'_>) -> Result<R>) -> Result<R> {
        let mut txn = self.begin_write()?;
        let out = f(&mut txn)?;
        txn.commit()?;
        Ok(out)
    }

    /// Like [`StoreExt::transaction`], but the commit is durable only after
    /// the next [`Store::sync`] (which the caller must await before it
    /// acknowledges anything that depends on it).
    fn transaction_deferred<R>(&self, f: impl FnOnce(&mut WriteTxn<'_>) -> Result<R>) -> Result<R> {
        let mut txn = self.begin_write()?;
        let out = f(&mut txn)?;
        txn.commit_deferred()?;
        Ok(out)
    }

    /// Runs `f` on a snapshot.
    fn read<R>(&self, f: impl FnOnce(&ReadTxn<'_>) -> Result<R>) -> Result<R> {
        f(&self.begin_read()?)
    }
}

impl<S: Store + ?Sized> StoreExt for S {}
