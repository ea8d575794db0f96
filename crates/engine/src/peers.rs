//! Remote endpoints of overlay networks: where they come from
//! ([`PeerSource`]) and how the engine programs them on a network's VXLAN
//! device ([`Engine::sync_peers`]).
//!
//! Contract: a peer source answers "which endpoints of this network live on
//! other hosts, at which MAC, behind which underlay address". Today the only
//! source is [`StaticPeers`] (set by API call or loaded from a JSON file);
//! the etcd control plane of a later issue implements the same trait (its
//! watch calls `sync_peers` on change), and [`Engine::local_peers`] is what
//! this host publishes for the others. `sync_peers` diffs the wanted list
//! against what it programmed last and sends only the difference (FDB entry
//! MAC → host, permanent neighbour IP → MAC, both on the VXLAN device).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use bulkhead_dataplane::kernel::RemoteEndpoint;
use bulkhead_model::{Driver, Id, InvalidValue, MacAddress, Network};
use serde::{Deserialize, Serialize};

use crate::drivers::vxlan_name;
use crate::error::{EngineError, Result};
use crate::Engine;

/// Where remote endpoints come from.
pub trait PeerSource: Send + Sync + std::fmt::Debug {
    /// The endpoints of `network` that live on other hosts.
    fn remote_endpoints(&self, network: &Network) -> Result<Vec<RemoteEndpoint>>;
    /// Whether the source knows the whole list (a watch that has listed
    /// once). Until then a sync only adds: the kernel's entries from before
    /// a restart are diffed (and stale ones removed) at the first sync
    /// from a current source.
    fn is_current(&self) -> bool {
        true
    }
}

/// One remote endpoint as JSON: `{"ip": "10.200.0.3", "mac":
/// "02:00:00:00:00:03", "host": "192.168.50.2"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerEntry {
    pub ip: String,
    pub mac: String,
    pub host: String,
}

impl PeerEntry {
    fn parse(&self) -> Result<RemoteEndpoint> {
        let ip = |field: &str, v: &str| {
            v.parse::<IpAddr>()
                .map_err(|_| InvalidValue::new(field, v, "an IPv4 or IPv6 address"))
        };
        Ok(RemoteEndpoint {
            ip: ip("ip", &self.ip)?,
            mac: MacAddress::parse("mac", &self.mac)?.0,
            host: ip("host", &self.host)?,
        })
    }
}

/// A static peer list, by network name: `{"ov1": [PeerEntry, …], …}`.
#[derive(Debug, Default)]
pub struct StaticPeers {
    lists: Mutex<BTreeMap<String, Vec<RemoteEndpoint>>>,
}

impl StaticPeers {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses the JSON file format (an object of network name → entries).
    pub fn from_json(text: &str) -> Result<Self> {
        let raw: BTreeMap<String, Vec<PeerEntry>> = serde_json::from_str(text)
            .map_err(|e| InvalidValue::new("peers", "<json>", format!("peer list JSON: {e}")))?;
        let peers = Self::new();
        for (network, entries) in raw {
            let list = entries
                .iter()
                .map(PeerEntry::parse)
                .collect::<Result<_>>()?;
            peers.set(&network, list);
        }
        Ok(peers)
    }

    /// Replaces the list of `network`.
    pub fn set(&self, network: &str, peers: Vec<RemoteEndpoint>) {
        self.lists
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(network.to_owned(), peers);
    }
}

impl PeerSource for StaticPeers {
    fn remote_endpoints(&self, network: &Network) -> Result<Vec<RemoteEndpoint>> {
        let lists = self.lists.lock().unwrap_or_else(|p| p.into_inner());
        Ok(lists
            .get(network.name.as_str())
            .cloned()
            .unwrap_or_default())
    }
}

/// The engine's peer state: the source and what each network's VXLAN
/// device was given last.
#[derive(Debug, Default)]
pub(crate) struct Peers {
    source: Option<Arc<dyn PeerSource>>,
    programmed: BTreeMap<Id, BTreeSet<RemoteEndpoint>>,
}

impl Engine {
    fn peers(&self) -> std::sync::MutexGuard<'_, Peers> {
        self.peers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the source of remote endpoints and programs every overlay network from it.
    pub fn set_peer_source(&self, source: Arc<dyn PeerSource>) -> Result<()> {
        self.peers().source = Some(source);
        let overlays: Vec<String> = self
            .networks()
            .into_iter()
            .filter(|n| n.driver == Driver::Overlay)
            .map(|n| n.name.to_string())
            .collect();
        for n in overlays {
            self.sync_peers(&n)?;
        }
        Ok(())
    }

