//! Namespace (compartment) operations. A process namespace is a network
//! namespace pinned at `/run/netns/<prefix><name>`; a vm namespace is a slot
//! with no network namespace of its own: its endpoints are TAP devices in the
//! host that the VMM opens.
//!
//! An *adopted* namespace (CNI) is a process namespace whose network
//! namespace a container runtime made and owns: we record its path, put
//! switch ports and a firewall in it, and never create, recreate or delete
//! it. Adopting the same name and path again is idempotent (a retried ADD)
//! and may add a container to the namespace (a pod's further containers);
//! another path for the same name is a conflict. Once the runtime deletes
//! it, removing its endpoints and the namespace itself still succeeds.

use std::path::{Component, Path, PathBuf};

use bulkhead_model::namespace::HOST_COMPARTMENT;
use bulkhead_model::{Id, InvalidValue, Isolation, Namespace, NamespaceSpec};
use bulkhead_store::{Kind, StoreExt};

use crate::error::{EngineError, Result};
use crate::records::NamespaceRecord;
use crate::undo::Undo;
use crate::Engine;

impl Engine {
    pub fn create_namespace(&self, spec: NamespaceSpec) -> Result<Namespace> {
        let (name, isolation) = spec.validate()?;
        let mut inner = self.lock();
        if inner.state.has_namespace(name.as_str()) {
            return Err(EngineError::Conflict(format!(
                "namespace {:?} already exists",
                name.as_str()
            )));
        }
        let compartment_id = next_compartment(&inner.state);
        let netns = self.netns_name(&name);
        let netns_path = match isolation {
            Isolation::Process => bulkhead_dataplane::netns::path_of(&netns),
            Isolation::Vm => PathBuf::new(),
        };
        let namespace = Namespace {
            id: Id::random(),
            compartment_id,
            name,
            isolation,
            netns_path,
            containers: vec![],
        };
        let key = namespace.id.to_string();
        let intent = self.transaction_clearing(&mut inner, |t| {
            t.put(&NamespaceRecord::from(&namespace))?;
            t.put_intent(
                "namespace.create",
                Kind::Namespaces,
                &key,
                serde_json::Value::Null,
            )
        })?;
        let mut undo = Undo::new();
        undo.push("store namespace", || {
            self.store
                .transaction(|t| {
                    t.delete::<NamespaceRecord>(&key)?;
                    t.clear_intent(&intent.id).map(|_| ())
                })
                .map_err(|e| e.to_string())
        });
        if isolation == Isolation::Process {
            self.kernel
                .create_netns(&netns)
                .map_err(EngineError::kernel)?;
        }
        undo.commit();
        inner.state.insert_namespace(namespace.clone());
        inner.pending_intents.push(intent.id);
        Ok(namespace)
    }

    /// Adopts the network namespace at `netns_path` as namespace
    /// `spec.name` (see the module doc), `container` joining it. Returns
    /// the namespace and whether it is new.
    pub fn adopt_namespace(
        &self,
        spec: NamespaceSpec,
        netns_path: &str,
        container: Option<&str>,
    ) -> Result<(Namespace, bool)> {
        let (name, isolation) = spec.validate()?;
        if isolation != Isolation::Process {
            return Err(invalid(netns_path, "only with isolation process"));
        }
        let path = self.adoptable_path(netns_path)?;
        if let Some(c) = container {
            check_container_id(c)?;
        }
        let mut inner = self.lock();
        if let Ok(existing) = inner.state.namespace(name.as_str()) {
            let existing = existing.clone();
            if !inner.state.adopted.contains(&existing.id) || existing.netns_path != path {
                return Err(EngineError::Conflict(format!(
                    "namespace {:?} already exists with netns path {}",
                    name.as_str(),
                    existing.netns_path.display()
                )));
            }
            let Some(c) = container.filter(|c| !existing.containers.iter().any(|e| e == c)) else {
                return Ok((existing, false));
            };
            let mut joined = existing;
            joined.containers.push(c.to_owned());
            self.transaction_clearing(&mut inner, |t| t.put(&NamespaceRecord::of(&joined, true)))?;
            inner.state.insert_namespace(joined.clone());
            return Ok((joined, false));
        }
        if !is_netns(&path) {
            return Err(invalid(
                netns_path,
                "an existing network namespace (an nsfs mount, e.g. CNI_NETNS)",
            ));
        }
        let namespace = Namespace {
            id: Id::random(),
            compartment_id: next_compartment(&inner.state),
            name,
            isolation,
            netns_path: path,
            containers: container.map(str::to_owned).into_iter().collect(),
        };
        // No kernel step: the record is the whole operation.
        self.transaction_clearing(&mut inner, |t| {
            t.put(&NamespaceRecord::of(&namespace, true))
        })?;
        inner.state.insert_namespace(namespace.clone());
        inner.state.adopted.insert(namespace.id);
        Ok((namespace, true))
    }

