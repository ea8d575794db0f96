//! Adopting a network namespace that a container runtime made (CNI), and
//! the identity checks that keep every later operation inside it.
//!
//! Contract (spec §9, "hostile tenants"; `docs/design.md`, "Adopted
//! namespaces"):
//! - An adopted namespace is recorded with its path *and its identity*
//!   (device and inode of the nsfs file, [`NetnsId`]). We put switch ports
//!   and a firewall in it and never create, recreate or delete it.
//! - Refused, each with a one-line error naming `netns_path`: anything that
//!   is not a network namespace; the namespace bulkheadd treats as the host
//!   (its switch tables live there), the daemon process's own and the root
//!   namespace (`/proc/1/ns/net`), as the kernel captured them at start
//!   ([`Kernel::protected_netns`]); a namespace already held by another
//!   namespace record (adopted, or one of our own bound elsewhere) whose
//!   path still names it (nsfs inode numbers are reused once a namespace
//!   dies, so a dead holder's record does not block a new pod); our own
//!   pins by path.
//! - Adopting the same name, path and namespace again is idempotent (a
//!   retried ADD) and may add a container (a pod's further containers);
//!   another path, or the same path now naming another namespace, is refused.
//! - Every open of a namespace to program it goes through
//!   [`Engine::netns_handle`]: the kernel opens the path and compares the
//!   opened file's identity with the recorded one, and the operation then
//!   uses that open file, so a bind mount swapped after adoption cannot
//!   redirect programming to another namespace.
//!
//! [`Kernel::protected_netns`]: bulkhead_dataplane::kernel::Kernel::protected_netns

use std::path::{Component, Path, PathBuf};

use bulkhead_dataplane::kernel::{NetnsHandle, NetnsId};
use bulkhead_model::{Id, InvalidValue, Isolation, Namespace, NamespaceSpec};

use crate::error::{EngineError, Result};
use crate::namespace::next_compartment;
use crate::records::NamespaceRecord;
use crate::state::State;
use crate::Engine;

