//! `bulkhead import FILE.json`: HCN v2 documents (see `docs/hcn.md`) turned
//! into bulkhead objects through the same engine operations as the CLI.
//! All or nothing: if one object fails, the ones this import created are
//! removed again, newest first, and the error names the failing object.

use bulkhead_api::ImportResult;
use bulkhead_engine::{Engine, EngineError};
use bulkhead_model::hcn::parse_document;
use bulkhead_model::{AclRuleSpec, Id, Name, NetworkSpec};

enum Created {
    Network(String),
    Namespace(String),
    Endpoint(String),
}

/// The name of the object with HCN id `id`: imported in this document, or
/// already known to the engine.
fn name_of(
    id: Id,
    imported: &[(Id, Name)],
    existing: impl Iterator<Item = (Id, Name)>,
    what: &'static str,
) -> Result<Name, EngineError> {
    imported
        .iter()
        .cloned()
        .chain(existing)
        .find(|(i, _)| *i == id)
        .map(|(_, n)| n)
        .ok_or_else(|| EngineError::not_found(what, id.to_string()))
}

pub fn import(engine: &Engine, document: serde_json::Value) -> Result<ImportResult, EngineError> {
    let bytes = serde_json::to_vec(&document).map_err(|e| EngineError::Conflict(e.to_string()))?;
    let doc = parse_document(&bytes)?;
    let mut created = Vec::new();
    let result = create_all(engine, &doc, &mut created);
    if result.is_err() {
        for c in created.iter().rev() {
            let undone = match c {
                Created::Endpoint(n) => engine.delete_endpoint(n),
                Created::Namespace(n) => engine.delete_namespace(n),
                Created::Network(n) => engine.delete_network(n),
            };
            if let Err(e) = undone {
                tracing::warn!(error = %e, "import rollback");
            }
        }
    }
    result
}

fn create_all(
    engine: &Engine,
    doc: &bulkhead_model::hcn::ImportDocument,
    created: &mut Vec<Created>,
) -> Result<ImportResult, EngineError> {
    let mut out = ImportResult::default();
    let mut networks = Vec::new();
    for n in &doc.networks {
        let made = engine.create_network(NetworkSpec::from(n))?;
        created.push(Created::Network(made.name.to_string()));
        networks.push((n.id, made.name.clone()));
        out.networks.push(made.name.to_string());
    }
    let mut namespaces = Vec::new();
    for ns in &doc.namespaces {
        let made = engine.create_namespace(ns.to_spec())?;
        created.push(Created::Namespace(made.name.to_string()));
        namespaces.push((ns.id, made.name.clone()));
        out.namespaces.push(made.name.to_string());
    }
    for e in &doc.endpoints {
        let net = name_of(
            e.network,
            &networks,
            engine.networks().into_iter().map(|n| (n.id, n.name)),
            "network",
        )?;
        let Some(ns_id) = e.namespace else {
            return Err(EngineError::Invalid(bulkhead_model::InvalidValue::new(
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
            engine.namespaces().into_iter().map(|n| (n.id, n.name)),
            "namespace",
        )?;
        let made = engine.create_endpoint(e.to_spec(&net, &ns))?;
        created.push(Created::Endpoint(made.name.to_string()));
        for rule in &e.acls {
            engine.add_acl(made.name.as_str(), AclRuleSpec::from(rule))?;
            out.acls += 1;
        }
        out.endpoints.push(made.name.to_string());
    }
    Ok(out)
}
