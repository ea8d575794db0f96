//! The redb store on disk: durability across reopen, crash safety, file
//! modes and the single-process lock.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bulkhead_store::{Kind, Op, Reader, Record, RedbStore, Store, StoreExt, DB_FILE};
use common::{net, Net};
use serde::{Deserialize, Serialize};

#[test]
fn committed_writes_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let revision = {
        let store = RedbStore::open(&state).unwrap();
        store
            .transaction(|t| {
                t.put(&net("n1", "front"))?;
                t.put_intent(Op::Create, Kind::Networks, "n1", serde_json::Value::Null)?;
                t.put(&net("n2", "back"))
            })
            .unwrap();
        // Uncommitted work is not there after reopen.
        let mut t = store.begin_write().unwrap();
        t.put(&net("n3", "never")).unwrap();
        drop(t);
        store.read(|t| t.revision()).unwrap()
    };
    let store = RedbStore::open(&state).unwrap();
    store
        .read(|t| {
            assert_eq!(
                t.list::<Net>()?,
                vec![net("n1", "front"), net("n2", "back")]
            );
            assert_eq!(t.list_intents()?.len(), 1);
            assert_eq!(t.revision()?, revision);
            Ok(())
        })
        .unwrap();
    // Revisions keep increasing after a restart.
    let next = store.transaction(|t| t.put(&net("n4", "x"))).unwrap();
    assert!(next > revision);
}

#[test]
fn state_dir_is_private_and_file_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("a/b");
    let store = RedbStore::open(&state).unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&state.join(DB_FILE)), 0o600);
    assert_eq!(store.path(), state.join(DB_FILE));
    let err = RedbStore::open(&state).unwrap_err().to_string();
    assert_eq!(err, format!("open {}", state.join(DB_FILE).display()));
    drop(store);
    RedbStore::open(&state).unwrap();
}

#[test]
fn garbage_file_is_reported_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(DB_FILE), b"not a database, certainly not").unwrap();
    let err = RedbStore::open(dir.path()).unwrap_err();
    assert!(err.to_string().starts_with("open "), "{err}");
    assert!(std::error::Error::source(&err).is_some());
}

/// One row of a batch: every transaction of the crash writer writes a
/// whole batch of these, so a torn transaction would show a partial batch.
#[derive(Serialize, Deserialize)]
struct Row {
    batch: u64,
    index: u64,
    padding: String,
}

const ROWS_PER_BATCH: u64 = 16;
const CRASH_ENV: &str = "BULKHEAD_STORE_CRASH_DIR";

impl Record for Row {
    const KIND: Kind = Kind::Endpoints;
    const SCHEMA: u32 = 1;
    fn key(&self) -> String {
        format!("{:08}-{:02}", self.batch, self.index)
    }
}

/// The child side of `crash_leaves_only_whole_transactions`: writes batches
/// until it is killed. Does nothing in a normal test run.
#[test]
fn crash_writer_child() {
    let Some(dir) = std::env::var_os(CRASH_ENV) else {
        return;
    };
    let store = RedbStore::open(dir).unwrap();
    let first = store
        .read(|t| Ok(t.list::<Row>()?.len() as u64 / ROWS_PER_BATCH))
        .unwrap();
    println!("ready");
    for batch in first.. {
        store
            .transaction(|t| {
                for index in 0..ROWS_PER_BATCH {
                    t.put(&Row {
                        batch,
                        index,
                        padding: "x".repeat(2048),
                    })?;
                }
                Ok(())
            })
            .unwrap();
    }
}

#[test]
fn crash_leaves_only_whole_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut batches = 0;
    for (round, delay_ms) in [150u64, 420, 90].into_iter().enumerate() {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_writer_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CRASH_ENV, dir.path())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        // Let it commit some batches, then SIGKILL it mid-loop.
        let deadline = Instant::now() + Duration::from_millis(delay_ms);
        while Instant::now() < deadline {
            assert!(child.try_wait().unwrap().is_none(), "writer exited early");
            std::thread::sleep(Duration::from_millis(10));
        }
        child.kill().unwrap();
        child.wait().unwrap();

        let store = RedbStore::open(dir.path()).unwrap();
        let rows = store.read(|t| t.list::<Row>()).unwrap();
        batches = rows.len() as u64 / ROWS_PER_BATCH;
        assert_eq!(
            rows.len() as u64 % ROWS_PER_BATCH,
            0,
            "round {round}: a torn batch survived"
        );
        for (i, row) in rows.iter().enumerate() {
            let i = i as u64;
            assert_eq!(
                (row.batch, row.index),
                (i / ROWS_PER_BATCH, i % ROWS_PER_BATCH)
            );
        }
        let revision = store.read(|t| t.revision()).unwrap();
        assert_eq!(
            revision,
            batches * ROWS_PER_BATCH,
            "round {round}: revision counter torn"
        );
        eprintln!("round {round}: {batches} whole batches after kill at {delay_ms} ms");
    }
    assert!(
        batches > 0,
        "the writer never committed; the test proved nothing"
    );
}

#[test]
fn a_newer_file_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(RedbStore::open(dir.path()).unwrap());
    {
        let db = redb::Database::create(dir.path().join(DB_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        let meta: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("meta");
        txn.open_table(meta)
            .unwrap()
            .insert("store/format", b"9".as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    let err = RedbStore::open(dir.path()).unwrap_err().to_string();
    assert_eq!(
        err,
        "schema 9 of meta/store/format is newer than this bulkhead understands (1)"
    );
}

/// A row owned by another record ([`Kind::Acls`]), keyed `<owner>/<id>`.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Owned {
    owner: String,
    id: String,
}

impl Record for Owned {
    const KIND: Kind = Kind::Acls;
    const SCHEMA: u32 = 1;
    fn key(&self) -> String {
        format!("{}/{}", self.owner, self.id)
    }
}

#[test]
fn owned_rows_survive_reopen_and_go_by_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let row = |owner: &str, id: &str| Owned {
        owner: owner.into(),
        id: id.into(),
    };
    {
        let store = RedbStore::open(&state).unwrap();
        store
            .transaction(|t| {
                for (o, i) in [("a", "1"), ("a", "2"), ("ab", "1"), ("b", "1")] {
                    t.put(&row(o, i))?;
                }
                Ok(())
            })
            .unwrap();
    }
    let store = RedbStore::open(&state).unwrap();
    let a = store.read(|t| t.list_prefix::<Owned>("a/")).unwrap();
    assert_eq!(a, [row("a", "1"), row("a", "2")], "only the owner's rows");
    assert_eq!(
        store
            .transaction(|t| t.delete_prefix::<Owned>("a/"))
            .unwrap(),
        2
    );
    drop(store);
    let store = RedbStore::open(&state).unwrap();
    let left = store.read(|t| t.list::<Owned>()).unwrap();
    assert_eq!(left, [row("ab", "1"), row("b", "1")]);
}
