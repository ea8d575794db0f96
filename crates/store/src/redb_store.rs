//! The on-disk [`Store`]: one redb file, `bulkhead.redb`, and its commit
//! log, `bulkhead.wal`, in the state dir.
//!
//! redb gives MVCC snapshots to readers, one writer at a time (a second
//! `begin_write` waits), and copy-on-write commits: a crash leaves the file
//! at the last durable commit. Operations commit through the commit log
//! ([`crate::wal`]: redb `Durability::None` plus one appended, checksummed
//! record) and are durable once [`Store::sync`] returns; concurrent syncs
//! share one `fdatasync`. Opening replays the log. The
//! file is locked for the life of the store: a second daemon on the same
//! state dir fails to open instead of corrupting it. The state dir is
//! created with mode 0700 and the files with mode 0600; an existing dir's
//! mode is left as the operator set it.

use std::fs::{DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use redb::{Database, Durability, ReadableTable, TableDefinition};

use crate::backend::{RawRead, RawWrite};
use crate::envelope::Kind;
use crate::error::{Result, StoreError};
use crate::txn::{ReadTxn, WriteTxn};
use crate::wal::{self, Changes, Wal, WAL_FILE};
use crate::Store;

/// The database file's name inside the state dir.
pub const DB_FILE: &str = "bulkhead.redb";

/// The redb cache: the store holds kilobytes to a few megabytes.
const CACHE_BYTES: usize = 16 << 20;

/// The layout of the file (tables, key schemes); bump on incompatible change.
const FORMAT: u32 = 1;
const FORMAT_KEY: &str = "store/format";

type Def = TableDefinition<'static, &'static str, &'static [u8]>;

pub(crate) const fn table(kind: Kind) -> Def {
    TableDefinition::new(kind.as_str())
}

/// The daemon's store.
#[derive(Debug)]
pub struct RedbStore {
    db: Database,
    path: PathBuf,
    /// Set once by [`RedbStore::observe_commits`].
    observer: std::sync::OnceLock<crate::CommitObserver>,
    wal: Wal,
}

impl RedbStore {
    /// Opens (or creates) `<state_dir>/bulkhead.redb`, creating `state_dir`
    /// with mode 0700 if it is missing.
    pub fn open(state_dir: impl AsRef<Path>) -> Result<Self> {
        let dir = state_dir.as_ref();
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| StoreError::StateDir {
                path: dir.to_owned(),
                source,
            })?;
        let path = dir.join(DB_FILE);
        let open_err = |source: redb::Error| StoreError::Open {
            path: path.clone(),
            source,
        };
        // Create the file ourselves so that it is 0600 from the start.
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| open_err(e.into()))?;
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(&path)
            .map_err(|e| open_err(e.into()))?;
        // Operations acknowledged before a crash may be only in the log.
        let wal_path = dir.join(WAL_FILE);
        wal::replay(&wal_path, &db)?;
        let wal = Wal::open(wal_path)?;
        let store = Self {
            db,
            path,
            wal,
            observer: std::sync::OnceLock::new(),
        };
        store.create_tables()?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Times every later commit for `observer`; only the first observer
    /// set is kept (`false` when one already was).
    pub fn observe_commits(&self, observer: crate::CommitObserver) -> bool {
        self.observer.set(observer).is_ok()
    }

    /// Creates every table (so read transactions never meet a missing one)
    /// and stamps, or checks, the file's format.
    fn create_tables(&self) -> Result<()> {
        let txn = self.begin_redb_write(Durability::Immediate)?;
        for kind in Kind::ALL {
            txn.open_table(table(kind))
                .map_err(|e| StoreError::backend(format!("create table {kind}"), e))?;
        }
        let mut raw = RedbWrite { txn, log: None };
        match raw.get(Kind::Meta, FORMAT_KEY)? {
            None => raw.put(Kind::Meta, FORMAT_KEY, FORMAT.to_string().as_bytes())?,
            Some(bytes) => {
                let found = std::str::from_utf8(&bytes)
                    .ok()
                    .and_then(|s| s.parse().ok());
                if found.is_none_or(|f: u32| f > FORMAT) {
                    return Err(StoreError::SchemaTooNew {
                        kind: Kind::Meta,
                        key: FORMAT_KEY.to_owned(),
                        found: found.unwrap_or(u32::MAX),
                        supported: FORMAT,
                    });
                }
            }
        }
        Box::new(raw).commit()
    }

    /// A redb write transaction: durable by itself (`Immediate`, for the
    /// store's own bookkeeping at open) or committed through the log
    /// (`None`, made durable by [`Store::sync`]).
    fn begin_redb_write(&self, durability: Durability) -> Result<redb::WriteTransaction> {
        let mut txn = self
            .db
            .begin_write()
            .map_err(|e| StoreError::backend("begin write transaction", e))?;
        txn.set_durability(durability)
            .map_err(|e| StoreError::backend("set durability", e))?;
        Ok(txn)
    }
}

