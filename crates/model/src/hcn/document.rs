//! The document of `bulkhead import FILE.json` / `export`: one HCN object,
//! or `{"Networks":[…],"Namespaces":[…],"Endpoints":[…]}`.
//!
//! A single object is recognised by its keys: `HostComputeNetwork` → an
//! endpoint; `Ipams` → a network; `NamespaceId` or `Resources` → a
//! namespace; otherwise `Type` decides (`Host`, `HostDefault`, `Guest`,
//! `GuestDefault` → a namespace, anything else → a network). Any of the three
//! list keys selects the list form; missing lists are empty, other top-level
//! keys are ignored. Within a document, ids and names are unique per kind,
//! and the two ways of linking an endpoint to a namespace (the endpoint's
//! `HostComputeNamespace` and the namespace's `Resources`) must agree; each
//! fills in the other, so a parsed document is always symmetric. Emitting
//! always writes the list form.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::endpoint::{endpoint_from_hcn, imported_endpoint_to_hcn, ImportedEndpoint};
use super::namespace::{imported_namespace_to_hcn, namespace_from_hcn, ImportedNamespace};
use super::network::{network_from_hcn, network_to_hcn};
use super::schema::{HostComputeEndpoint, HostComputeNamespace, HostComputeNetwork};
use super::{acl::to_value, strip_position, Ignored};
use crate::endpoint::Endpoint;
use crate::error::{InvalidValue, Result};
use crate::name::Id;
use crate::namespace::Namespace;
use crate::network::Network;

const DOCUMENT_ALLOWED: &str = "an HCN v2 HostComputeNetwork (keys Type, Ipams), HostComputeEndpoint (HostComputeNetwork), \
HostComputeNamespace (NamespaceId, Resources), or {\"Networks\":[…],\"Namespaces\":[…],\"Endpoints\":[…]}";
const NAMESPACE_TYPES: [&str; 4] = ["host", "hostdefault", "guest", "guestdefault"];

/// The validated content of an HCN document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportDocument {
    pub networks: Vec<Network>,
    pub namespaces: Vec<ImportedNamespace>,
    pub endpoints: Vec<ImportedEndpoint>,
    /// What was read and dropped (never part of the emitted document).
    pub ignored: Vec<Ignored>,
}

impl ImportDocument {
    /// The document that exports stored objects; each namespace lists the
    /// endpoints attached to it.
    pub fn export(networks: &[Network], namespaces: &[Namespace], endpoints: &[Endpoint]) -> Self {
        let attached = |ns: &Namespace| -> Vec<Id> {
            endpoints
                .iter()
                .filter(|e| e.namespace == ns.id)
                .map(|e| e.id)
                .collect()
        };
        Self {
            networks: networks.to_vec(),
            namespaces: namespaces
                .iter()
                .map(|ns| ImportedNamespace::from_namespace(ns, &attached(ns)))
                .collect(),
            endpoints: endpoints.iter().map(ImportedEndpoint::from).collect(),
            ignored: Vec::new(),
        }
    }

    /// The same objects, whatever was ignored on the way in.
    pub fn same_objects(&self, other: &Self) -> bool {
        (&self.networks, &self.namespaces, &self.endpoints)
            == (&other.networks, &other.namespaces, &other.endpoints)
    }
}

fn typed<T: DeserializeOwned>(field: &str, v: Value, what: &str) -> Result<T> {
    let shown = v.to_string();
    serde_json::from_value(v).map_err(|e| {
        InvalidValue::new(
            field,
            shown,
            format!("an HCN v2 {what} ({})", strip_position(&e.to_string())),
        )
    })
}

enum Kind {
    Network,
    Endpoint,
    Namespace,
}

fn detect(obj: &Map<String, Value>) -> Option<Kind> {
    if obj.contains_key("HostComputeNetwork") {
        return Some(Kind::Endpoint);
    }
    if obj.contains_key("Ipams") {
        return Some(Kind::Network);
    }
    if obj.contains_key("NamespaceId") || obj.contains_key("Resources") {
        return Some(Kind::Namespace);
    }
    match obj.get("Type")? {
        Value::String(t) if NAMESPACE_TYPES.contains(&t.trim().to_ascii_lowercase().as_str()) => {
            Some(Kind::Namespace)
        }
        _ => Some(Kind::Network),
    }
}

