//! Typed records, revisions, schema checks, rollback and intents, run
//! against both store implementations.

mod common;

use bulkhead_store::{Kind, Op, Reader, Record, StoreError, StoreExt};
use common::{each_store, net, Ep, Net};
use serde::{Deserialize, Serialize};

#[test]
fn crud() {
    each_store(|store| {
        store
            .transaction(|t| {
                t.put(&net("n1", "front"))?;
                t.put(&net("n2", "back"))?;
                t.put(&Ep {
                    id: "e1".into(),
                    network: "n1".into(),
                })
            })
            .unwrap();
        store
            .read(|t| {
                assert_eq!(t.get::<Net>("n1")?, Some(net("n1", "front")));
                assert_eq!(t.get::<Net>("nope")?, None);
                assert_eq!(
                    t.list::<Net>()?,
                    vec![net("n1", "front"), net("n2", "back")]
                );
                assert_eq!(t.list::<Ep>()?.len(), 1);
                Ok(())
            })
            .unwrap();
        store
            .transaction(|t| {
                t.put(&net("n1", "renamed"))?;
                assert!(t.delete::<Net>("n2")?);
                assert!(!t.delete::<Net>("n2")?);
                // A write transaction sees its own writes.
                assert_eq!(t.get::<Net>("n1")?.unwrap().name, "renamed");
                assert_eq!(t.get::<Net>("n2")?, None);
                Ok(())
            })
            .unwrap();
        let nets = store.read(|t| t.list::<Net>()).unwrap();
        assert_eq!(nets, vec![net("n1", "renamed")]);
    });
}

#[test]
fn error_rolls_back_everything() {
    each_store(|store| {
        store.transaction(|t| t.put(&net("keep", "a"))).unwrap();
        let before = store.read(|t| t.revision()).unwrap();
        let err = store
            .transaction(|t| {
                t.put(&net("lost", "b"))?;
                t.delete::<Net>("keep")?;
                t.put_intent(Op::Create, Kind::Networks, "lost", serde_json::json!({}))?;
                Err::<(), _>(StoreError::NoPool {
                    network: "x".into(),
                })
            })
            .unwrap_err();
        assert!(matches!(err, StoreError::NoPool { .. }));
        // Dropping an uncommitted transaction also rolls back.
        {
            let mut t = store.begin_write().unwrap();
            t.put(&net("also-lost", "c")).unwrap();
        }
        store
            .read(|t| {
                assert_eq!(t.list::<Net>()?, vec![net("keep", "a")]);
                assert!(t.list_intents()?.is_empty());
                assert_eq!(t.revision()?, before);
                Ok(())
            })
            .unwrap();
    });
}

#[test]
fn readers_see_a_snapshot() {
    each_store(|store| {
        store.transaction(|t| t.put(&net("n1", "a"))).unwrap();
        let snapshot = store.begin_read().unwrap();
        store.transaction(|t| t.put(&net("n1", "b"))).unwrap();
        assert_eq!(snapshot.get::<Net>("n1").unwrap().unwrap().name, "a");
        assert_eq!(
            store.read(|t| t.get::<Net>("n1")).unwrap().unwrap().name,
            "b"
        );
    });
}

#[test]
fn revisions_increase_with_every_write() {
    each_store(|store| {
        assert_eq!(store.read(|t| t.revision()).unwrap(), 0);
        let mut last = 0;
        for i in 0..5 {
            let (r1, r2) = store
                .transaction(|t| Ok((t.put(&net("n", &i.to_string()))?, t.put(&net("m", "x"))?)))
                .unwrap();
            assert!(last < r1 && r1 < r2, "{last} < {r1} < {r2}");
            last = r2;
            let stored = store
                .read(|t| t.get_versioned::<Net>("n"))
                .unwrap()
                .unwrap();
            assert_eq!(stored.revision, r1);
        }
        store.transaction(|t| t.delete::<Net>("m")).unwrap();
        assert!(store.read(|t| t.revision()).unwrap() > last);
    });
}

