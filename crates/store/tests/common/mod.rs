//! Record types and helpers shared by the store's integration tests.
#![allow(dead_code)]

use bulkhead_store::{Kind, MemoryStore, Record, RedbStore, Store};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Net {
    pub id: String,
    pub name: String,
}

impl Record for Net {
    const KIND: Kind = Kind::Networks;
    const SCHEMA: u32 = 2;
    fn key(&self) -> String {
        self.id.clone()
    }
    fn upgrade(from: u32, mut body: serde_json::Value) -> Result<serde_json::Value, String> {
        // Schema 1 called the name "label".
        if from == 1 {
            let label = body
                .get("label")
                .cloned()
                .ok_or("schema 1 body has no label")?;
            body["name"] = label;
        }
        Ok(body)
    }
}

pub fn net(id: &str, name: &str) -> Net {
    Net {
        id: id.to_owned(),
        name: name.to_owned(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ep {
    pub id: String,
    pub network: String,
}

impl Record for Ep {
    const KIND: Kind = Kind::Endpoints;
    const SCHEMA: u32 = 1;
    fn key(&self) -> String {
        self.id.clone()
    }
}

/// Runs `test` against a fresh store of each implementation.
pub fn each_store(test: impl Fn(&dyn Store)) {
    test(&MemoryStore::new());
    let dir = tempfile::tempdir().unwrap();
    test(&RedbStore::open(dir.path()).unwrap());
}
