//! The commit log: group commit on top of redb.
//!
//! Contract: a transaction committed through [`Wal::commit`] is visible at
//! once and in commit order, and durable once [`Wal::sync`] returns for a
//! call made after it. Concurrent `sync` callers share one `fdatasync`.
//!
//! Why a log: a redb commit with `Durability::Immediate` holds redb's write
//! lock through its `fdatasync`, so no other transaction can even begin
//! while one is being made durable, and every operation pays its own sync.
//! Instead each transaction commits in redb with `Durability::None`
//! (memory and page cache only) and appends its changes, as one checksummed
//! record, to `bulkhead.wal`. A flusher thread syncs the log as soon as
//! something was appended, outside every lock, so appends go on while it
//! syncs and one sync covers every record appended before it started.
//! Waiters that arrive while a sync runs share the next one.
//!
//! Recovery ([`replay`]): redb reopens at its last durable commit; the
//! log's records are applied on top in order, in one durable redb commit,
//! and the log is emptied. A record is a full put or delete per key, so
//! applying a record twice, or over a state that already contains it,
//! gives the same state: the log may safely hold records that the redb
//! file already has. Replay stops at the first record that is short or
//! fails its checksum: a torn tail was never acknowledged (its sync had not
//! returned), and no acknowledged record can follow it.
//!
//! Checkpoints bound the log (and redb's file, which reuses the pages its
//! non-durable commits freed only after a durable one): when the log passes
//! [`CHECKPOINT_BYTES`] or [`CHECKPOINT_RECORDS`] the committing transaction is made durable by redb itself (covering every
//! earlier non-durable commit), then the log is truncated and synced.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use redb::{Database, Durability};

use crate::error::{Result, StoreError};
use crate::wal_record::frame;
pub(crate) use crate::wal_record::{replay, Changes};

/// The log file's name inside the state dir.
pub const WAL_FILE: &str = "bulkhead.wal";

/// Past this size the next commit checkpoints (one redb fsync, rare).
const CHECKPOINT_BYTES: u64 = 8 << 20;
/// Or after this many records: redb frees the pages that its non-durable
/// commits replaced only at a durable commit, so the file would grow by a
/// few pages per commit until one.
const CHECKPOINT_RECORDS: u64 = 512;

/// How far the log has been written and synced, in records.
#[derive(Debug, Default)]
struct Progress {
    appended: u64,
    synced: u64,
    /// Why the log can no longer be trusted (a failed write or sync).
    failed: Option<String>,
    stop: bool,
}

#[derive(Debug)]
struct Shared {
    path: PathBuf,
    progress: Mutex<Progress>,
    /// Wakes the flusher (something appended, or stop) and the waiters
    /// (something synced, or failed).
    changed: Condvar,
    /// A handle for the flusher's `fdatasync`; the same open file as the
    /// writer's, so it syncs what the writer appended.
    file: File,
}

impl Shared {
    fn progress(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(PoisonError::into_inner)
    }
    fn err(&self, op: &'static str, source: std::io::Error) -> StoreError {
        StoreError::Log {
            path: self.path.clone(),
            op,
            source,
        }
    }
    fn failed(&self, why: &str) -> StoreError {
        self.err("failed earlier", std::io::Error::other(why.to_owned()))
    }
    /// Marks the log untrustworthy and wakes every waiter.
    fn fail(&self, op: &'static str, e: &std::io::Error) {
        let mut p = self.progress();
        p.failed.get_or_insert_with(|| format!("{op}: {e}"));
        self.changed.notify_all();
    }
}

#[derive(Debug)]
struct Writer {
    file: File,
    bytes: u64,
    /// Records appended since the log was last emptied.
    records: u64,
}

/// The open commit log of a [`crate::RedbStore`].
#[derive(Debug)]
pub(crate) struct Wal {
    shared: Arc<Shared>,
    /// Held from the log append through the redb commit, so log order is
    /// commit order.
    writer: Mutex<Writer>,
    flusher: Option<JoinHandle<()>>,
}