    /// `netns_path` if it is absolute, plain and not one of our own pins.
    fn adoptable_path(&self, netns_path: &str) -> Result<PathBuf> {
        let path = Path::new(netns_path);
        let plain = path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
        if !path.is_absolute() || !plain {
            return Err(invalid(netns_path, "an absolute path without . or .."));
        }
        let ours = ["/run/netns", "/var/run/netns"].iter().any(|dir| {
            path.parent() == Some(Path::new(dir))
                && path
                    .file_name()
                    .and_then(|f| f.to_str())
                    .is_some_and(|f| f.starts_with(&self.config.netns_prefix))
        });
        if ours {
            return Err(invalid(
                netns_path,
                "a namespace not named with this daemon's own prefix",
            ));
        }
        Ok(path.to_path_buf())
    }

    pub fn delete_namespace(&self, name: &str) -> Result<()> {
        let mut inner = self.lock();
        let namespace = inner.state.namespace(name)?.clone();
        let users: Vec<String> = inner
            .state
            .endpoints_in_namespace(namespace.id)
            .map(|e| e.name.to_string())
            .collect();
        if !users.is_empty() {
            return Err(EngineError::Conflict(format!(
                "namespace {name:?} still has endpoints: {}; remove them first",
                users.join(", ")
            )));
        }
        let key = namespace.id.to_string();
        // One durable transaction: the record goes and the intent says the
        // unpin is in flight (reconcile removes unowned pins after a crash).
        let intent = self.transaction_clearing(&mut inner, |t| {
            t.delete::<NamespaceRecord>(&key)?;
            t.put_intent(
                "namespace.delete",
                Kind::Namespaces,
                &key,
                serde_json::Value::Null,
            )
        })?;
        let mut errors = Vec::new();
        inner.programmed.firewalls.remove(&namespace.id);
        let adopted = inner.state.adopted.contains(&namespace.id);
        let retiring = inner.retiring.contains(&namespace.netns_path);
        if namespace.isolation == Isolation::Process && adopted {
            // An adopted namespace belongs to the runtime: only the record
            // goes, and the runtime gets it back clean: the veth sides of
            // its deleted endpoints are destroyed before this returns.
            if retiring {
                self.settle_locked(&mut inner);
            }
        } else if namespace.isolation == Isolation::Process {
            // Our own: unpinned. The veth sides still in it go with their
            // queued port removals (or with the namespace, whichever the
            // kernel does first); a namespace made again under this name is
            // a new one, where their names are free.
            match self.kernel.delete_netns(&self.netns_name(&namespace.name)) {
                Ok(()) => {
                    inner.retiring.remove(&namespace.netns_path);
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        inner.state.remove_namespace(namespace.id);
        inner.pending_intents.push(intent.id);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(EngineError::Kernel(format!(
                "namespace {name:?} removed, but: {}",
                errors.join("; ")
            )))
        }
    }

    /// Is namespace `id` adopted (made by a runtime)?
    pub fn is_adopted(&self, id: Id) -> bool {
        self.lock().state.adopted.contains(&id)
    }

    pub fn namespaces(&self) -> Vec<Namespace> {
        self.lock().state.namespaces.values().cloned().collect()
    }

    pub fn namespace(&self, name: &str) -> Result<Namespace> {
        self.lock().state.namespace(name).cloned()
    }

    /// Names of the endpoints in a namespace.
    pub fn namespace_endpoints(&self, id: Id) -> Vec<String> {
        self.lock()
            .state
            .endpoints_in_namespace(id)
            .map(|e| e.name.to_string())
            .collect()
    }
}

fn next_compartment(state: &crate::state::State) -> u32 {
    state
        .namespaces
        .values()
        .map(|n| n.compartment_id)
        .max()
        .unwrap_or(HOST_COMPARTMENT)
        + 1
}

fn invalid(netns_path: &str, expected: &str) -> EngineError {
    EngineError::Invalid(InvalidValue::new("netns_path", netns_path, expected))
}

/// Container ids as the CNI spec has them: 1-256 of `A-Z a-z 0-9 _ . -`,
/// starting alphanumeric.
fn check_container_id(id: &str) -> Result<()> {
    let ok = (1..=256).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(EngineError::Invalid(InvalidValue::new(
            "container_id",
            id,
            "1-256 of A-Z a-z 0-9 _ . - starting with a letter or digit",
        )))
    }
}

/// Is `path` a namespace file (an nsfs mount or `/proc/PID/ns/*`)? Every
/// nsfs inode lives on the one nsfs superblock, so comparing the device
/// with our own `/proc/self/ns/net` tells without `statfs`.
pub(crate) fn is_netns(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (
        std::fs::metadata(path),
        std::fs::metadata("/proc/self/ns/net"),
    ) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.is_file(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_files_are_told_from_others() {
        assert!(is_netns(Path::new("/proc/self/ns/net")));
        assert!(!is_netns(Path::new("/proc/self/status")));
        assert!(!is_netns(Path::new("/nonexistent/netns")));
        assert!(check_container_id("0123abc_.-").is_ok());
        assert!(check_container_id("").is_err());
        assert!(check_container_id("-a").is_err());
        assert!(check_container_id("a/b").is_err());
    }
}