impl Drop for RedbStore {
    /// A clean close leaves everything in the redb file and an empty log.
    fn drop(&mut self) {
        self.wal.stop();
        if let Err(e) = self.wal.checkpoint(&self.db) {
            // The log still holds the changes; the next open replays them.
            eprintln!("bulkhead store: checkpoint at close failed: {e}");
        }
    }
}

impl Store for RedbStore {
    fn begin_read(&self) -> Result<ReadTxn<'_>> {
        let txn = redb::ReadableDatabase::begin_read(&self.db)
            .map_err(|e| StoreError::backend("begin read transaction", e))?;
        Ok(ReadTxn::new(Box::new(RedbRead(txn))))
    }

    fn begin_write(&self) -> Result<WriteTxn<'_>> {
        let raw = RedbWrite {
            txn: self.begin_redb_write(Durability::None)?,
            log: Some((&self.wal, Changes::default())),
        };
        Ok(WriteTxn::new(Box::new(raw), self).observed(self.observer.get()))
    }

    fn sync(&self) -> Result<()> {
        self.wal.sync()
    }
}

fn read_err(kind: Kind, key: &str) -> impl FnOnce(redb::Error) -> StoreError + '_ {
    move |e| StoreError::backend(format!("read {kind}/{key}"), e)
}

fn get_from<T>(t: &T, kind: Kind, key: &str) -> Result<Option<Vec<u8>>>
where
    T: ReadableTable<&'static str, &'static [u8]>,
{
    let value = t.get(key).map_err(|e| read_err(kind, key)(e.into()))?;
    Ok(value.map(|v| v.value().to_vec()))
}

fn scan_from<T>(t: &T, kind: Kind, prefix: &str) -> Result<Vec<(String, Vec<u8>)>>
where
    T: ReadableTable<&'static str, &'static [u8]>,
{
    let err = |e: redb::StorageError| StoreError::backend(format!("scan {kind}/{prefix}*"), e);
    let mut out = Vec::new();
    for entry in t.range::<&str>(prefix..).map_err(err)? {
        let (k, v) = entry.map_err(err)?;
        let k = k.value();
        if !k.starts_with(prefix) {
            break;
        }
        out.push((k.to_owned(), v.value().to_vec()));
    }
    Ok(out)
}

struct RedbRead(redb::ReadTransaction);

impl RedbRead {
    fn open(&self, kind: Kind) -> Result<redb::ReadOnlyTable<&'static str, &'static [u8]>> {
        self.0
            .open_table(table(kind))
            .map_err(|e| StoreError::backend(format!("open table {kind}"), e))
    }
}

impl RawRead for RedbRead {
    fn get(&self, kind: Kind, key: &str) -> Result<Option<Vec<u8>>> {
        get_from(&self.open(kind)?, kind, key)
    }
    fn scan(&self, kind: Kind, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        scan_from(&self.open(kind)?, kind, prefix)
    }
}

/// Dropped without commit, the redb transaction aborts.
struct RedbWrite<'s> {
    txn: redb::WriteTransaction,
    /// The commit log and this transaction's changes for it; `None` for a
    /// transaction durable by itself.
    log: Option<(&'s Wal, Changes)>,
}

impl RedbWrite<'_> {
    fn open(&self, kind: Kind) -> Result<redb::Table<'_, &'static str, &'static [u8]>> {
        self.txn
            .open_table(table(kind))
            .map_err(|e| StoreError::backend(format!("open table {kind}"), e))
    }
}

impl RawRead for RedbWrite<'_> {
    fn get(&self, kind: Kind, key: &str) -> Result<Option<Vec<u8>>> {
        get_from(&self.open(kind)?, kind, key)
    }
    fn scan(&self, kind: Kind, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        scan_from(&self.open(kind)?, kind, prefix)
    }
}

impl RawWrite for RedbWrite<'_> {
    fn put(&mut self, kind: Kind, key: &str, value: &[u8]) -> Result<()> {
        self.open(kind)?
            .insert(key, value)
            .map_err(|e| StoreError::backend(format!("write {kind}/{key}"), e))?;
        if let Some((_, changes)) = &mut self.log {
            changes.put(kind, key, value);
        }
        Ok(())
    }
    fn delete(&mut self, kind: Kind, key: &str) -> Result<bool> {
        let mut table = self.open(kind)?;
        let existed = table
            .remove(key)
            .map_err(|e| StoreError::backend(format!("delete {kind}/{key}"), e))?
            .is_some();
        drop(table);
        if let (Some((_, changes)), true) = (&mut self.log, existed) {
            changes.delete(kind, key);
        }
        Ok(existed)
    }
    fn commit(self: Box<Self>) -> Result<()> {
        let RedbWrite { txn, log } = *self;
        match log {
            Some((wal, changes)) => wal.commit(txn, changes),
            None => txn.commit().map_err(|e| StoreError::backend("commit", e)),
        }
    }
}
