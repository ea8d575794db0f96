//! HCN import (`bulkhead import FILE.json`, `docs/hcn.md`): an HCN v2
//! document turned into bulkhead objects through the engine's own
//! operations, as one operation on an [`Undo`] log.
//!
//! Contract: all or nothing. Networks, then namespaces, then endpoints are
//! created; an endpoint's ACL is stored and programmed whole by
//! [`Engine::replace_acls`] (one store transaction and one nf_tables
//! transaction per enforcement point, not one per rule). If any object
//! fails, every object this import created is deleted again, newest first,
//! and the error names the failing object; objects that existed before are
//! never touched (an endpoint may name them by id).

use bulkhead_model::hcn::{parse_document, ImportDocument};
use bulkhead_model::{AclRuleSpec, Id, InvalidValue, Name, NetworkSpec};

use crate::error::{EngineError, Result};
use crate::undo::Undo;
use crate::Engine;

/// What an import created, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Imported {
    pub networks: Vec<String>,
    pub namespaces: Vec<String>,
    pub endpoints: Vec<String>,
    /// ACL rules added, over all endpoints.
    pub acls: usize,
}

/// The name of the object with HCN id `id`: imported in this document, or
/// already known to the engine.
fn name_of(
    id: Id,
    imported: &[(Id, Name)],
    existing: impl Iterator<Item = (Id, Name)>,
    what: &'static str,
) -> Result<Name> {
    imported
        .iter()
        .cloned()
        .chain(existing)
        .find(|(i, _)| *i == id)
        .map(|(_, n)| n)
        .ok_or_else(|| EngineError::not_found(what, id.to_string()))
}

/// Logs an undo failure's text (the rollback goes on with the rest).
fn text(r: Result<()>) -> std::result::Result<(), String> {
    r.map_err(|e| e.to_string())
}

impl Engine {
    /// Imports the HCN v2 document `bytes` (JSON); see the module doc.
    pub fn import_hcn(&self, bytes: &[u8]) -> Result<Imported> {
        let doc = parse_document(bytes)?;
        let mut undo = Undo::new();
        match self.create_all(&doc, &mut undo) {
            Ok(out) => {
                undo.commit();
                Ok(out)
            }
            Err(e) => {
                undo.rollback();
                Err(e)
            }
        }
    }

    fn create_all<'a>(&'a self, doc: &ImportDocument, undo: &mut Undo<'a>) -> Result<Imported> {
        let mut out = Imported::default();
        let mut networks = Vec::new();
        for n in &doc.networks {
            let made = self.create_network(NetworkSpec::from(n))?;
            let name = made.name.to_string();
            undo.push("import network", {
                let name = name.clone();
                move || text(self.delete_network(&name))
            });
            networks.push((n.id, made.name));
            out.networks.push(name);
        }
        let mut namespaces = Vec::new();
        for ns in &doc.namespaces {
            let made = self.create_namespace(ns.to_spec())?;
            let name = made.name.to_string();
            undo.push("import namespace", {
                let name = name.clone();
                move || text(self.delete_namespace(&name))
            });
            namespaces.push((ns.id, made.name));
            out.namespaces.push(name);
        }
        for e in &doc.endpoints {
            let net = name_of(
                e.network,
                &networks,
                self.networks().into_iter().map(|n| (n.id, n.name)),
                "network",
            )?;
            let Some(ns_id) = e.namespace else {
                return Err(EngineError::Invalid(InvalidValue::new(
                    "HostComputeNamespace",
                    "",
                    format!(
                        "the namespace of endpoint {}: bulkhead endpoints live in a namespace",
                        e.name
                    ),
                )));
            };
            let ns = name_of(
                ns_id,
                &namespaces,
                self.namespaces().into_iter().map(|n| (n.id, n.name)),
                "namespace",
            )?;
            let made = self.create_endpoint(e.to_spec(&net, &ns))?;
            let name = made.name.to_string();
            undo.push("import endpoint", {
                let name = name.clone();
                move || text(self.delete_endpoint(&name))
            });
            if !e.acls.is_empty() {
                let specs = e.acls.iter().map(AclRuleSpec::from).collect();
                out.acls += self.replace_acls(&name, specs)?.len();
            }
            out.endpoints.push(name);
        }
        Ok(out)
    }
}

#[cfg(test)]
#[path = "import_tests.rs"]
mod tests;
