//! `HostComputeNamespace` ↔ [`ImportedNamespace`] (and from [`Namespace`]).
//!
//! `Type` `Guest`/`GuestDefault` (inside a utility VM) → isolation `vm`;
//! `Host`/`HostDefault` or none → `process`. `NamespaceId` is the compartment
//! id: 0 or absent lets the engine assign one, 1 (the host itself) is
//! refused. HCN namespaces carry no name, so bulkhead reads and writes the
//! schema's base field `Name`; without one the name is `ns-` and the id's
//! 32 hex digits. A namespace needs an `ID` or a `Name` (the other is
//! derived). `Resources` list containers (by container id) and endpoints (by
//! GUID); duplicates are dropped.

use super::schema::{HostComputeNamespace, NamespaceResource, ResourceData};
use super::{at, check_schema, derived_id, parse_guid, uint, Ignored};
use crate::error::{InvalidValue, Result};
use crate::name::{Id, Name};
use crate::namespace::{Isolation, Namespace, NamespaceSpec, HOST_COMPARTMENT};

const TYPES_ALLOWED: &str = "Host, HostDefault, Guest or GuestDefault";
const CONTAINER_ALLOWED: &str =
    "a container id: 1-128 characters of a-z, A-Z, 0-9, '_', '.', ':', '-'";

/// A namespace read from HCN, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedNamespace {
    pub id: Id,
    pub name: Name,
    pub isolation: Isolation,
    /// `NamespaceId`; `None` lets the engine assign one.
    pub compartment_id: Option<u32>,
    pub containers: Vec<String>,
    /// Endpoints to attach, by id (they may live in the store already).
    pub endpoints: Vec<Id>,
}

impl ImportedNamespace {
    /// A stored namespace with the endpoints attached to it.
    pub fn from_namespace(ns: &Namespace, endpoints: &[Id]) -> Self {
        Self {
            id: ns.id,
            name: ns.name.clone(),
            isolation: ns.isolation,
            compartment_id: (ns.compartment_id > HOST_COMPARTMENT).then_some(ns.compartment_id),
            containers: ns.containers.clone(),
            endpoints: endpoints.to_vec(),
        }
    }

    /// The raw spec the engine's namespace creation takes.
    pub fn to_spec(&self) -> NamespaceSpec {
        NamespaceSpec {
            name: self.name.to_string(),
            isolation: Some(self.isolation.to_string()),
            ..NamespaceSpec::default()
        }
    }
}

fn valid_container_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b))
}

/// Validates an HCN namespace; `prefix` is its path in the document.
pub fn namespace_from_hcn(
    prefix: &str,
    h: &HostComputeNamespace,
    _ignored: &mut Vec<Ignored>,
) -> Result<ImportedNamespace> {
    check_schema(prefix, h.schema_version)?;
    let id_field = at(prefix, "ID");
    let given_id = parse_guid(&id_field, h.id.as_deref())?;
    let name = match (h.name.as_deref(), given_id) {
        (Some(n), _) if !n.trim().is_empty() => n.to_owned(),
        (_, Some(id)) => format!("ns-{}", id.short_hex(32)),
        (_, None) => {
            return Err(InvalidValue::new(
                id_field,
                "",
                "the namespace's GUID (or a Name)",
            ))
        }
    };
    let type_field = at(prefix, "Type");
    let isolation = match h
        .kind
        .as_deref()
        .map(|t| t.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("") | Some("host") | Some("hostdefault") => "process",
        Some("guest") | Some("guestdefault") => "vm",
        Some(_) => {
            return Err(InvalidValue::new(
                type_field,
                h.kind.clone().unwrap_or_default(),
                TYPES_ALLOWED,
            ))
        }
    };
    let spec = NamespaceSpec {
        name,
        isolation: Some(isolation.to_owned()),
        ..NamespaceSpec::default()
    };
    let (name, isolation) = spec.validate().map_err(|e| match e.field.as_str() {
        "name" => e.in_field(at(prefix, "Name")),
        _ => e.in_field(type_field.clone()),
    })?;
    let id = given_id.unwrap_or_else(|| derived_id("namespace", name.as_str()));
    let compartment_id = match &h.namespace_id {
        None => None,
        Some(n) => {
            let f = at(prefix, "NamespaceId");
            let allowed =
                "0 (bulkhead assigns one) or a compartment id 2-4294967295 (1 is the host)";
            match uint::<u32>(&f, n, allowed)? {
                0 => None,
                HOST_COMPARTMENT => return Err(InvalidValue::new(f, n.to_string(), allowed)),
                c => Some(c),
            }
        }
    };
    let (mut containers, mut endpoints): (Vec<String>, Vec<Id>) = (Vec::new(), Vec::new());
    for (i, r) in h.resources.iter().enumerate() {
        let field = at(prefix, &format!("Resources[{i}]"));
        let data = at(&field, "Data.ID");
        match r.kind.trim().to_ascii_lowercase().as_str() {
            "container" => {
                if !valid_container_id(&r.data.id) {
                    return Err(InvalidValue::new(data, &r.data.id, CONTAINER_ALLOWED));
                }
                if !containers.contains(&r.data.id) {
                    containers.push(r.data.id.clone());
                }
            }
            "endpoint" => {
                let ep = Id::parse(&data, &r.data.id)?;
                if !endpoints.contains(&ep) {
                    endpoints.push(ep);
                }
            }
            _ => {
                return Err(InvalidValue::new(
                    at(&field, "Type"),
                    &r.kind,
                    "Container or Endpoint",
                ))
            }
        }
    }
    Ok(ImportedNamespace {
        id,
        name,
        isolation,
        compartment_id,
        containers,
        endpoints,
    })
}

/// The HCN v2 form of an imported namespace (schema 2.0).
pub fn imported_namespace_to_hcn(ns: &ImportedNamespace) -> HostComputeNamespace {
    let resource = |kind: &str, id: String| NamespaceResource {
        kind: kind.to_owned(),
        data: ResourceData { id },
    };
    let resources = ns
        .containers
        .iter()
        .map(|c| resource("Container", c.clone()))
        .chain(
            ns.endpoints
                .iter()
                .map(|e| resource("Endpoint", e.to_string())),
        )
        .collect();
    HostComputeNamespace {
        id: Some(ns.id.to_string()),
        name: Some(ns.name.to_string()),
        namespace_id: ns.compartment_id.map(Into::into),
        kind: Some(match ns.isolation {
            Isolation::Process => "Host".to_owned(),
            Isolation::Vm => "Guest".to_owned(),
        }),
        resources,
        schema_version: Some(super::SchemaVersion::V2_0),
    }
}

/// The HCN v2 form of a stored namespace and the endpoints attached to it.
pub fn namespace_to_hcn(ns: &Namespace, endpoints: &[Id]) -> HostComputeNamespace {
    imported_namespace_to_hcn(&ImportedNamespace::from_namespace(ns, endpoints))
}
