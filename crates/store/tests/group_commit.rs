//! Group commit at the store level: concurrent writers, each acknowledging
//! a transaction only after `Store::sync`, are killed with SIGKILL; after
//! reopening, every acknowledged transaction is there, the store is a
//! prefix of the commit order (no gap, revision counter intact), and runs
//! long enough to cross several log checkpoints (512 records each).
//! Without the commit log (deleted before reopening: the weakened setup)
//! acknowledged transactions are lost, so the check can fail.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bulkhead_store::{Kind, Reader, Record, RedbStore, Store, StoreExt, WAL_FILE};
use serde::{Deserialize, Serialize};

const ENV: &str = "BULKHEAD_STORE_GROUP_COMMIT_DIR";
const WRITERS: u64 = 4;

/// One row per transaction; `seq` is the commit order.
#[derive(Serialize, Deserialize)]
struct Row {
    seq: u64,
}

impl Record for Row {
    const KIND: Kind = Kind::Endpoints;
    const SCHEMA: u32 = 1;
    fn key(&self) -> String {
        format!("{:012}", self.seq)
    }
}

/// The child: `WRITERS` threads commit one row each per transaction
/// (deferred), sync, then print the row's seq as acknowledged. Does
/// nothing in a normal test run.
#[test]
fn group_commit_writer_child() {
    let Some(dir) = std::env::var_os(ENV) else {
        return;
    };
    let store = Arc::new(RedbStore::open(dir).unwrap());
    let first = store.read(|t| t.revision()).unwrap();
    let next = Arc::new(AtomicU64::new(first));
    println!("ready");
    let threads: Vec<_> = (0..WRITERS)
        .map(|_| {
            let (store, next) = (Arc::clone(&store), Arc::clone(&next));
            std::thread::spawn(move || loop {
                let seq = store
                    .transaction_deferred(|t| {
                        // Taken inside the transaction: commit order.
                        let seq = next.fetch_add(1, Ordering::SeqCst) + 1;
                        t.put(&Row { seq })?;
                        Ok(seq)
                    })
                    .unwrap();
                store.sync().unwrap();
                println!("{seq}");
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// Runs the child until it has acknowledged `acks` transactions, kills it
/// mid-loop; every seq it acknowledged.
fn run_and_kill(dir: &std::path::Path, acks: usize) -> Vec<u64> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "group_commit_writer_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ENV, dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for seq in out
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| l.trim().parse::<u64>().ok())
        {
            let _ = tx.send(seq);
        }
    });
    let mut acked = Vec::new();
    let until = Instant::now() + Duration::from_secs(120);
    while acked.len() < acks {
        assert!(Instant::now() < until, "only {} acknowledged", acked.len());
        if let Ok(seq) = rx.recv_timeout(Duration::from_millis(100)) {
            acked.push(seq);
        }
        assert!(child.try_wait().unwrap().is_none(), "writer exited early");
    }
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
    // Acknowledged (printed) before the kill, read after it.
    acked.extend(rx.try_iter());
    acked
}

#[test]
fn kill_9_keeps_every_acknowledged_transaction_across_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let mut total = 0;
    // Past a checkpoint (512 records) in the first two rounds.
    for (round, acks) in [600usize, 700, 100].into_iter().enumerate() {
        let acked = run_and_kill(dir.path(), acks);
        assert!(!acked.is_empty(), "round {round}: nothing acknowledged");
        let store = RedbStore::open(dir.path()).unwrap();
        let rows = store.read(|t| t.list::<Row>()).unwrap();
        let revision = store.read(|t| t.revision()).unwrap();
        // A prefix of the commit order: 1..=n, no gap, counter matching.
        for (i, row) in rows.iter().enumerate() {
            assert_eq!(
                row.seq,
                i as u64 + 1,
                "round {round}: gap in the commit order"
            );
        }
        assert_eq!(
            revision,
            rows.len() as u64,
            "round {round}: revision counter"
        );
        let max = acked.iter().max().copied().unwrap_or(0);
        assert!(
            max <= rows.len() as u64,
            "round {round}: acknowledged up to {max}, only {} kept",
            rows.len()
        );
        eprintln!(
            "round {round}: {} acknowledged, {} kept",
            acked.len(),
            rows.len() as u64 - total
        );
        total = rows.len() as u64;
    }
    assert!(
        total > 2 * 512,
        "only {total} transactions: no log checkpoint was crossed"
    );
}

#[test]
fn without_the_log_acknowledged_transactions_are_lost() {
    let dir = tempfile::tempdir().unwrap();
    // Short enough not to reach a checkpoint (512 records).
    let acked = run_and_kill(dir.path(), 100);
    assert!(!acked.is_empty(), "nothing acknowledged");
    std::fs::remove_file(dir.path().join(WAL_FILE)).unwrap();
    let store = RedbStore::open(dir.path()).unwrap();
    let kept = store.read(|t| t.list::<Row>()).unwrap().len() as u64;
    let max = acked.iter().max().copied().unwrap_or(0);
    assert!(
        kept < max,
        "the weakened store kept all {max} acknowledged transactions: the check cannot fail"
    );
}