impl Wal {
    /// Opens the (already replayed and emptied) log and starts its flusher.
    pub(crate) fn open(path: PathBuf) -> Result<Self> {
        let io = |op| {
            let path = path.clone();
            move |source| StoreError::Log { path, op, source }
        };
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&path)
            .map_err(io("open"))?;
        let bytes = file.metadata().map_err(io("stat"))?.len();
        let flush_file = file.try_clone().map_err(io("open"))?;
        let shared = Arc::new(Shared {
            file: flush_file,
            path: path.clone(),
            progress: Mutex::default(),
            changed: Condvar::new(),
        });
        let flusher = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("bulkhead-wal".into())
                .spawn(move || flush_loop(&shared))
                .map_err(io("start flusher"))?
        };
        Ok(Self {
            shared,
            writer: Mutex::new(Writer {
                file,
                bytes,
                records: 0,
            }),
            flusher: Some(flusher),
        })
    }

    /// Commits `txn` (whose changes are `changes`): logged and committed
    /// non-durably, or, past the checkpoint size, durably by redb with the
    /// log emptied after. Durable for certain only after [`Wal::sync`].
    pub(crate) fn commit(&self, mut txn: redb::WriteTransaction, changes: Changes) -> Result<()> {
        let mut w = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(why) = &self.shared.progress().failed {
            return Err(self.shared.failed(why));
        }
        let commit = |txn: redb::WriteTransaction| {
            txn.commit().map_err(|e| StoreError::backend("commit", e))
        };
        if changes.0.is_empty() {
            return commit(txn);
        }
        let record = frame(&changes.0);
        if w.bytes + record.len() as u64 > CHECKPOINT_BYTES || w.records >= CHECKPOINT_RECORDS {
            txn.set_durability(Durability::Immediate)
                .map_err(|e| StoreError::backend("set durability", e))?;
            commit(txn)?;
            // Everything committed so far is durable in redb now.
            let mut p = self.shared.progress();
            p.synced = p.appended;
            self.shared.changed.notify_all();
            drop(p);
            return self.truncate(&mut w);
        }
        if let Err(e) = w.file.write_all(&record) {
            // Part of the record may be in the file: nothing after it
            // could be replayed, so nothing more may be committed.
            self.shared.fail("append", &e);
            return Err(self.shared.err("append", e));
        }
        w.bytes += record.len() as u64;
        w.records += 1;
        // The record is logged first: if this commit fails, replay after a
        // restart would apply it, so stop here instead of diverging.
        commit(txn).inspect_err(|e| {
            self.shared
                .fail("commit", &std::io::Error::other(e.to_string()));
        })?;
        let mut p = self.shared.progress();
        p.appended += 1;
        self.shared.changed.notify_all();
        Ok(())
    }

    /// Returns once every record appended before the call is synced; a
    /// sync already running when the caller arrives does not count (it may
    /// have started before the caller's record was appended).
    pub(crate) fn sync(&self) -> Result<()> {
        let mut p = self.shared.progress();
        let target = p.appended;
        while p.synced < target && p.failed.is_none() {
            p = self
                .shared
                .changed
                .wait(p)
                .unwrap_or_else(PoisonError::into_inner);
        }
        match &p.failed {
            Some(why) if p.synced < target => Err(self.shared.failed(why)),
            _ => Ok(()),
        }
    }

    /// Makes everything committed durable in redb and empties the log (a
    /// clean close; also bounds the log's size).
    pub(crate) fn checkpoint(&self, db: &Database) -> Result<()> {
        let mut w = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let mut txn = db
            .begin_write()
            .map_err(|e| StoreError::backend("begin write transaction", e))?;
        txn.set_durability(Durability::Immediate)
            .map_err(|e| StoreError::backend("set durability", e))?;
        txn.commit().map_err(|e| StoreError::backend("commit", e))?;
        self.truncate(&mut w)
    }

    fn truncate(&self, w: &mut Writer) -> Result<()> {
        let done = w.file.set_len(0).and_then(|()| w.file.sync_data());
        done.map_err(|e| {
            self.shared.fail("truncate", &e);
            self.shared.err("truncate", e)
        })?;
        w.bytes = 0;
        w.records = 0;
        Ok(())
    }

    /// Stops the flusher (the store is closing).
    pub(crate) fn stop(&mut self) {
        self.shared.progress().stop = true;
        self.shared.changed.notify_all();
        if let Some(flusher) = self.flusher.take() {
            let _ = flusher.join();
        }
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The flusher: syncs whenever records were appended since the last sync.
fn flush_loop(shared: &Shared) {
    let mut p = shared.progress();
    loop {
        while !p.stop && p.failed.is_none() && p.synced >= p.appended {
            p = shared
                .changed
                .wait(p)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if p.stop || p.failed.is_some() {
            return;
        }
        let target = p.appended;
        drop(p);
        let done = shared.file.sync_data();
        p = shared.progress();
        match done {
            Ok(()) => p.synced = p.synced.max(target),
            // After a failed fdatasync the kernel may have dropped the dirty
            // pages: retrying could report success for lost data.
            Err(e) => {
                p.failed.get_or_insert_with(|| format!("sync: {e}"));
            }
        }
        shared.changed.notify_all();
    }
}
