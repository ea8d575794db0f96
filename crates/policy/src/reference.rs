//! The linear reference evaluator: the executable statement of spec §5.
//!
//! At a point: if the point does not exist for the endpoint, nothing filters
//! there ([`Decider::NotProgrammable`], allow). Otherwise, in order:
//! conntrack (established/related allow, invalid block), neighbour discovery
//! allow, the custom rules of that point and direction in precedence order
//! (first match wins: lower priority, then block before allow), then the
//! default rules of [`crate::profile`]. Everything else in this crate (the
//! classifier, the compiled nftables ruleset) must agree with it.

use bulkhead_model::{AclRule, Action};

use crate::endpoint::{precedence, Policy};
use crate::matrix::EnforcementPoint;
use crate::packet::{is_ported, CtState, Decider, Decision, Packet, Verdict};
use crate::profile::{default_matches, default_rules, ALLOW_ND};

/// Whether a custom rule matches the packet (direction included).
pub fn rule_matches(rule: &AclRule, packet: &Packet) -> bool {
    if rule.direction != packet.direction || !rule.protocol.matches(packet.protocol) {
        return false;
    }
    if rule.has_ports() {
        let (remote, local) = packet.remote_local_ports();
        if !is_ported(packet.protocol)
            || !rule.remote_ports.matches(remote)
            || !rule.local_ports.matches(local)
        {
            return false;
        }
    }
    let (remote, local) = packet.remote_local();
    rule.remote_addresses.matches(remote) && rule.local_addresses.matches(local)
}

/// The verdict at `point` for `packet`, with the deciding rule.
pub fn evaluate(policy: &Policy<'_>, point: EnforcementPoint, packet: &Packet) -> Decision {
    // The first match in precedence order is the matching rule of least
    // precedence key: one pass, no sorted copy of the list.
    decide(policy, point, packet, |p| {
        policy
            .rules()
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                r.direction == p.direction
                    && EnforcementPoint::of(r.rule_type) == point
                    && rule_matches(r, p)
            })
            .min_by_key(|(i, r)| precedence(r, *i))
            .map(|(_, r)| (r.id.clone(), r.action))
    })
}

/// [`evaluate`] with the point's rules for the packet's direction already in
/// precedence order (as [`Policy::ordered_rules`] gives them), for
/// callers that evaluate many packets.
pub fn evaluate_ordered(
    policy: &Policy<'_>,
    point: EnforcementPoint,
    packet: &Packet,
    ordered: &[&AclRule],
) -> Decision {
    decide(policy, point, packet, |p| {
        ordered
            .iter()
            .find(|r| rule_matches(r, p))
            .map(|r| (r.id.clone(), r.action))
    })
}

/// The shared frame of every evaluator; `custom` finds the winning custom rule.
pub(crate) fn decide(
    policy: &Policy<'_>,
    point: EnforcementPoint,
    packet: &Packet,
    custom: impl FnOnce(&Packet) -> Option<(bulkhead_model::RuleId, Action)>,
) -> Decision {
    if !policy.has_point(point) {
        return Decision::new(Verdict::Allow, Decider::NotProgrammable);
    }
    match packet.ct {
        CtState::Established | CtState::Related => {
            return Decision::new(Verdict::Allow, Decider::Stateful)
        }
        CtState::Invalid => return Decision::new(Verdict::Block, Decider::Stateful),
        CtState::New => {}
    }
    if packet.is_neighbour_discovery() {
        return Decision::new(Verdict::Allow, Decider::Default(ALLOW_ND));
    }
    if let Some((id, action)) = custom(packet) {
        let verdict = if action == Action::Allow {
            Verdict::Allow
        } else {
            Verdict::Block
        };
        return Decision::new(verdict, Decider::Custom(id));
    }
    default_rules(policy, point, packet.direction)
        .iter()
        .find(|r| default_matches(policy, r, packet))
        .map_or(
            Decision::new(Verdict::Allow, Decider::Default("none")),
            |r| Decision::new(r.verdict, Decider::Default(r.name)),
        )
}
