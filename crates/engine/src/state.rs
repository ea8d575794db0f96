//! The engine's in-memory view of the desired state: every network,
//! namespace and endpoint, loaded from the store at start and changed only
//! after the store has accepted the change. Look-ups by name are linear in
//! the number of objects of that kind only in the cold paths (inspect, rm);
//! creates check names through the maps' indexes.

use std::collections::{BTreeMap, HashMap};

use bulkhead_model::{Endpoint, Id, Namespace, Network};

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
        Some(n)
    }

    pub fn insert_endpoint(&mut self, e: EndpointRecord) {
        self.endpoint_names.insert(e.name.to_string(), e.id);
        self.endpoints.insert(e.id, e);
    }

    pub fn remove_endpoint(&mut self, id: Id) -> Option<EndpointRecord> {
        let e = self.endpoints.remove(&id)?;
        self.endpoint_names.remove(e.name.as_str());
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
        self.endpoints.values().filter(move |e| e.network == id)
    }

    pub fn endpoints_in_namespace(&self, id: Id) -> impl Iterator<Item = &EndpointRecord> {
        self.endpoints.values().filter(move |e| e.namespace == id)
    }

    pub fn endpoint_models(&self) -> Vec<Endpoint> {
        self.endpoints
            .values()
            .map(EndpointRecord::to_endpoint)
            .collect()
    }
}
