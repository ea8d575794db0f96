//! Namespaces (compartments; HCN HostComputeNamespace). A pod is one
//! namespace shared by several containers.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::acl::keyword_enum;
use crate::error::Result;
use crate::name::{Id, Name};

keyword_enum!(
    /// `process`: a veth pair, both enforcement points; `vm` (alias
    /// `hyperv`): a TAP switch port, only the switch port is ours.
    Isolation, "isolation", "process or vm (alias hyperv)",
    { Process = "process", Vm = "vm" | "hyperv" }
);

// keyword_enum! cannot carry `#[default]`, so the default is spelled out.
#[allow(clippy::derivable_impls)]
impl Default for Isolation {
    fn default() -> Self {
        Isolation::Process
    }
}

/// The compartment id of the host itself; endpoint compartments start at 2.
pub const HOST_COMPARTMENT: u32 = 1;

/// A validated namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespace {
    pub id: Id,
    pub compartment_id: u32,
    pub name: Name,
    pub isolation: Isolation,
    /// Where the network namespace is pinned or adopted from (process);
    /// none for a vm namespace (its TAP switch ports live in the host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns_path: Option<PathBuf>,
    /// Containers sharing the namespace (pods), in the order they joined.
    #[serde(default)]
    pub containers: Vec<String>,
}

/// A namespace as the user gives it: also the body of `POST /v1/namespaces`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamespaceSpec {
    /// Namespace name.
    pub name: String,
    /// `process` or `vm` (alias `hyperv`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<String>,
    /// Adopt this existing network namespace (an absolute path to an nsfs
    /// mount made by a container runtime) instead of creating one. Process
    /// isolation only. The daemon never deletes an adopted namespace; the
    /// same name and path again is idempotent (a retried CNI ADD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns_path: Option<String>,
    /// A container that joins the (adopted) namespace, e.g. the pod sandbox
    /// of a CNI ADD or a later container of the same pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
}

impl NamespaceSpec {
    /// The validated name and isolation; ids and paths are the engine's
    /// (`netns_path` is checked where it is adopted).
    pub fn validate(&self) -> Result<(Name, Isolation)> {
        let name = Name::parse("name", &self.name)?;
        let isolation = match &self.isolation {
            Some(i) if !i.trim().is_empty() => Isolation::parse("isolation", i)?,
            _ => Isolation::Process,
        };
        Ok((name, isolation))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyperv_is_vm() {
        let s = NamespaceSpec {
            name: "pod1".into(),
            isolation: Some("HyperV".into()),
            ..Default::default()
        };
        assert_eq!(s.validate().unwrap().1, Isolation::Vm);
        let s = NamespaceSpec {
            name: "pod1".into(),
            isolation: Some("kvm".into()),
            ..Default::default()
        };
        assert_eq!(
            s.validate().unwrap_err().to_string(),
            "invalid isolation \"kvm\": process or vm (alias hyperv)"
        );
    }
}
