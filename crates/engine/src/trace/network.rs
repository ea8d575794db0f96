//! The network step of a path (spec §6, §9): what lies between the two
//! sides' enforcement points.
//!
//! - established packets pass (`ct state established,related accept` heads
//!   the forward chain of `inet bulkhead_net`);
//! - the host's own packets are not forwarded: nothing isolates them;
//! - DNATed packets (published ports) pass (`ct status dnat accept`);
//! - to the host: a nat endpoint reaches the host only at its network's
//!   gateway (§9); on the other drivers the host is one more machine of the
//!   LAN; from outside it is the host's own business;
//! - forwarded: a packet between two bulkhead subnets that are not the same
//!   is dropped ("networks are isolated"), also when the far side is not a
//!   local endpoint (a LAN machine in an l2bridge subnet);
//! - anything else is routed.

use std::net::IpAddr;

use bulkhead_model::Driver;
use bulkhead_policy::Verdict;

use super::topology::{in_subnets, same_network, Origin, Probe, Stage, Step, Target, Topology};

fn step(steps: &mut Vec<Step>, location: String, rule: &str, verdict: Verdict) {
    steps.push(Step {
        stage: Stage::Network,
        point: "network",
        location,
        direction: None,
        rule: rule.into(),
        verdict,
    });
}

/// Appends the network step for a packet now `src -> dst`.
pub(super) fn network_step(
    steps: &mut Vec<Step>,
    topo: &Topology,
    probe: &Probe,
    src: IpAddr,
    dst: IpAddr,
    dnat: bool,
    target: &Target,
) {
    let source_net = match probe.origin {
        Origin::Endpoint(e) => Some(&topo.networks[topo.endpoints[e].network]),
        _ => None,
    };
    let location = match (probe.origin, source_net) {
        (_, Some(n)) => n.name.clone(),
        (Origin::Host, _) => "host".into(),
        _ => "uplink".into(),
    };
    if probe.established {
        return step(steps, location, "stateful", Verdict::Allow);
    }
    if probe.origin == Origin::Host {
        return step(steps, location, "from-host", Verdict::Allow);
    }
    if dnat {
        return step(steps, location, "published-port", Verdict::Allow);
    }
    if *target == Target::Host {
        let (rule, verdict) = match source_net {
            Some(n) if n.driver == Driver::Nat && n.gateway != Some(dst) => {
                ("host:gateway-only", Verdict::Block)
            }
            Some(n) if n.driver == Driver::Nat => ("host:gateway", Verdict::Allow),
            Some(_) => ("host:lan-machine", Verdict::Allow),
            None => ("to-host", Verdict::Allow),
        };
        return step(steps, location, rule, verdict);
    }
    if in_subnets(topo, src) && in_subnets(topo, dst) {
        if same_network(topo, src, dst) {
            step(steps, location, "same-network", Verdict::Allow)
        } else {
            step(steps, location, "networks are isolated", Verdict::Block)
        }
    } else {
        step(steps, location, "routed", Verdict::Allow)
    }
}
