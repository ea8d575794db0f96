//! Namespace (compartment) operations. A process namespace is a network
//! namespace pinned at `/run/netns/<prefix><name>`; a vm namespace is a slot
//! with no network namespace of its own: its endpoints are TAP devices in the
//! host that the VMM opens.
//!
//! An *adopted* namespace (CNI) is a process namespace whose network
//! namespace a container runtime made and owns (see [`crate::adopt`]).

use bulkhead_model::namespace::HOST_COMPARTMENT;
use bulkhead_model::{Id, Isolation, Namespace, NamespaceSpec};
use bulkhead_store::{Kind, Op, StoreExt};

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
            Isolation::Process => Some(self.kernel.netns_path(&netns)),
            Isolation::Vm => None,
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
            t.put(&NamespaceRecord::of(&namespace, None))?;
            t.put_intent(Op::Create, Kind::Namespaces, &key, serde_json::Value::Null)
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
        let mut netns_id = None;
        if isolation == Isolation::Process {
            let path = self
                .kernel
                .create_netns(&netns)
                .map_err(EngineError::kernel)?;
            undo.push("netns", || {
                self.kernel.delete_netns(&netns).map_err(|e| e.to_string())
            });
            netns_id = Some(self.kernel.netns_id(&path).map_err(EngineError::kernel)?);
        }
        undo.commit();
        inner.state.insert_namespace(namespace.clone());
        if let Some(id) = netns_id {
            inner.state.netns_ids.insert(namespace.id, id);
        }
        inner.pending_intents.push(intent.id);
        Ok(namespace)
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
            t.put_intent(Op::Delete, Kind::Namespaces, &key, serde_json::Value::Null)
        })?;
        let mut errors = Vec::new();
        inner.programmed.firewalls.remove(&namespace.id);
        inner
            .programmed
            .kept
            .retain(|(ns, _), _| *ns != namespace.id);
        let adopted = inner.state.adopted.contains(&namespace.id);
        let retiring = namespace
            .netns_path
            .as_ref()
            .is_some_and(|p| inner.retiring.contains(p));
        if namespace.isolation == Isolation::Process && adopted {
            // An adopted namespace belongs to the runtime: only the record
            // goes, and the runtime gets it back clean: the veth sides of
            // its deleted endpoints are destroyed before this returns.
            if retiring {
                // The ports only: the host's conntrack clean-up may run on
                // (a create given one of those addresses waits for it).
                self.kernel.settle_ports();
                inner.retiring.clear();
            }
        } else if namespace.isolation == Isolation::Process {
            // Our own: unpinned. The veth sides still in it go with their
            // queued port removals (or with the namespace, whichever the
            // kernel does first); a namespace made again under this name is
            // a new one, where their names are free.
            match self.kernel.delete_netns(&self.netns_name(&namespace.name)) {
                Ok(()) => {
                    if let Some(p) = &namespace.netns_path {
                        inner.retiring.remove(p);
                    }
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

pub(crate) fn next_compartment(state: &crate::state::State) -> u32 {
    state
        .namespaces
        .values()
        .map(|n| n.compartment_id)
        .max()
        .unwrap_or(HOST_COMPARTMENT)
        + 1
}
