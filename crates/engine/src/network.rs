//! Network operations. A network is a record, an IPAM pool and, in the host
//! namespace, a device holding the gateway address plus the driver's rules.

use std::net::IpAddr;

use bulkhead_model::{Id, Network, NetworkSpec};
use bulkhead_store::{Kind, Op, StoreExt, Subnet};

use crate::drivers;
use crate::error::{EngineError, Result};
use crate::records::NetworkRecord;
use crate::undo::Undo;
use crate::{Engine, NETWORK_DEVICE_PREFIX};

/// The host device of a network: `bhn` + 10 hex digits of its id.
pub(crate) fn device_name(id: &Id) -> String {
    format!("{NETWORK_DEVICE_PREFIX}{}", id.short_hex(10))
}

fn ipam_subnet(n: &Network) -> Result<Subnet> {
    let c = n.subnets[0];
    Ok(Subnet::new(c.network(), c.prefix())?)
}

/// A free default subnet for a nat network created without `--subnet`:
/// the first of 10.89.0.0/24 … 10.89.255.0/24 no network uses.
fn default_subnet(existing: &[&Network]) -> Option<String> {
    (0..=255u8).map(|i| format!("10.89.{i}.0/24")).find(|s| {
        let c = bulkhead_model::Cidr::parse("subnet", s).ok();
        !existing
            .iter()
            .any(|n| n.subnets.iter().any(|o| Some(*o) == c))
    })
}

impl Engine {
    pub fn create_network(&self, mut spec: NetworkSpec) -> Result<Network> {
        let mut inner = self.lock();
        if spec.subnets.is_empty() && spec.driver.eq_ignore_ascii_case("nat") {
            let all: Vec<&Network> = inner.state.networks.values().collect();
            spec.subnets.extend(default_subnet(&all));
        }
        let network = spec.validate(Id::random())?;
        if inner.state.has_network(network.name.as_str()) {
            return Err(EngineError::Conflict(format!(
                "network {:?} already exists",
                network.name.as_str()
            )));
        }
        self.check_driver(&inner.state, &network)?;
        for other in inner.state.networks.values() {
            for (a, b) in other
                .subnets
                .iter()
                .flat_map(|a| network.subnets.iter().map(move |b| (a, b)))
            {
                if a.contains(b.network()) || b.contains(a.network()) {
                    return Err(EngineError::Conflict(format!(
                        "subnet {b} overlaps subnet {a} of network {:?}",
                        other.name.as_str()
                    )));
                }
            }
        }
        let key = network.id.to_string();
        let subnet = ipam_subnet(&network)?;
        let intent = self.store.transaction(|t| {
            t.put(&NetworkRecord(network.clone()))?;
            t.create_pool(&key, subnet, network.gateway)?;
            t.put_intent(Op::Create, Kind::Networks, &key, serde_json::Value::Null)
        })?;
        let mut undo = Undo::new();
        undo.push("store network", || {
            self.store
                .transaction(|t| {
                    t.delete::<NetworkRecord>(&key)?;
                    t.delete_pool(&key)?;
                    t.clear_intent(&intent.id).map(|_| ())
                })
                .map_err(|e| e.to_string())
        });
        let device = network.clone();
        undo.push("network device", move || {
            self.delete_network_kernel(&device)
                .map_err(|e| e.to_string())
        });
        self.create_network_kernel(&network)?;
        let mut next = inner.state.clone();
        next.insert_network(network.clone());
        self.program_switch(&mut inner.programmed, &next)?;
        inner.state = next;
        undo.commit();
        self.clear_intent(&intent.id);
        drop(inner);
        if network.driver == bulkhead_model::Driver::Overlay {
            // Best effort: the network exists; a later sync_peers retries.
            if let Err(e) = self.sync_peers(network.name.as_str()) {
                tracing::warn!(network = %network.name, error = %e, "could not program peers");
            }
        }
        Ok(network)
    }

    /// The network's host device with its gateway address (idempotent).
    pub(crate) fn create_network_kernel(&self, network: &Network) -> Result<()> {
        if let Some(spec) = drivers::switch_spec(network) {
            self.kernel
                .create_switch(&spec)
                .map_err(EngineError::kernel)?;
        }
        let gateway: Option<(IpAddr, u8)> = drivers::host_gateway(network);
        self.kernel
            .create_network_device(&device_name(&network.id), gateway)
            .map_err(EngineError::kernel)
    }

    /// Removes the network's host devices (and l2tunnel's routing).
    fn delete_network_kernel(&self, network: &Network) -> Result<()> {
        match drivers::switch_spec(network) {
            Some(spec) => self.kernel.delete_switch(&spec),
            None => self.kernel.delete_link(&device_name(&network.id)),
        }
        .map_err(EngineError::kernel)
    }

    pub fn delete_network(&self, name: &str) -> Result<()> {
        let mut inner = self.lock();
        let network = inner.state.network(name)?.clone();
        let users: Vec<String> = inner
            .state
            .endpoints_of_network(network.id)
            .map(|e| e.name.to_string())
            .collect();
        if !users.is_empty() {
            return Err(EngineError::Conflict(format!(
                "network {name:?} still has endpoints: {}; remove them first",
                users.join(", ")
            )));
        }
        let key = network.id.to_string();
        let intent = self.store.transaction(|t| {
            t.put_intent(Op::Delete, Kind::Networks, &key, serde_json::Value::Null)
        })?;
        let mut next = inner.state.clone();
        next.remove_network(network.id);
        let mut errors = Vec::new();
        if let Err(e) = self.program_switch(&mut inner.programmed, &next) {
            errors.push(e.to_string());
        }
        if let Err(e) = self.delete_network_kernel(&network) {
            errors.push(e.to_string());
        }
        self.forget_peers(network.id);
        self.store.transaction(|t| {
            t.delete::<NetworkRecord>(&key)?;
            t.delete_pool(&key)?;
            t.clear_intent(&intent.id).map(|_| ())
        })?;
        inner.state = next;
        if errors.is_empty() {
            Ok(())
        } else {
            Err(EngineError::Kernel(format!(
                "network {name:?} removed, but: {}",
                errors.join("; ")
            )))
        }
    }

    pub fn networks(&self) -> Vec<Network> {
        self.lock().state.networks.values().cloned().collect()
    }

    pub fn network(&self, name: &str) -> Result<Network> {
        self.lock().state.network(name).cloned()
    }

    /// How many endpoints each network has, by network id.
    pub fn endpoint_count(&self, network: Id) -> usize {
        self.lock().state.endpoints_of_network(network).count()
    }
}
