//! The pure model's vocabulary: the host's topology as a path sees it
//! (networks, local endpoints with their policies, the host's addresses),
//! one packet ([`Probe`]), and the steps of its path ([`PathTrace`]).
//! Address questions (which network, the host's, same subnet) live here.

use std::net::IpAddr;

use bulkhead_model::{Cidr, Direction, Driver, PortMapping};
use bulkhead_policy::{Decider, EndpointPolicy, Verdict};
use serde::Serialize;

/// A network as the path sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetView {
    pub name: String,
    pub driver: Driver,
    pub subnets: Vec<Cidr>,
    pub gateway: Option<IpAddr>,
}

/// A local endpoint as the path sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpView {
    pub name: String,
    /// Index into [`Topology::networks`].
    pub network: usize,
    pub addresses: Vec<IpAddr>,
    pub switch_port: String,
    pub policy: EndpointPolicy,
    pub mappings: Vec<PortMapping>,
}

/// The host: its networks, endpoints and own addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Topology {
    pub networks: Vec<NetView>,
    pub endpoints: Vec<EpView>,
    /// Every address of the host namespace (`fib daddr type local`).
    pub host_addresses: Vec<IpAddr>,
    /// The source a masquerade gives a packet leaving by a switch port
    /// (ports have no address: the kernel takes the first global address
    /// of the host in interface order).
    pub masquerade_source: Option<IpAddr>,
}

/// Who sends the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A local endpoint (index into [`Topology::endpoints`]), whatever the
    /// source address it writes.
    Endpoint(usize),
    /// The host itself, from one of its addresses.
    Host,
    /// Anything else: the uplink's side, a LAN peer, a remote host.
    Outside,
}

/// One packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub origin: Origin,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub protocol: u8,
    pub src_port: Option<u16>,
    pub dst_port: Option<u16>,
    /// Part of (or a reply of) a connection conntrack already tracks.
    pub established: bool,
}

/// The kinds of step on a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    SourcePoint,
    SourceBinding,
    Nat,
    Network,
    DestinationPoint,
    Delivery,
}

/// One step: where, which rule decided, and the verdict there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub stage: Stage,
    /// `host` (firewall), `switch` (port), `nat`, `network`, `delivery`.
    pub point: &'static str,
    /// The endpoint, switch port, network or place the step is at.
    pub location: String,
    /// `in`/`out` at an enforcement point.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// A custom rule id, a default rule's name, or the path rule's name.
    pub rule: String,
    pub verdict: Verdict,
}

/// Where the packet ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "name")]
pub enum Target {
    Endpoint(String),
    Host,
    /// In a network's subnet but not a local endpoint (a LAN machine, a
    /// remote overlay endpoint).
    Network(String),
    Outside,
}

/// The whole path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathTrace {
    pub steps: Vec<Step>,
    pub verdict: Verdict,
    pub target: Target,
    /// Addresses and destination port after NAT (what the destination sees).
    pub final_src: IpAddr,
    pub final_dst: IpAddr,
    pub final_dst_port: Option<u16>,
}

/// Name of a deciding rule for output.
pub fn decider_name(d: &Decider) -> String {
    match d {
        Decider::Custom(id) => id.to_string(),
        Decider::Default(name) => (*name).to_owned(),
        Decider::Stateful => "stateful".into(),
        Decider::NotProgrammable => "not-programmable".into(),
    }
}

impl Topology {
    pub fn endpoint_at(&self, ip: IpAddr) -> Option<usize> {
        self.endpoints
            .iter()
            .position(|e| e.addresses.contains(&ip))
    }

    fn network_of(&self, ip: IpAddr) -> Option<usize> {
        if let Some(e) = self.endpoint_at(ip) {
            return Some(self.endpoints[e].network);
        }
        self.networks
            .iter()
            .position(|n| n.subnets.iter().any(|s| s.contains(ip)))
    }

    pub(crate) fn in_subnets(&self, ip: IpAddr) -> bool {
        self.networks
            .iter()
            .any(|n| n.subnets.iter().any(|s| s.contains(ip)))
    }

    /// The kernel keeps networks apart by subnet pairs: two addresses are
    /// on "the same network" when one subnet holds both.
    fn same_subnet(&self, a: IpAddr, b: IpAddr) -> bool {
        self.networks
            .iter()
            .flat_map(|n| &n.subnets)
            .any(|s| s.contains(a) && s.contains(b))
    }

    pub(crate) fn is_host(&self, ip: IpAddr) -> bool {
        self.host_addresses.contains(&ip)
    }

    /// The source a hairpin masquerade writes: the address of the device
    /// the DNATed packet leaves by, always the target's switch port (a
    /// DNATed connection is routed by `main`, also from an l2tunnel
    /// endpoint, whose traffic is otherwise policy-routed into the fabric),
    /// which has no address ([`Topology::masquerade_source`]).
    pub fn hairpin_source(&self) -> Option<IpAddr> {
        self.masquerade_source
    }

    /// The published port `dst:port/protocol` captures, if any.
    pub fn published(&self, dst: IpAddr, protocol: u8, port: u16) -> Option<(usize, PortMapping)> {
        if !self.is_host(dst) {
            return None;
        }
        self.endpoints.iter().enumerate().find_map(|(i, e)| {
            e.mappings
                .iter()
                .find(|m| {
                    m.protocol.number() == Some(protocol)
                        && m.host_port == port
                        && m.host_ip.is_none_or(|h| h == dst)
                        && e.addresses.iter().any(|a| a.is_ipv4() == dst.is_ipv4())
                })
                .map(|m| (i, *m))
        })
    }
}

/// What an address is, seen from the host.
pub fn classify(topo: &Topology, ip: IpAddr) -> Target {
    if let Some(e) = topo.endpoint_at(ip) {
        return Target::Endpoint(topo.endpoints[e].name.clone());
    }
    if topo.is_host(ip) {
        return Target::Host;
    }
    match topo.network_of(ip) {
        Some(n) => Target::Network(topo.networks[n].name.clone()),
        None => Target::Outside,
    }
}

/// Whether the two addresses are in one network (for [`super::network`]).
pub(crate) fn same_network(topo: &Topology, a: IpAddr, b: IpAddr) -> bool {
    topo.same_subnet(a, b)
}

pub(crate) fn in_subnets(topo: &Topology, ip: IpAddr) -> bool {
    topo.in_subnets(ip)
}
