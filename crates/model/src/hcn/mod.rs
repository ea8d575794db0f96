//! HCN v2 JSON (the Windows Host Compute Network schema) in and out.
//!
//! Contract: [`parse_document`] turns the bytes of an HCN document (one
//! `HostComputeNetwork`, `HostComputeEndpoint` or `HostComputeNamespace`, or
//! `{"Networks":[…],"Namespaces":[…],"Endpoints":[…]}`) into validated values
//! or one [`InvalidValue`] whose field is the HCN path of the culprit
//! (`Policies[2].Settings.LocalAddresses`, prefixed by `Endpoints[0].` in the
//! list form). It never panics on any input. Whatever HCN can say and
//! bulkhead cannot honour is either rejected (when ignoring it would weaken
//! isolation: network ACLs, VLANs, tier ACLs, encryption…) or reported in
//! [`ImportDocument::ignored`] (QoS, DNS, routes, MAC pools…). The emitters
//! ([`network_to_hcn`], [`endpoint_to_hcn`], [`namespace_to_hcn`],
//! [`emit_document`]) write schema 2.0 JSON that parses back to equal values:
//! `parse(emit(x)) == x`. Imported endpoints use `acl_mode replace` (the HNS
//! behaviour) unless bulkhead's own `AdditionalParams.AclMode` says otherwise.
//! The decisions are written down in `docs/hcn.md`.

mod acl;
mod document;
mod endpoint;
mod namespace;
mod network;
pub mod schema;

use std::fmt;

use serde_json::{Number, Value};

use crate::error::{InvalidValue, Result};
use crate::name::Id;

pub use acl::{acl_from_hcn, acl_to_hcn, port_mapping_from_hcn, port_mapping_to_hcn};
pub use document::{emit_document, emit_document_json, parse_document, ImportDocument};
pub use endpoint::{
    endpoint_from_hcn, endpoint_to_hcn, imported_endpoint_to_hcn, ImportedEndpoint,
};
pub use namespace::{
    imported_namespace_to_hcn, namespace_from_hcn, namespace_to_hcn, ImportedNamespace,
};
pub use network::{network_from_hcn, network_to_hcn};
pub use schema::{HostComputeEndpoint, HostComputeNamespace, HostComputeNetwork, SchemaVersion};

/// Something in an HCN document that bulkhead read, understood to be
/// harmless to drop, and dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    /// The HCN path (`Policies[1]`, `Endpoints[0].Dns`).
    pub field: String,
    /// Why it was dropped.
    pub reason: String,
}

impl fmt::Display for Ignored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ignored {}: {}", self.field, self.reason)
    }
}

/// Joins an HCN path prefix (`""`, `Endpoints[0]`) and a field.
pub(crate) fn at(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_owned()
    } else if field.is_empty() {
        prefix.to_owned()
    } else {
        format!("{prefix}.{field}")
    }
}

/// The id of an object given without `ID`: a UUID (version 8) derived from
/// the object kind and name, so importing the same document twice names the
/// same objects.
pub(crate) fn derived_id(kind: &str, name: &str) -> Id {
    // FNV-1a, 128 bits.
    let mut h: u128 = 0x6c62272e07bb014262b821756295c58d;
    for b in kind.bytes().chain([0u8]).chain(name.bytes()) {
        h ^= u128::from(b);
        h = h.wrapping_mul(0x0000000001000000000000000000013B);
    }
    let h = (h & !(0xF << 76) & !(0x3 << 62)) | (0x8 << 76) | (0x2 << 62);
    Id::from_u128(h)
}

/// Reads an unsigned JSON number that must fit `T`.
pub(crate) fn uint<T: TryFrom<u64>>(field: &str, n: &Number, allowed: &str) -> Result<T> {
    n.as_u64()
        .and_then(|v| T::try_from(v).ok())
        .ok_or_else(|| InvalidValue::new(field, n.to_string(), allowed))
}

/// Parses an optional GUID field.
pub(crate) fn parse_guid(field: &str, value: Option<&str>) -> Result<Option<Id>> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => Id::parse(field, v).map(Some),
    }
}

/// Rejects documents of another schema major version.
pub(crate) fn check_schema(prefix: &str, v: Option<SchemaVersion>) -> Result<()> {
    match v {
        Some(v) if v.major != 2 => Err(InvalidValue::new(
            at(prefix, "SchemaVersion.Major"),
            v.major.to_string(),
            "2 (HCN v2 documents; HNS v1 documents are not supported)",
        )),
        _ => Ok(()),
    }
}

/// Reads bulkhead's own key `key` from `AdditionalParams` (a free-form
/// object in the schema): a string or nothing.
pub(crate) fn bulkhead_param(
    prefix: &str,
    params: Option<&Value>,
    key: &str,
) -> Result<Option<String>> {
    let field = at(prefix, &format!("AdditionalParams.{key}"));
    match params.and_then(|p| p.get(key)) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(InvalidValue::new(field, other.to_string(), "a string")),
    }
}

/// The `AdditionalParams` object holding bulkhead's keys, or `None` when
/// every key is at its default.
pub(crate) fn additional_params(pairs: &[(&str, Option<String>)]) -> Option<Value> {
    let map: serde_json::Map<String, Value> = pairs
        .iter()
        .filter_map(|(k, v)| v.clone().map(|v| ((*k).to_owned(), Value::String(v))))
        .collect();
    (!map.is_empty()).then_some(Value::Object(map))
}

/// Deserializes raw policy settings (`Settings` of `Policies[i]`).
pub(crate) fn settings<T: serde::de::DeserializeOwned + Default>(
    field: &str,
    v: &Value,
    what: &str,
) -> Result<T> {
    if v.is_null() {
        return Ok(T::default());
    }
    serde_json::from_value(v.clone()).map_err(|e| {
        InvalidValue::new(
            field,
            v.to_string(),
            format!("{what} settings ({})", strip_position(&e.to_string())),
        )
    })
}

/// serde_json's message without the " at line 1 column 7" tail, which is
/// meaningless for a value already extracted from the document.
pub(crate) fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_uuids() {
        let a = derived_id("network", "web");
        assert_eq!(a, derived_id("network", "web"));
        assert_ne!(a, derived_id("endpoint", "web"));
        assert_eq!(a.as_uuid().get_version_num(), 8);
        assert_eq!(a.as_uuid().get_variant(), uuid::Variant::RFC4122);
    }

    #[test]
    fn paths_join() {
        assert_eq!(at("", "Name"), "Name");
        assert_eq!(at("Endpoints[1]", "Name"), "Endpoints[1].Name");
        assert_eq!(
            strip_position("missing field `x` at line 1 column 2"),
            "missing field `x`"
        );
    }
}
