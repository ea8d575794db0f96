//! The path of one packet through the host, as the spec states it (§3, §5,
//! §6, §9, §12): a pure function of the host's topology, so it is testable
//! without a kernel. The per-point decisions are the policy crate's
//! reference evaluator ([`evaluate`]); this module adds what lies between
//! the points, in the order the kernel's hooks run:
//!
//! 1. the source endpoint's host firewall (output, inside its namespace:
//!    it sees the packet as sent);
//! 2. source binding at its switch port (prerouting, priority -300):
//!    a source address that is not the endpoint's is dropped; so is a DHCP
//!    server's reply (spec §9);
//! 3. DNAT of published ports (prerouting/output, -100): only to the host's
//!    own addresses (`fib daddr type local`), or to the one address a
//!    mapping names;
//! 4. the network step (forward -10 / input): same network, other network
//!    (isolated unless DNATed), the host (a nat endpoint reaches it only at
//!    its network's gateway), outside;
//! 5. the source's switch port (out) and 6. the destination's switch port
//!    (in), which see the DNATed destination and the source not yet SNATed;
//! 7. SNAT (postrouting): hairpin masquerade of DNATed traffic between
//!    bulkhead subnets, outbound masquerade of nat networks;
//! 8. the destination's host firewall (input, inside its namespace).
//!
//! Connection state: an established packet passes every stateful point
//! ("stateful") and the network step; source binding still applies. The
//! walk stops at the first step that blocks: the packet is gone there.

use std::net::IpAddr;

use bulkhead_model::{Cidr, Direction, Driver, PortMapping};
use bulkhead_policy::{
    evaluate, CtState, Decider, EndpointPolicy, EnforcementPoint, Packet, Verdict,
};
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

    fn in_subnets(&self, ip: IpAddr) -> bool {
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

    fn is_host(&self, ip: IpAddr) -> bool {
        self.host_addresses.contains(&ip)
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
                .map(|m| (i, m.clone()))
        })
    }
}

/// The walk: steps so far, and the packet as it is now.
struct Walk<'t> {
    topo: &'t Topology,
    probe: Probe,
    src: IpAddr,
    dst: IpAddr,
    dst_port: Option<u16>,
    steps: Vec<Step>,
}

impl Walk<'_> {
    fn push(
        &mut self,
        stage: Stage,
        point: &'static str,
        location: String,
        rule: &str,
        v: Verdict,
    ) {
        self.steps.push(Step {
            stage,
            point,
            location,
            direction: None,
            rule: rule.to_owned(),
            verdict: v,
        });
    }

    fn blocked(&self) -> bool {
        self.steps
            .last()
            .is_some_and(|s| s.verdict == Verdict::Block)
    }

    /// Evaluates endpoint `e`'s `point` for the packet as it is now.
    fn point(&mut self, stage: Stage, e: usize, point: EnforcementPoint, direction: Direction) {
        let ep = &self.topo.endpoints[e];
        if !ep.policy.has_point(point) {
            return;
        }
        let p = &self.probe;
        let mut packet = Packet::new(direction, self.src, self.dst, p.protocol);
        if bulkhead_policy::packet::is_ported(p.protocol) {
            packet = packet.with_ports(p.src_port.unwrap_or(0), self.dst_port.unwrap_or(0));
        }
        packet.ct = if p.established {
            CtState::Established
        } else {
            CtState::New
        };
        let d = evaluate(&ep.policy, point, &packet);
        let (name, location) = match point {
            EnforcementPoint::HostFirewall => ("host", ep.name.clone()),
            EnforcementPoint::SwitchPort => ("switch", ep.switch_port.clone()),
        };
        self.steps.push(Step {
            stage,
            point: name,
            location,
            direction: Some(direction),
            rule: decider_name(&d.decided_by),
            verdict: d.verdict,
        });
    }
}

/// Follows `probe` through `topo`.
pub fn trace_path(topo: &Topology, probe: Probe) -> PathTrace {
    let mut w = Walk {
        topo,
        probe,
        src: probe.src,
        dst: probe.dst,
        dst_port: probe.dst_port,
        steps: Vec::new(),
    };
    let target = walk(&mut w);
    let verdict = if w.blocked() {
        Verdict::Block
    } else {
        Verdict::Allow
    };
    PathTrace {
        steps: w.steps,
        verdict,
        target,
        final_src: w.src,
        final_dst: w.dst,
        final_dst_port: w.dst_port,
    }
}

