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
    /// Where the network namespace is pinned (process) or the VM slot's
    /// namespace holding its TAP devices (vm).
    pub netns_path: PathBuf,
    /// Containers sharing the namespace (pods), in the order they joined.
    #[serde(default)]
    pub containers: Vec<String>,
}

/// A namespace as the user gives it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamespaceSpec {
    pub name: String,
    pub isolation: Option<String>,
}

impl NamespaceSpec {
    /// The validated name and isolation; ids and paths are the engine's.
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
        };
        assert_eq!(s.validate().unwrap().1, Isolation::Vm);
        let s = NamespaceSpec {
            name: "pod1".into(),
            isolation: Some("kvm".into()),
        };
        assert_eq!(
            s.validate().unwrap_err().to_string(),
            "invalid isolation \"kvm\": process or vm (alias hyperv)"
        );
    }
}
