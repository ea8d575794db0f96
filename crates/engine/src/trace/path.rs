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

use bulkhead_model::{Direction, Driver};
use bulkhead_policy::{evaluate, CtState, EnforcementPoint, Packet, Verdict};

pub use super::topology::{
    classify, decider_name, EpView, NetView, Origin, PathTrace, Probe, Stage, Step, Target,
    Topology,
};

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
        if let Some(m) = topo.hairpin_source() {
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