/// Parses and validates an HCN document (see the module docs for its forms).
pub fn parse_document(bytes: &[u8]) -> Result<ImportDocument> {
    let root: Value = serde_json::from_slice(bytes)
        .map_err(|e| InvalidValue::new("document", "", format!("JSON ({e})")))?;
    let Value::Object(mut obj) = root else {
        return Err(InvalidValue::new(
            "document",
            root.to_string(),
            DOCUMENT_ALLOWED,
        ));
    };
    let mut doc = ImportDocument::default();
    let list_form = ["Networks", "Namespaces", "Endpoints"]
        .iter()
        .any(|k| obj.contains_key(*k));
    if !list_form {
        let kind = detect(&obj).ok_or_else(|| {
            InvalidValue::new(
                "document",
                Value::Object(obj.clone()).to_string(),
                DOCUMENT_ALLOWED,
            )
        })?;
        let v = Value::Object(obj);
        match kind {
            Kind::Network => {
                let h: HostComputeNetwork = typed("HostComputeNetwork", v, "HostComputeNetwork")?;
                doc.networks
                    .push(network_from_hcn("", &h, &mut doc.ignored)?);
            }
            Kind::Endpoint => {
                let h: HostComputeEndpoint =
                    typed("HostComputeEndpoint", v, "HostComputeEndpoint")?;
                doc.endpoints
                    .push(endpoint_from_hcn("", &h, &mut doc.ignored)?);
            }
            Kind::Namespace => {
                let h: HostComputeNamespace =
                    typed("HostComputeNamespace", v, "HostComputeNamespace")?;
                doc.namespaces
                    .push(namespace_from_hcn("", &h, &mut doc.ignored)?);
            }
        }
        return Ok(doc);
    }
    for (i, v) in list(&mut obj, "Networks")?.into_iter().enumerate() {
        let path = format!("Networks[{i}]");
        let h: HostComputeNetwork = typed(&path, v, "HostComputeNetwork")?;
        doc.networks
            .push(network_from_hcn(&path, &h, &mut doc.ignored)?);
    }
    for (i, v) in list(&mut obj, "Namespaces")?.into_iter().enumerate() {
        let path = format!("Namespaces[{i}]");
        let h: HostComputeNamespace = typed(&path, v, "HostComputeNamespace")?;
        doc.namespaces
            .push(namespace_from_hcn(&path, &h, &mut doc.ignored)?);
    }
    for (i, v) in list(&mut obj, "Endpoints")?.into_iter().enumerate() {
        let path = format!("Endpoints[{i}]");
        let h: HostComputeEndpoint = typed(&path, v, "HostComputeEndpoint")?;
        doc.endpoints
            .push(endpoint_from_hcn(&path, &h, &mut doc.ignored)?);
    }
    check_unique(&doc)?;
    link(&mut doc)?;
    Ok(doc)
}

fn list(obj: &mut Map<String, Value>, key: &str) -> Result<Vec<Value>> {
    match obj.remove(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => Ok(items),
        Some(other) => Err(InvalidValue::new(
            key,
            other.to_string(),
            "a JSON array of HCN objects",
        )),
    }
}

/// Rejects the second object of a kind with an id or name seen before.
fn check_unique(doc: &ImportDocument) -> Result<()> {
    fn unique<'a>(list: &'a str, items: impl Iterator<Item = (Id, &'a str)>) -> Result<()> {
        let mut seen: Vec<(Id, &str)> = Vec::new();
        for (i, (id, name)) in items.enumerate() {
            if seen.iter().any(|(s, _)| *s == id) {
                return Err(InvalidValue::new(
                    format!("{list}[{i}].ID"),
                    id.to_string(),
                    "an id used once per document",
                ));
            }
            if seen.iter().any(|(_, n)| *n == name) {
                return Err(InvalidValue::new(
                    format!("{list}[{i}].Name"),
                    name,
                    "a name used once per document",
                ));
            }
            seen.push((id, name));
        }
        Ok(())
    }
    unique(
        "Networks",
        doc.networks.iter().map(|n| (n.id, n.name.as_str())),
    )?;
    unique(
        "Namespaces",
        doc.namespaces.iter().map(|n| (n.id, n.name.as_str())),
    )?;
    unique(
        "Endpoints",
        doc.endpoints.iter().map(|e| (e.id, e.name.as_str())),
    )
}

/// Makes the endpoint ↔ namespace links symmetric, or reports a conflict.
fn link(doc: &mut ImportDocument) -> Result<()> {
    for (i, ns) in doc.namespaces.iter().enumerate() {
        for (k, ep_id) in ns.endpoints.iter().enumerate() {
            let listed_before = doc.namespaces[..i]
                .iter()
                .any(|o| o.endpoints.contains(ep_id));
            if listed_before {
                let field = format!("Namespaces[{i}].Resources[{k}].Data.ID");
                return Err(InvalidValue::new(
                    field,
                    ep_id.to_string(),
                    "an endpoint listed by one namespace",
                ));
            }
        }
    }
    for (j, ep) in doc.endpoints.iter_mut().enumerate() {
        let owner = doc
            .namespaces
            .iter()
            .position(|ns| ns.endpoints.contains(&ep.id));
        match (owner, ep.namespace) {
            (Some(i), Some(ns)) if doc.namespaces[i].id != ns => {
                let field = format!("Endpoints[{j}].HostComputeNamespace");
                let allowed = format!(
                    "{} (Namespaces[{i}].Resources lists this endpoint)",
                    doc.namespaces[i].id
                );
                return Err(InvalidValue::new(field, ns.to_string(), allowed));
            }
            (Some(i), None) => ep.namespace = Some(doc.namespaces[i].id),
            (None, Some(ns)) => {
                if let Some(owner) = doc.namespaces.iter_mut().find(|o| o.id == ns) {
                    owner.endpoints.push(ep.id);
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The list form of a document, as JSON.
pub fn emit_document(doc: &ImportDocument) -> Value {
    let networks: Vec<Value> = doc
        .networks
        .iter()
        .map(|n| to_value(&network_to_hcn(n)))
        .collect();
    let namespaces: Vec<Value> = doc
        .namespaces
        .iter()
        .map(|n| to_value(&imported_namespace_to_hcn(n)))
        .collect();
    let endpoints: Vec<Value> = doc
        .endpoints
        .iter()
        .map(|e| to_value(&imported_endpoint_to_hcn(e)))
        .collect();
    let mut obj = Map::new();
    obj.insert("Networks".to_owned(), Value::Array(networks));
    obj.insert("Namespaces".to_owned(), Value::Array(namespaces));
    obj.insert("Endpoints".to_owned(), Value::Array(endpoints));
    Value::Object(obj)
}

/// The list form of a document, pretty-printed.
pub fn emit_document_json(doc: &ImportDocument) -> String {
    serde_json::to_string_pretty(&emit_document(doc)).unwrap_or_default()
}
