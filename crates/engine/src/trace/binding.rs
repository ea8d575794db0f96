//! Source binding (spec §3, §9): a switch port passes only packets whose
//! source address is its endpoint's own, and never lets an endpoint play
//! DHCP/DHCPv6 server. The kernel's rules are the anti-spoofing chain of
//! `inet bulkhead` (routed ports) and `bridge bulkhead_l2` (bridged ports).

use bulkhead_policy::Verdict;

use super::topology::{Probe, Stage, Step, Topology};

/// UDP source ports of DHCP (67) and DHCPv6 (547) servers.
const DHCP_SERVER_PORTS: [u16; 2] = [67, 547];

/// Appends the binding step of endpoint `e` for `probe`.
pub(super) fn source_binding(steps: &mut Vec<Step>, topo: &Topology, e: usize, probe: &Probe) {
    let ep = &topo.endpoints[e];
    let (rule, verdict) = if !ep.addresses.contains(&probe.src) {
        ("switch:anti-spoofing", Verdict::Block)
    } else if probe.protocol == 17
        && probe
            .src_port
            .is_some_and(|p| DHCP_SERVER_PORTS.contains(&p))
    {
        ("switch:no-dhcp-server", Verdict::Block)
    } else {
        ("switch:binding", Verdict::Allow)
    };
    steps.push(Step {
        stage: Stage::SourceBinding,
        point: "switch",
        location: ep.switch_port.clone(),
        direction: None,
        rule: rule.into(),
        verdict,
    });
}