#[test]
fn put_if_revision_detects_lost_updates() {
    each_store(|store| {
        let created = store
            .transaction(|t| t.put_if_revision(&net("n", "a"), None))
            .unwrap();
        let err = store
            .transaction(|t| t.put_if_revision(&net("n", "dup"), None))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("revision conflict on networks/n: expected absent, found {created}")
        );
        let updated = store
            .transaction(|t| t.put_if_revision(&net("n", "b"), Some(created)))
            .unwrap();
        let err = store
            .transaction(|t| t.put_if_revision(&net("n", "stale"), Some(created)))
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Conflict { expected: Some(e), found: Some(f), .. } if e == created && f == updated)
        );
        assert_eq!(
            store.read(|t| t.get::<Net>("n")).unwrap().unwrap().name,
            "b"
        );
    });
}

/// The same table and key as [`Net`], written by a future bulkhead or an old one.
#[derive(Serialize, Deserialize)]
struct NetV<const S: u32> {
    id: String,
    label: String,
}

impl<const S: u32> Record for NetV<S> {
    const KIND: Kind = Kind::Networks;
    const SCHEMA: u32 = S;
    fn key(&self) -> String {
        self.id.clone()
    }
}

#[test]
fn schema_too_new_is_rejected_and_old_is_upgraded() {
    each_store(|store| {
        store
            .transaction(|t| {
                t.put(&NetV::<3> {
                    id: "abc".into(),
                    label: "future".into(),
                })?;
                t.put(&NetV::<1> {
                    id: "old".into(),
                    label: "past".into(),
                })
            })
            .unwrap();
        let err = store.read(|t| t.get::<Net>("abc")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "schema 3 of networks/abc is newer than this bulkhead understands (2)"
        );
        // A listing fails too rather than silently skipping the record.
        assert!(store.read(|t| t.list::<Net>()).is_err());
        let old = store.read(|t| t.get::<Net>("old")).unwrap().unwrap();
        assert_eq!(old.name, "past");
    });
}

#[test]
fn undecodable_body_names_the_record() {
    #[derive(Serialize, Deserialize)]
    struct Wrong {
        id: u32,
    }
    impl Record for Wrong {
        const KIND: Kind = Kind::Endpoints;
        const SCHEMA: u32 = 1;
        fn key(&self) -> String {
            "abc".into()
        }
    }
    each_store(|store| {
        store.transaction(|t| t.put(&Wrong { id: 7 })).unwrap();
        let err = store.read(|t| t.get::<Ep>("abc")).unwrap_err();
        assert_eq!(err.to_string(), "decode endpoints/abc");
        assert!(std::error::Error::source(&err).is_some());
    });
}

#[test]
fn bad_keys_are_refused() {
    #[derive(Serialize, Deserialize)]
    struct Meta(String);
    impl Record for Meta {
        const KIND: Kind = Kind::Meta;
        const SCHEMA: u32 = 1;
        fn key(&self) -> String {
            self.0.clone()
        }
    }
    each_store(|store| {
        let err = store
            .transaction(|t| t.put(&Meta("store/revision".into())))
            .unwrap_err();
        assert!(matches!(err, StoreError::InvalidKey { .. }), "{err}");
        assert!(store.transaction(|t| t.put(&net("", "x"))).is_err());
        store
            .transaction(|t| t.put(&Meta("next_compartment".into())))
            .unwrap();
    });
}

#[test]
fn intents_are_listed_in_start_order_until_cleared() {
    each_store(|store| {
        let (a, b) = store
            .transaction(|t| {
                t.put(&Ep {
                    id: "e1".into(),
                    network: "n1".into(),
                })?;
                let a = t.put_intent(
                    Op::Create,
                    Kind::Endpoints,
                    "e1",
                    serde_json::json!({"step": 1}),
                )?;
                let b = t.put_intent(Op::Delete, Kind::Networks, "n9", serde_json::Value::Null)?;
                Ok((a, b))
            })
            .unwrap();
        assert!(a.id < b.id);
        let listed = store.read(|t| t.list_intents()).unwrap();
        assert_eq!(listed, vec![a.clone(), b.clone()]);
        assert_eq!(listed[0].op, Op::Create);
        assert_eq!(listed[0].object_kind, Kind::Endpoints);
        assert_eq!(listed[0].detail["step"], 1);
        assert!(listed[0].started_at > 0);
        assert!(store.transaction(|t| t.clear_intent(&a.id)).unwrap());
        assert!(!store.transaction(|t| t.clear_intent(&a.id)).unwrap());
        assert_eq!(store.read(|t| t.list_intents()).unwrap(), vec![b]);
    });
}