fn walk(w: &mut Walk<'_>) -> Target {
    let topo = w.topo;
    let probe = w.probe;
    let blocked_target = |w: &Walk<'_>| classify(topo, w.dst);
    if let Origin::Endpoint(e) = probe.origin {
        w.point(
            Stage::SourcePoint,
            e,
            EnforcementPoint::HostFirewall,
            Direction::Out,
        );
        if w.blocked() {
            return blocked_target(w);
        }
        super::binding::source_binding(&mut w.steps, topo, e, &probe);
        if w.blocked() {
            return blocked_target(w);
        }
    }
    // DNAT: conntrack keeps applying it to every packet of the connection,
    // so an established packet to a published port is resolved too.
    let dnat = match (
        probe.dst_port,
        bulkhead_policy::packet::is_ported(probe.protocol),
    ) {
        (Some(port), true) => topo.published(probe.dst, probe.protocol, port),
        _ => None,
    };
    if let Some((j, m)) = &dnat {
        let to = &topo.endpoints[*j];
        w.dst = to
            .addresses
            .iter()
            .copied()
            .find(|a| a.is_ipv4() == probe.dst.is_ipv4())
            .unwrap_or(probe.dst);
        w.dst_port = Some(m.container_port);
        let rule = format!("publish {m} to {}", to.name);
        w.push(Stage::Nat, "nat", "dnat".into(), &rule, Verdict::Allow);
    }
    let target = classify(topo, w.dst);
    let (src, dst) = (w.src, w.dst);
    super::network::network_step(
        &mut w.steps,
        topo,
        &probe,
        src,
        dst,
        dnat.is_some(),
        &target,
    );
    if w.blocked() {
        return target;
    }
    if let Origin::Endpoint(e) = probe.origin {
        w.point(
            Stage::SourcePoint,
            e,
            EnforcementPoint::SwitchPort,
            Direction::Out,
        );
        if w.blocked() {
            return target;
        }
    }
    let to = topo.endpoint_at(w.dst);
    if let Some(j) = to {
        w.point(
            Stage::DestinationPoint,
            j,
            EnforcementPoint::SwitchPort,
            Direction::In,
        );
        if w.blocked() {
            return target;
        }
    }
    // SNAT in postrouting, after the switch has seen the original source.
    if dnat.is_some() && topo.in_subnets(w.src) && topo.in_subnets(w.dst) {
        if let Some(m) = topo.masquerade_source {
            w.src = m;
        }
        w.push(
            Stage::Nat,
            "nat",
            "masquerade".into(),
            "hairpin",
            Verdict::Allow,
        );
    } else if dnat.is_none() && matches!(target, Target::Outside) {
        if let Origin::Endpoint(e) = probe.origin {
            let net = &topo.networks[topo.endpoints[e].network];
            if net.driver == Driver::Nat {
                w.push(
                    Stage::Nat,
                    "nat",
                    "masquerade".into(),
                    "outbound",
                    Verdict::Allow,
                );
            }
        }
    }
    if let Some(j) = to {
        w.point(
            Stage::DestinationPoint,
            j,
            EnforcementPoint::HostFirewall,
            Direction::In,
        );
        if w.blocked() {
            return target;
        }
    }
    let place = match &target {
        Target::Endpoint(n) => format!("endpoint {n}"),
        Target::Host => "the host".into(),
        Target::Network(n) => format!("network {n}, not a local endpoint"),
        Target::Outside => "outside the host".into(),
    };
    w.push(
        Stage::Delivery,
        "delivery",
        place,
        "delivered",
        Verdict::Allow,
    );
    target
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
pub(super) fn same_network(topo: &Topology, a: IpAddr, b: IpAddr) -> bool {
    topo.same_subnet(a, b)
}

pub(super) fn in_subnets(topo: &Topology, ip: IpAddr) -> bool {
    topo.in_subnets(ip)
}
