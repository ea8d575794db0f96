//! Default port ACLs (spec §4) as named rules, evaluated after custom rules.
//!
//! Names are stable (`trace` shows them, goldens pin them):
//!
//! | point | endpoint | in | out |
//! |---|---|---|---|
//! | host firewall | profile `current` | `current:in:allow-common` (tcp, udp, icmp, icmpv6, igmp), `current:in:block-other` | `current:out:allow-all` |
//! | host firewall | profile `legacy` | `legacy:in:allow-published` (each mapping's container port/protocol), `legacy:in:block-all` | `legacy:out:allow-all` |
//! | switch port | overlay network | `overlay:in:allow-all` | `overlay:out:allow-all` |
//! | switch port | vm | `vm:in:allow-all` | `vm:out:allow-all` |
//! | switch port | process | `port:in:allow-all` | `port:out:allow-all` |
//!
//! In `replace` mode, once the endpoint has a custom rule at a point, that
//! point's profile is `replace:<dir>:block-unmatched`. Always first, at both
//! points: `ct state established,related` allow and `invalid` block
//! ([`Decider::Stateful`](crate::Decider)), then [`ALLOW_ND`].

use bulkhead_model::{AclProfile, Direction, Driver, Isolation};

use crate::endpoint::Policy;
use crate::matrix::EnforcementPoint;
use crate::packet::{Packet, Verdict};

/// Protocols the `current` profile lets in unsolicited.
pub const COMMON_PROTOCOLS: [u8; 5] = [1, 2, 6, 17, 58];
/// Neighbour discovery is always allowed, before any rule.
pub const ALLOW_ND: &str = "always:allow-nd";

/// What a default rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultMatch {
    All,
    Protocols(&'static [u8]),
    /// The (protocol, container port) of each of the endpoint's port mappings.
    Published,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultRule {
    pub name: &'static str,
    pub verdict: Verdict,
    pub matcher: DefaultMatch,
}

const fn rule(name: &'static str, verdict: Verdict, matcher: DefaultMatch) -> DefaultRule {
    DefaultRule {
        name,
        verdict,
        matcher,
    }
}

const REPLACE_IN: &[DefaultRule] = &[rule(
    "replace:in:block-unmatched",
    Verdict::Block,
    DefaultMatch::All,
)];
const REPLACE_OUT: &[DefaultRule] = &[rule(
    "replace:out:block-unmatched",
    Verdict::Block,
    DefaultMatch::All,
)];
const CURRENT_IN: &[DefaultRule] = &[
    rule(
        "current:in:allow-common",
        Verdict::Allow,
        DefaultMatch::Protocols(&COMMON_PROTOCOLS),
    ),
    rule("current:in:block-other", Verdict::Block, DefaultMatch::All),
];
const CURRENT_OUT: &[DefaultRule] = &[rule(
    "current:out:allow-all",
    Verdict::Allow,
    DefaultMatch::All,
)];
const LEGACY_IN: &[DefaultRule] = &[
    rule(
        "legacy:in:allow-published",
        Verdict::Allow,
        DefaultMatch::Published,
    ),
    rule("legacy:in:block-all", Verdict::Block, DefaultMatch::All),
];
const LEGACY_OUT: &[DefaultRule] = &[rule(
    "legacy:out:allow-all",
    Verdict::Allow,
    DefaultMatch::All,
)];
const OVERLAY_IN: &[DefaultRule] = &[rule(
    "overlay:in:allow-all",
    Verdict::Allow,
    DefaultMatch::All,
)];
const OVERLAY_OUT: &[DefaultRule] = &[rule(
    "overlay:out:allow-all",
    Verdict::Allow,
    DefaultMatch::All,
)];
const VM_IN: &[DefaultRule] = &[rule("vm:in:allow-all", Verdict::Allow, DefaultMatch::All)];
const VM_OUT: &[DefaultRule] = &[rule("vm:out:allow-all", Verdict::Allow, DefaultMatch::All)];
const PORT_IN: &[DefaultRule] = &[rule("port:in:allow-all", Verdict::Allow, DefaultMatch::All)];
const PORT_OUT: &[DefaultRule] = &[rule(
    "port:out:allow-all",
    Verdict::Allow,
    DefaultMatch::All,
)];

/// The default rules at `point` for `direction`, in order; the last one
/// matches every packet. Meaningful only where the point exists.
pub fn default_rules(
    policy: &Policy<'_>,
    point: EnforcementPoint,
    direction: Direction,
) -> &'static [DefaultRule] {
    let facts = policy.facts();
    let inbound = direction == Direction::In;
    let pick = |i: &'static [DefaultRule], o: &'static [DefaultRule]| if inbound { i } else { o };
    if policy.replaces_profile(point) {
        return pick(REPLACE_IN, REPLACE_OUT);
    }
    match point {
        EnforcementPoint::HostFirewall => match facts.profile {
            AclProfile::Current => pick(CURRENT_IN, CURRENT_OUT),
            AclProfile::Legacy => pick(LEGACY_IN, LEGACY_OUT),
        },
        EnforcementPoint::SwitchPort if facts.driver == Driver::Overlay => {
            pick(OVERLAY_IN, OVERLAY_OUT)
        }
        EnforcementPoint::SwitchPort if facts.isolation == Isolation::Vm => pick(VM_IN, VM_OUT),
        EnforcementPoint::SwitchPort => pick(PORT_IN, PORT_OUT),
    }
}

/// Whether a default rule matches the packet.
pub fn default_matches(policy: &Policy<'_>, rule: &DefaultRule, packet: &Packet) -> bool {
    match rule.matcher {
        DefaultMatch::All => true,
        DefaultMatch::Protocols(ps) => ps.contains(&packet.protocol),
        DefaultMatch::Published => {
            let dport = packet.ports().1;
            policy
                .facts()
                .port_mappings
                .iter()
                .any(|m| m.protocol.number() == Some(packet.protocol) && m.container_port == dport)
        }
    }
}