impl Engine {
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
        let id = self.kernel.netns_id(&path).map_err(|e| {
            invalid(
                netns_path,
                &format!("an existing network namespace (an nsfs mount, e.g. CNI_NETNS) ({e})"),
            )
        })?;
        self.check_not_protected(netns_path, id)?;
        let mut inner = self.lock();
        let existing = inner.state.namespace(name.as_str()).ok().cloned();
        // A holder whose path no longer names `id` is stale: its namespace
        // died and the kernel reused the inode number for this one.
        if let Some(other) = inner
            .state
            .namespace_by_netns(id, existing.as_ref().map(|n| n.id))
            .filter(|o| {
                o.netns_path
                    .as_deref()
                    .is_some_and(|p| self.kernel.netns_id(p).ok() == Some(id))
            })
        {
            return Err(invalid(
                netns_path,
                &format!(
                    "a network namespace no other namespace holds (it is namespace {:?}'s{})",
                    other.name.as_str(),
                    containers_of(other)
                ),
            ));
        }
        if let Some(existing) = existing {
            let same = inner.state.adopted.contains(&existing.id)
                && existing.netns_path.as_ref() == Some(&path)
                && inner.state.netns_ids.get(&existing.id) == Some(&id);
            if !same {
                let held = match &existing.netns_path {
                    Some(p) => format!("with netns path {}", p.display()),
                    None => "without a netns path (isolation vm)".to_owned(),
                };
                return Err(EngineError::Conflict(format!(
                    "namespace {:?} already exists {held}",
                    name.as_str(),
                )));
            }
            let Some(c) = container.filter(|c| !existing.containers.iter().any(|e| e == c)) else {
                return Ok((existing, false));
            };
            let mut joined = existing;
            joined.containers.push(c.to_owned());
            self.transaction_clearing(&mut inner, |t| {
                t.put(&NamespaceRecord::of(&joined, Some(id)))
            })?;
            inner.state.insert_namespace(joined.clone());
            return Ok((joined, false));
        }
        // The namespace's own settings, through the checked open file.
        let handle = self
            .kernel
            .open_netns(&path, id)
            .map_err(EngineError::kernel)?;
        self.kernel
            .prepare_netns(handle.path())
            .map_err(EngineError::kernel)?;
        let namespace = Namespace {
            id: Id::random(),
            compartment_id: next_compartment(&inner.state),
            name,
            isolation,
            netns_path: Some(path),
            containers: container.map(str::to_owned).into_iter().collect(),
        };
        self.transaction_clearing(&mut inner, |t| {
            t.put(&NamespaceRecord::of(&namespace, Some(id)))
        })?;
        inner.state.insert_namespace(namespace.clone());
        inner.state.adopted.insert(namespace.id);
        inner.state.netns_ids.insert(namespace.id, id);
        Ok((namespace, true))
    }

    /// Refuses the namespaces the kernel reported as never adoptable.
    fn check_not_protected(&self, netns_path: &str, id: NetnsId) -> Result<()> {
        match self
            .kernel
            .protected_netns()
            .into_iter()
            .find(|(p, _)| *p == id)
        {
            Some((_, why)) => Err(invalid(
                netns_path,
                &format!("a container's network namespace, not {why}"),
            )),
            None => Ok(()),
        }
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

    /// Opens namespace `ns` for one operation, checked against its
    /// recorded identity (see the module doc); the operation uses
    /// `handle.path()` for every open.
    pub(crate) fn netns_handle(&self, state: &State, ns: &Namespace) -> Result<NetnsHandle> {
        let path = ns.netns_path.as_deref().ok_or_else(|| {
            EngineError::Kernel(format!(
                "namespace {:?} has no network namespace (isolation vm)",
                ns.name.as_str()
            ))
        })?;
        let id = state.netns_ids.get(&ns.id).ok_or_else(|| {
            EngineError::Kernel(format!(
                "namespace {:?}: the identity of {} is unknown; refusing to program it",
                ns.name.as_str(),
                path.display()
            ))
        })?;
        self.kernel
            .open_netns(path, *id)
            .map_err(|e| EngineError::Kernel(format!("namespace {:?}: {e}", ns.name.as_str())))
    }

    /// At load: the identity of each process namespace in `state` (recorded
    /// for adopted ones; an adopted record of schema 1 gets the namespace
    /// now at its path, unless protected or held by another). Errors name
    /// the namespaces left without one: nothing is programmed in those.
    pub(crate) fn load_identities(
        &self,
        state: &mut State,
        recorded: &[(Id, NetnsId)],
        errors: &mut Vec<String>,
    ) {
        state.netns_ids.extend(recorded.iter().copied());
        let missing: Vec<Namespace> = state
            .namespaces
            .values()
            .filter(|n| n.isolation == Isolation::Process && !state.netns_ids.contains_key(&n.id))
            .cloned()
            .collect();
        for ns in missing {
            let Some(netns) = ns.netns_path.as_deref() else {
                errors.push(format!(
                    "namespace {:?}: isolation process without a netns path",
                    ns.name.as_str()
                ));
                continue;
            };
            let path = netns.display().to_string();
            let found = self
                .kernel
                .netns_id(netns)
                .map_err(EngineError::kernel)
                .and_then(|id| {
                    if state.adopted.contains(&ns.id) {
                        self.check_not_protected(&path, id)?;
                        if let Some(o) = state.namespace_by_netns(id, Some(ns.id)) {
                            return Err(invalid(
                                &path,
                                &format!("a namespace not also held by {:?}", o.name.as_str()),
                            ));
                        }
                    }
                    Ok(id)
                });
            match found {
                Ok(id) => {
                    state.netns_ids.insert(ns.id, id);
                }
                // Gone adopted namespaces are counted elsewhere.
                Err(_) if state.adopted_gone(ns.id, |p| self.kernel.is_netns(p)) => {}
                Err(e) => errors.push(format!("namespace {}: {e}", ns.name)),
            }
        }
    }
}

fn containers_of(ns: &Namespace) -> String {
    if ns.containers.is_empty() {
        String::new()
    } else {
        format!(", container {}", ns.containers.join(", "))
    }
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

#[cfg(test)]
#[path = "adopt_tests.rs"]
mod tests;
