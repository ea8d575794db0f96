//! What the engine keeps in the store: one record type per object kind,
//! versioned on their own and separate from the model types they
//! are built from, so the disk format can evolve without touching the API.
//! Fields reuse the model's value types, whose serialised forms (strings such
//! as `10.0.0.0/24`, `tcp`, `80,1000-2000`) are stable.

use std::net::IpAddr;
use std::path::PathBuf;

use bulkhead_dataplane::kernel::NetnsId;
use bulkhead_model::Id;
use bulkhead_model::{
    AclMode, AclProfile, AclRule, Cidr, Driver, Endpoint, IfAddr, IfName, Isolation, MacAddress,
    Name, Namespace, Network, PortMapping,
};
use bulkhead_store::{Kind, Record};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRecord {
    pub id: Id,
    pub name: Name,
    pub driver: Driver,
    pub subnets: Vec<Cidr>,
    pub gateway: Option<IpAddr>,
    pub uplink: Option<IfName>,
    pub vni: Option<u32>,
    pub acl_profile: AclProfile,
}

impl Record for NetworkRecord {
    const KIND: Kind = Kind::Networks;
    const SCHEMA: u32 = 1;
    fn key(&self) -> String {
        self.id.to_string()
    }
}

impl From<&Network> for NetworkRecord {
    fn from(n: &Network) -> Self {
        Self {
            id: n.id,
            name: n.name.clone(),
            driver: n.driver,
            subnets: n.subnets.clone(),
            gateway: n.gateway,
            uplink: n.uplink.clone(),
            vni: n.vni,
            acl_profile: n.acl_profile,
        }
    }
}

impl From<NetworkRecord> for Network {
    fn from(r: NetworkRecord) -> Self {
        Network {
            id: r.id,
            name: r.name,
            driver: r.driver,
            subnets: r.subnets,
            gateway: r.gateway,
            uplink: r.uplink,
            vni: r.vni,
            acl_profile: r.acl_profile,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceRecord {
    pub id: Id,
    pub compartment_id: u32,
    pub name: Name,
    pub isolation: Isolation,
    pub netns_path: PathBuf,
    #[serde(default)]
    pub containers: Vec<String>,
    /// The network namespace at `netns_path` was made by someone else (a
    /// container runtime): never created, recreated or deleted by us.
    #[serde(default)]
    pub adopted: bool,
    /// Schema 2: the identity of the adopted network namespace when it was
    /// adopted. Programming it later checks the namespace it opens against
    /// this (a re-bound path must not redirect it). Absent in schema-1
    /// records: reconcile records the namespace found at the path then,
    /// unless that is one never to be adopted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns_id: Option<NetnsIdRecord>,
}

/// [`NetnsId`] as stored: the nsfs device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetnsIdRecord {
    pub dev: u64,
    pub ino: u64,
}

impl From<NetnsId> for NetnsIdRecord {
    fn from(n: NetnsId) -> Self {
        Self {
            dev: n.dev,
            ino: n.ino,
        }
    }
}

impl From<NetnsIdRecord> for NetnsId {
    fn from(n: NetnsIdRecord) -> Self {
        Self {
            dev: n.dev,
            ino: n.ino,
        }
    }
}

impl Record for NamespaceRecord {
    const KIND: Kind = Kind::Namespaces;
    /// 2: `netns_id` added (schema-1 bodies read as they are, without it).
    const SCHEMA: u32 = 2;
    fn key(&self) -> String {
        self.id.to_string()
    }
}

impl From<&Namespace> for NamespaceRecord {
    fn from(n: &Namespace) -> Self {
        Self {
            id: n.id,
            compartment_id: n.compartment_id,
            name: n.name.clone(),
            isolation: n.isolation,
            netns_path: n.netns_path.clone(),
            containers: n.containers.clone(),
            adopted: false,
            netns_id: None,
        }
    }
}

impl NamespaceRecord {
    /// The record of `n`, adopted (with the namespace's identity) or not.
    pub fn of(n: &Namespace, adopted: Option<NetnsId>) -> Self {
        Self {
            adopted: adopted.is_some(),
            netns_id: adopted.map(Into::into),
            ..Self::from(n)
        }
    }
}

impl From<NamespaceRecord> for Namespace {
    fn from(r: NamespaceRecord) -> Self {
        Namespace {
            id: r.id,
            compartment_id: r.compartment_id,
            name: r.name,
            isolation: r.isolation,
            netns_path: r.netns_path,
            containers: r.containers,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRecord {
    pub id: Id,
    pub name: Name,
    pub network: Id,
    pub namespace: Id,
    pub ifname: IfName,
    pub ip_address: IfAddr,
    pub mac_address: MacAddress,
    pub switch_port: IfName,
    pub port_mappings: Vec<PortMapping>,
    pub acl_mode: AclMode,
    pub acls: Vec<AclRule>,
    /// The CNI key (container id, interface) when the endpoint came from the
    /// CNI plugin.
    #[serde(default)]
    pub container_id: Option<String>,
}

impl Record for EndpointRecord {
    const KIND: Kind = Kind::Endpoints;
    const SCHEMA: u32 = 1;
    fn key(&self) -> String {
        self.id.to_string()
    }
}

impl EndpointRecord {
    pub fn from_endpoint(e: &Endpoint, container_id: Option<String>) -> Self {
        Self {
            id: e.id,
            name: e.name.clone(),
            network: e.network,
            namespace: e.namespace,
            ifname: e.ifname.clone(),
            ip_address: e.ip_address,
            mac_address: e.mac_address,
            switch_port: e.switch_port.clone(),
            port_mappings: e.port_mappings.clone(),
            acl_mode: e.acl_mode,
            acls: e.acls.clone(),
            container_id,
        }
    }

    pub fn to_endpoint(&self) -> Endpoint {
        Endpoint {
            id: self.id,
            name: self.name.clone(),
            network: self.network,
            namespace: self.namespace,
            ifname: self.ifname.clone(),
            ip_address: self.ip_address,
            mac_address: self.mac_address,
            switch_port: self.switch_port.clone(),
            port_mappings: self.port_mappings.clone(),
            acl_mode: self.acl_mode,
            acls: self.acls.clone(),
        }
    }
}