    /// Brings the VXLAN device of overlay network `name` in line with the
    /// peer source; returns how many remote endpoints it now has.
    pub fn sync_peers(&self, name: &str) -> Result<usize> {
        let network = self.network(name)?;
        if network.driver != Driver::Overlay {
            return Err(EngineError::Conflict(format!(
                "network {name:?} is a {} network; peers are for overlay networks",
                network.driver
            )));
        }
        let mut peers = self.peers();
        let (wanted, current): (BTreeSet<RemoteEndpoint>, bool) = match &peers.source {
            Some(s) => (
                s.remote_endpoints(&network)?.into_iter().collect(),
                s.is_current(),
            ),
            None => (BTreeSet::new(), true),
        };
        let vxlan = vxlan_name(&network.id);
        let had = match peers.programmed.remove(&network.id) {
            Some(had) => had,
            // First sync since start (or since a failure) from a current
            // source: what the kernel holds, so stale entries go.
            None if current => self
                .kernel
                .remotes(&vxlan)
                .map_err(EngineError::kernel)?
                .into_iter()
                .collect(),
            None => BTreeSet::new(),
        };
        let add: Vec<RemoteEndpoint> = wanted.difference(&had).copied().collect();
        let remove: Vec<RemoteEndpoint> = had.difference(&wanted).copied().collect();
        let result = self
            .kernel
            .set_remotes(&vxlan, &add, &remove)
            .map_err(EngineError::kernel);
        // On failure, forget what was programmed: the next sync starts from
        // the kernel's list. A source not current yet records nothing.
        if result.is_ok() && current {
            peers.programmed.insert(network.id, wanted.clone());
        }
        result.map(|()| wanted.len())
    }

    /// Forgets the programmed peers of a deleted network.
    pub(crate) fn forget_peers(&self, network: Id) {
        self.peers().programmed.remove(&network);
    }

    /// This host's endpoints of overlay network `name`, as other hosts'
    /// peer sources should list them (`underlay`: this host's address).
    pub fn local_peers(&self, name: &str, underlay: IpAddr) -> Result<Vec<RemoteEndpoint>> {
        let network = self.network(name)?;
        let inner = self.lock();
        Ok(inner
            .state
            .endpoints_of_network(network.id)
            .map(|e| RemoteEndpoint {
                ip: e.ip_address.addr,
                mac: e.mac_address.0,
                host: underlay,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bulkhead_dataplane::fake::FakeKernel;
    use bulkhead_dataplane::kernel::Kernel;
    use bulkhead_model::NetworkSpec;
    use bulkhead_store::MemoryStore;

    use super::*;
    use crate::{Config, Engine};

    fn engine() -> (Engine, Arc<FakeKernel>) {
        let kernel = Arc::new(FakeKernel::new());
        kernel
            .create_network_device("ul0", None)
            .expect("fake uplink");
        let (e, _) = Engine::open(
            kernel.clone(),
            Arc::new(MemoryStore::new()),
            Config::default(),
        )
        .expect("open");
        e.create_network(NetworkSpec {
            name: "o1".into(),
            driver: "overlay".into(),
            subnets: vec!["10.201.0.0/24".into()],
            uplink: Some("ul0".into()),
            vni: Some("7".into()),
            ..Default::default()
        })
        .expect("overlay network");
        (e, kernel)
    }

    const JSON: &str = r#"{"o1": [
        {"ip": "10.201.0.20", "mac": "02:00:00:00:00:20", "host": "10.99.0.2"},
        {"ip": "10.201.0.21", "mac": "02:00:00:00:00:21", "host": "10.99.0.2"}]}"#;

    #[test]
    fn static_peers_parse_and_reject_bad_values() {
        let p = StaticPeers::from_json(JSON).expect("parse");
        let lists = p.lists.lock().unwrap_or_else(|e| e.into_inner());
        assert_eq!(lists["o1"].len(), 2);
        drop(lists);
        let bad = JSON.replace("10.99.0.2", "not-an-ip");
        let e = StaticPeers::from_json(&bad).expect_err("bad host");
        assert!(e.to_string().contains("host"), "{e}");
        let e = StaticPeers::from_json(r#"{"o1": [{"ip": "10.0.0.1"}]}"#).expect_err("fields");
        assert!(e.to_string().contains("peers"), "{e}");
    }

    #[test]
    fn sync_sends_only_the_difference() {
        let (e, kernel) = engine();
        let peers = Arc::new(StaticPeers::from_json(JSON).expect("parse"));
        e.set_peer_source(peers.clone()).expect("set");
        let calls = |k: &FakeKernel| -> Vec<String> {
            k.calls()
                .into_iter()
                .filter(|c| c.starts_with("set_remotes"))
                .collect()
        };
        assert_eq!(
            calls(&kernel).last().map(|c| c.ends_with("+2 -0")),
            Some(true)
        );
        let first = peers
            .remote_endpoints(&e.network("o1").expect("o1"))
            .expect("list");
        peers.set("o1", first[..1].to_vec());
        assert_eq!(e.sync_peers("o1").expect("sync"), 1);
        assert_eq!(
            calls(&kernel).last().map(|c| c.ends_with("+0 -1")),
            Some(true)
        );
        assert!(e.sync_peers("nope").is_err(), "unknown network");
    }

    #[test]
    fn overlay_needs_an_existing_uplink_and_a_unique_vni() {
        let (e, _) = engine();
        let spec = |name: &str, uplink: &str, vni: &str| NetworkSpec {
            name: name.into(),
            driver: "overlay".into(),
            subnets: vec!["10.202.0.0/24".into()],
            uplink: Some(uplink.into()),
            vni: Some(vni.into()),
            ..Default::default()
        };
        let err = e
            .create_network(spec("o2", "eth9", "8"))
            .expect_err("no uplink");
        assert!(
            err.to_string().contains("uplink") && err.to_string().contains("eth9"),
            "{err}"
        );
        let err = e
            .create_network(spec("o2", "ul0", "7"))
            .expect_err("vni taken");
        assert!(err.to_string().contains("vni 7"), "{err}");
        e.create_network(spec("o2", "ul0", "8")).expect("ok");
    }
}
