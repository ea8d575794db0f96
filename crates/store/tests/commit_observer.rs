//! The commit observer of `RedbStore` (metrics' store commit latency): told
//! once per committed write transaction, with its duration; not told for a
//! transaction rolled back; only the first observer set is kept.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bulkhead_store::{CommitObserver, Kind, Record, RedbStore, Store, StoreExt};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Net {
    id: String,
}

impl Record for Net {
    const KIND: Kind = Kind::Networks;
    const SCHEMA: u32 = 1;
    fn key(&self) -> String {
        self.id.clone()
    }
}

#[test]
fn every_commit_is_timed_once_and_rollbacks_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(dir.path()).unwrap();
    let (commits, nanos) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let (c, n) = (commits.clone(), nanos.clone());
    assert!(
        store.observe_commits(CommitObserver(Box::new(move |elapsed, ok| {
            assert!(ok);
            c.fetch_add(1, Ordering::SeqCst);
            n.fetch_add(elapsed.as_nanos() as u64, Ordering::SeqCst);
        })))
    );
    assert!(!store.observe_commits(CommitObserver(Box::new(|_, _| {}))));
    for id in ["a", "b"] {
        store
            .transaction(|t| t.put(&Net { id: id.into() }).map(|_| ()))
            .unwrap();
    }
    // Rolled back: dropped without commit.
    let mut txn = store.begin_write().unwrap();
    txn.put(&Net { id: "c".into() }).unwrap();
    drop(txn);
    assert_eq!(commits.load(Ordering::SeqCst), 2);
    // A durable (fsync'd) commit takes measurable time.
    assert!(nanos.load(Ordering::SeqCst) > 0);
}
