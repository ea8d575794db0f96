//! What the engine keeps in the store: each object's model type, embedded
//! whole (`#[serde(flatten)]`), plus only what the store needs beyond it.
//! The model types' serialised forms (strings such as `10.0.0.0/24`, `tcp`,
//! `80,1000-2000`) are stable, so a record's JSON is the model's fields
//! followed by the record's own; the API has its own types (`*Info`) and
//! never shows a record. A change of a model type's serialised form is a
//! change of the disk format: bump the record's `SCHEMA` and teach its
//! `upgrade` the old body (see `bulkhead_store`'s envelope).

use std::ops::{Deref, DerefMut};

use bulkhead_dataplane::kernel::NetnsId;
use bulkhead_model::{Endpoint, Namespace, Network};
use bulkhead_store::{Kind, Record};
use serde::{Deserialize, Serialize};

/// A network as stored: the model's network, nothing more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NetworkRecord(pub Network);

impl Record for NetworkRecord {
    const KIND: Kind = Kind::Networks;
    const SCHEMA: u32 = 1;
    fn key(&self) -> String {
        self.0.id.to_string()
    }
}

/// A namespace as stored: the model's namespace and whether (and which)
/// network namespace was adopted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceRecord {
    #[serde(flatten)]
    pub namespace: Namespace,
    /// The network namespace at `netns_path` was made by someone else (a
    /// container runtime): never created, recreated or deleted by us.
    #[serde(default)]
    pub adopted: bool,
    /// Schema 2: the identity of the adopted network namespace when it was
    /// adopted. Programming it later checks the namespace it opens against
    /// this (a re-bound path must not redirect it). Absent in schema-1
    /// records: reconcile records the namespace found at the path then,
    /// unless that is one never to be adopted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns_id: Option<NetnsIdRecord>,
}

/// [`NetnsId`] as stored: the nsfs device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetnsIdRecord {
    pub dev: u64,
    pub ino: u64,
}

impl From<NetnsId> for NetnsIdRecord {
    fn from(n: NetnsId) -> Self {
        Self {
            dev: n.dev,
            ino: n.ino,
        }
    }
}

impl From<NetnsIdRecord> for NetnsId {
    fn from(n: NetnsIdRecord) -> Self {
        Self {
            dev: n.dev,
            ino: n.ino,
        }
    }
}

impl Record for NamespaceRecord {
    const KIND: Kind = Kind::Namespaces;
    /// 2: `netns_id` added (schema-1 bodies read as they are, without it).
    /// 3: `netns_path` is absent for a namespace without one (vm) instead
    /// of `""` (the model's `Option<PathBuf>`); older bodies are upgraded.
    const SCHEMA: u32 = 3;
    fn key(&self) -> String {
        self.namespace.id.to_string()
    }
    fn upgrade(from_schema: u32, mut body: serde_json::Value) -> Result<serde_json::Value, String> {
        if from_schema < 3 {
            let object = body.as_object_mut().ok_or("not an object")?;
            if object.get("netns_path").and_then(|p| p.as_str()) == Some("") {
                object.remove("netns_path");
            }
        }
        Ok(body)
    }
}

impl NamespaceRecord {
    /// The record of `n`, adopted (with the namespace's identity) or not.
    pub fn of(n: &Namespace, adopted: Option<NetnsId>) -> Self {
        Self {
            namespace: n.clone(),
            adopted: adopted.is_some(),
            netns_id: adopted.map(Into::into),
        }
    }
}

/// An endpoint as stored: the model's endpoint and the CNI key it came
/// with. Reads through to the endpoint ([`Deref`]), as the engine's state
/// holds records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRecord {
    #[serde(flatten)]
    pub endpoint: Endpoint,
    /// The CNI key (container id, interface) when the endpoint came from the
    /// CNI plugin.
    #[serde(default)]
    pub container_id: Option<String>,
    /// A vm endpoint's TAP options as given (`None`: root-owned, one
    /// queue); reconcile re-creates the TAP with them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tap: Option<bulkhead_model::TapOptions>,
}

impl Record for EndpointRecord {
    const KIND: Kind = Kind::Endpoints;
    /// 2: the ACL rules are rows of their own (`acl_rows.rs`); the body's
    /// `acls` is empty. Schema-1 bodies (rules inside) read as they are and
    /// are rewritten by reconcile. Store it only through
    /// `acl_rows::put_endpoint`.
    const SCHEMA: u32 = 2;
    fn key(&self) -> String {
        self.endpoint.id.to_string()
    }
}

impl EndpointRecord {
    pub fn from_endpoint(e: &Endpoint, container_id: Option<String>) -> Self {
        Self {
            endpoint: e.clone(),
            container_id,
            tap: None,
        }
    }

    /// With the vm endpoint's TAP options.
    pub fn with_tap(mut self, tap: Option<bulkhead_model::TapOptions>) -> Self {
        self.tap = tap;
        self
    }
}

impl Deref for EndpointRecord {
    type Target = Endpoint;
    fn deref(&self) -> &Endpoint {
        &self.endpoint
    }
}

impl DerefMut for EndpointRecord {
    fn deref_mut(&mut self) -> &mut Endpoint {
        &mut self.endpoint
    }
}

#[cfg(test)]
#[path = "records_tests.rs"]
mod tests;
