//! The engine's in-memory view of the desired state: every network,
//! namespace and endpoint, loaded from the store at start and changed only
//! after the store has accepted the change. Look-ups by name go through
//! hash indexes; the endpoints of a namespace or a network through two
//! more, so no per-operation path scans every endpoint.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bulkhead_dataplane::kernel::NetnsId;
use bulkhead_model::{Endpoint, Id, IfName, Namespace, Network};

use crate::error::{EngineError, Result};
use crate::records::EndpointRecord;

#[derive(Debug, Default, Clone)]
pub struct State {
    pub networks: BTreeMap<Id, Network>,
    pub namespaces: BTreeMap<Id, Namespace>,
    pub endpoints: BTreeMap<Id, EndpointRecord>,
    network_names: HashMap<String, Id>,
    namespace_names: HashMap<String, Id>,
    endpoint_names: HashMap<String, Id>,
    /// Endpoint ids by namespace and by network (ordered like `endpoints`).
    by_namespace: HashMap<Id, BTreeSet<Id>>,
    by_network: HashMap<Id, BTreeSet<Id>>,
    /// Namespaces whose network namespace a runtime made (never ours to
    /// create or delete).
    pub adopted: BTreeSet<Id>,
    /// The identity of each process namespace's network namespace: for
    /// adopted ones as recorded at adoption, for our own as made. Every
    /// open of a namespace to program it is checked against this.
    pub netns_ids: BTreeMap<Id, NetnsId>,
}

impl State {
    pub fn insert_network(&mut self, n: Network) {
        self.network_names.insert(n.name.to_string(), n.id);
        self.networks.insert(n.id, n);
    }

    pub fn remove_network(&mut self, id: Id) -> Option<Network> {
        let n = self.networks.remove(&id)?;
        self.network_names.remove(n.name.as_str());
        Some(n)
    }

    pub fn insert_namespace(&mut self, n: Namespace) {
        self.namespace_names.insert(n.name.to_string(), n.id);
        self.namespaces.insert(n.id, n);
    }

    pub fn remove_namespace(&mut self, id: Id) -> Option<Namespace> {
        let n = self.namespaces.remove(&id)?;
        self.namespace_names.remove(n.name.as_str());
        self.adopted.remove(&id);
        self.netns_ids.remove(&id);
        Some(n)
    }

    /// Inserts or replaces an endpoint; returns the one it replaced.
    pub fn insert_endpoint(&mut self, e: EndpointRecord) -> Option<EndpointRecord> {
        let old = self.remove_endpoint(e.id);
        self.endpoint_names.insert(e.name.to_string(), e.id);
        self.by_namespace
            .entry(e.namespace)
            .or_default()
            .insert(e.id);
        self.by_network.entry(e.network).or_default().insert(e.id);
        self.endpoints.insert(e.id, e);
        old
    }

    pub fn remove_endpoint(&mut self, id: Id) -> Option<EndpointRecord> {
        let e = self.endpoints.remove(&id)?;
        self.endpoint_names.remove(e.name.as_str());
        for (index, key) in [
            (&mut self.by_namespace, e.namespace),
            (&mut self.by_network, e.network),
        ] {
            if let Some(ids) = index.get_mut(&key) {
                ids.remove(&id);
                if ids.is_empty() {
                    index.remove(&key);
                }
            }
        }
        Some(e)
    }

    pub fn network(&self, name: &str) -> Result<&Network> {
        self.network_names
            .get(name)
            .and_then(|id| self.networks.get(id))
            .ok_or_else(|| EngineError::not_found("network", name))
    }

    pub fn namespace(&self, name: &str) -> Result<&Namespace> {
        self.namespace_names
            .get(name)
            .and_then(|id| self.namespaces.get(id))
            .ok_or_else(|| EngineError::not_found("namespace", name))
    }

    pub fn endpoint(&self, name: &str) -> Result<&EndpointRecord> {
        self.endpoint_names
            .get(name)
            .and_then(|id| self.endpoints.get(id))
            .ok_or_else(|| EngineError::not_found("endpoint", name))
    }

    /// Is namespace `id` adopted and its network namespace gone (the
    /// runtime deleted it)? Nothing of ours can be programmed there.
    /// `is_netns` tells whether a path still names a network namespace.
    pub fn adopted_gone(&self, id: Id, is_netns: impl Fn(&std::path::Path) -> bool) -> bool {
        self.adopted.contains(&id)
            && self
                .namespaces
                .get(&id)
                .is_some_and(|n| !n.netns_path.as_deref().is_some_and(&is_netns))
    }

    /// The namespace (other than `except`) whose network namespace is `id`.
    pub fn namespace_by_netns(&self, id: NetnsId, except: Option<Id>) -> Option<&Namespace> {
        self.netns_ids
            .iter()
            .find(|(ns, n)| **n == id && Some(**ns) != except)
            .and_then(|(ns, _)| self.namespaces.get(ns))
    }

    /// The CNI key rule: one endpoint per (container id, interface name).
    pub fn check_attachment(&self, container_id: &str, ifname: &IfName) -> Result<()> {
        match self
            .endpoints
            .values()
            .find(|e| e.container_id.as_deref() == Some(container_id) && &e.ifname == ifname)
        {
            Some(e) => Err(EngineError::Conflict(format!(
                "container {container_id:?} already has interface {ifname} attached (endpoint {:?})",
                e.name.as_str()
            ))),
            None => Ok(()),
        }
    }

    pub fn has_network(&self, name: &str) -> bool {
        self.network_names.contains_key(name)
    }

    pub fn has_namespace(&self, name: &str) -> bool {
        self.namespace_names.contains_key(name)
    }

    pub fn has_endpoint(&self, name: &str) -> bool {
        self.endpoint_names.contains_key(name)
    }

    /// Endpoints attached to a network or to a namespace.
    pub fn endpoints_of_network(&self, id: Id) -> impl Iterator<Item = &EndpointRecord> {
        self.indexed(&self.by_network, id)
    }

    pub fn endpoints_in_namespace(&self, id: Id) -> impl Iterator<Item = &EndpointRecord> {
        self.indexed(&self.by_namespace, id)
    }

    fn indexed<'a>(
        &'a self,
        index: &'a HashMap<Id, BTreeSet<Id>>,
        id: Id,
    ) -> impl Iterator<Item = &'a EndpointRecord> + 'a {
        index
            .get(&id)
            .into_iter()
            .flatten()
            .filter_map(|e| self.endpoints.get(e))
    }

    pub fn endpoint_models(&self) -> Vec<Endpoint> {
        self.endpoints
            .values()
            .map(|e| e.endpoint.clone())
            .collect()
    }
}
