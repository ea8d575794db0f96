//! What a decision about one endpoint needs: its network's driver and
//! profile, its isolation, ACL mode, addresses, port mappings and custom
//! rules.
//!
//! Invariant: every custom rule of a [`Policy`] passed
//! [`check_rule`](crate::matrix::check_rule) and ids are unique: checked
//! by [`Policy::new`] and [`Policy::from_endpoint`], and by whoever stored
//! the rules [`Policy::from_stored`] borrows. Rule precedence is total:
//! lower priority first, then `block` before `allow`, then input order.
//!
//! A policy owns its rules ([`EndpointPolicy`], what compiled tables and
//! classifiers keep) or borrows them from a stored endpoint: a one-rule
//! change of a 100k-rule ACL reads the rules where they are instead of
//! copying them for the change (9–21 % of its CPU when it copied).

use std::borrow::Cow;
use std::collections::HashSet;
use std::net::IpAddr;

use bulkhead_model::{
    AclMode, AclProfile, AclRule, Action, Direction, Driver, Endpoint, Isolation, Network,
    PortMapping,
};

use crate::error::PolicyError;
use crate::matrix::{check_rule, has_point, EnforcementPoint};

/// The endpoint's facts, apart from its custom rules.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EndpointFacts {
    pub driver: Driver,
    pub isolation: Isolation,
    pub profile: AclProfile,
    pub acl_mode: AclMode,
    pub addresses: Vec<IpAddr>,
    pub port_mappings: Vec<PortMapping>,
}

/// An endpoint's complete, checked policy; its rules owned, or borrowed
/// (`'r`) from the stored endpoint they belong to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Policy<'r> {
    facts: EndpointFacts,
    rules: Cow<'r, [AclRule]>,
}

/// A policy that owns its rules.
pub type EndpointPolicy = Policy<'static>;

impl EndpointPolicy {
    /// Checks every rule against the enforcement-point matrix.
    pub fn new(facts: EndpointFacts, rules: Vec<AclRule>) -> Result<Self, PolicyError> {
        check_all(&facts, &rules)?;
        Ok(Self {
            facts,
            rules: Cow::Owned(rules),
        })
    }
}

impl<'r> Policy<'r> {
    /// The policy of a stored endpoint on its network, its rules borrowed
    /// and checked.
    pub fn from_endpoint(
        network: &Network,
        isolation: Isolation,
        endpoint: &'r Endpoint,
    ) -> Result<Self, PolicyError> {
        let facts = facts_of(network, isolation, endpoint);
        check_all(&facts, &endpoint.acls)?;
        Ok(Self {
            facts,
            rules: Cow::Borrowed(&endpoint.acls),
        })
    }

    /// The policy of a stored endpoint whose rules were all checked when
    /// they were stored ([`check_rule`] and unique ids: the engine checks
    /// a whole ACL before storing it and each rule it adds), its rules
    /// borrowed and not checked again: no pass over a 100k-rule ACL for a
    /// change of one rule.
    pub fn from_stored(network: &Network, isolation: Isolation, endpoint: &'r Endpoint) -> Self {
        Self {
            facts: facts_of(network, isolation, endpoint),
            rules: Cow::Borrowed(&endpoint.acls),
        }
    }

    /// The same policy owning its rules (a copy when they were borrowed).
    pub fn into_owned(self) -> EndpointPolicy {
        Policy {
            facts: self.facts,
            rules: Cow::Owned(self.rules.into_owned()),
        }
    }

    pub fn facts(&self) -> &EndpointFacts {
        &self.facts
    }

    pub fn rules(&self) -> &[AclRule] {
        &self.rules
    }

    pub fn has_point(&self, point: EnforcementPoint) -> bool {
        has_point(self.facts.driver, self.facts.isolation, point)
    }

    /// Whether any custom rule (either direction) sits at `point`.
    pub fn has_custom(&self, point: EnforcementPoint) -> bool {
        self.rules
            .iter()
            .any(|r| EnforcementPoint::of(r.rule_type) == point)
    }

    /// Whether unmatched traffic at `point` is blocked (replace mode with rules).
    pub fn replaces_profile(&self, point: EnforcementPoint) -> bool {
        self.facts.acl_mode == AclMode::Replace && self.has_custom(point)
    }

    /// The rules at `point` for `direction`, highest precedence first.
    pub fn ordered_rules(&self, point: EnforcementPoint, direction: Direction) -> Vec<&AclRule> {
        ordered_rules(&self.rules, point, direction)
    }
}

fn facts_of(network: &Network, isolation: Isolation, endpoint: &Endpoint) -> EndpointFacts {
    EndpointFacts {
        driver: network.driver,
        isolation,
        profile: network.acl_profile,
        acl_mode: endpoint.acl_mode,
        addresses: vec![endpoint.ip_address.addr],
        port_mappings: endpoint.port_mappings.clone(),
    }
}

/// [`check_rule`] of every rule, and no id twice.
fn check_all(facts: &EndpointFacts, rules: &[AclRule]) -> Result<(), PolicyError> {
    let mut seen = HashSet::with_capacity(rules.len());
    for rule in rules {
        check_rule(facts.driver, facts.isolation, rule.rule_type)?;
        if !seen.insert(&rule.id) {
            return Err(PolicyError::DuplicateRuleId {
                id: rule.id.clone(),
            });
        }
    }
    Ok(())
}

/// [`Policy::ordered_rules`] of a rule list (checked elsewhere).
pub fn ordered_rules(
    rules: &[AclRule],
    point: EnforcementPoint,
    direction: Direction,
) -> Vec<&AclRule> {
    // Sorted by keys read once, not through the rules at every comparison
    // (the keys are unique: the index is the last part).
    let mut v: Vec<((u16, u8, usize), &AclRule)> = rules
        .iter()
        .enumerate()
        .filter(|(_, r)| r.direction == direction && EnforcementPoint::of(r.rule_type) == point)
        .map(|(i, r)| (precedence(r, i), r))
        .collect();
    v.sort_unstable_by_key(|&(k, _)| k);
    v.into_iter().map(|(_, r)| r).collect()
}

/// The sort key of a rule: lower sorts first and wins.
pub fn precedence(rule: &AclRule, index: usize) -> (u16, u8, usize) {
    (rule.priority, u8::from(rule.action == Action::Allow), index)
}
