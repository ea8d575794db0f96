//! ACL operations on one endpoint. A change is programmed at the one
//! enforcement point it belongs to, atomically (one nf_tables transaction),
//! and connections the new policy would now refuse are cut: their conntrack
//! entries are removed, so they cannot live on as "established".

use std::collections::HashSet;

use bulkhead_dataplane::kernel::Flow;
use bulkhead_model::{AclMode, AclRule, AclRuleSpec, Action, Direction, Isolation, RuleType};
use bulkhead_policy::reference::{evaluate, evaluate_ordered};
use bulkhead_policy::{check_rule, CtState, EnforcementPoint, Packet, Policy, Verdict};
use bulkhead_store::{Kind, Op, StoreExt};

use crate::acl_rows;
use crate::error::{EngineError, Result};
use crate::records::EndpointRecord;
use crate::Engine;

/// Up to this many connections are checked against the rules one by one
/// (a pass each); more share one precedence sort of the rules (a sort of
/// n rules costs about log2(n) passes).
const FEW_FLOWS: usize = 16;

/// The first `rule-<n>` id not taken (linear in the ACL size, once).
fn next_rule_id(acls: &[AclRule]) -> String {
    let taken: HashSet<&str> = acls.iter().map(|r| r.id.as_str()).collect();
    (1..)
        .map(|i| format!("rule-{i}"))
        .find(|id| !taken.contains(id.as_str()))
        .unwrap_or_default()
}

/// Validates `specs` as one ACL: ids given or `rule-<n>` in order, unique.
fn validate_all(endpoint: &str, specs: &[AclRuleSpec]) -> Result<Vec<AclRule>> {
    let explicit: HashSet<&str> = specs.iter().filter_map(|s| s.id.as_deref()).collect();
    let mut next = 1usize;
    let mut seen: HashSet<String> = HashSet::with_capacity(specs.len());
    let mut rules = Vec::with_capacity(specs.len());
    for spec in specs {
        let fallback = if spec.id.is_some() {
            String::new()
        } else {
            loop {
                let id = format!("rule-{next}");
                next += 1;
                if !explicit.contains(id.as_str()) {
                    break id;
                }
            }
        };
        let rule = spec.validate(&fallback)?;
        if !seen.insert(rule.id.to_string()) {
            return Err(EngineError::Conflict(format!(
                "id {}: the ACL for endpoint {endpoint:?} names it twice",
                rule.id
            )));
        }
        rules.push(rule);
    }
    Ok(rules)
}

/// The enforcement points an ACL change touches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Points {
    /// The endpoint firewall (HCN's `RuleType: Host`).
    firewall: bool,
    switch: bool,
    /// Whether the change's own rules can refuse a flow: a block added, an
    /// allow removed, or a whole ACL replaced.
    refusing: bool,
}

impl Points {
    fn of(rules: &[AclRule]) -> Self {
        let mut p = Self::default();
        for r in rules {
            p.add(r.rule_type);
        }
        p
    }

    fn one(rule_type: RuleType, refusing: bool) -> Self {
        let mut p = Self::default();
        p.add(rule_type);
        p.refusing = refusing;
        p
    }

    fn add(&mut self, rule_type: RuleType) {
        match rule_type {
            RuleType::Host => self.firewall = true,
            RuleType::Switch => self.switch = true,
        }
    }
}

/// What a change does to the endpoint's stored rule rows.
#[derive(Debug)]
enum Rows {
    /// One rule appended.
    Added(AclRule),
    /// The rule with this id removed, from this index.
    Removed(String, usize),
    /// The whole list replaced.
    All,
}

impl Rows {
    /// The index of the rule added or removed, in the list that has it;
    /// `len`: the new list's length.
    fn at(&self, len: usize) -> Option<usize> {
        match self {
            Rows::Added(_) => len.checked_sub(1),
            Rows::Removed(_, i) => Some(*i),
            Rows::All => None,
        }
    }
}

/// Whether a change can refuse a flow the old ACL allowed, so that tracked
/// connections must be checked: its own rules can (`points.refusing`: a
/// block added, an allow removed, a replace), or, in replace mode, a point
/// gained or lost its custom rules, which swaps its defaults between the
/// profile's and "block unmatched". Otherwise every packet's verdict is
/// the old one or allow: an added allow only allows what it matches, a
/// removed block only lets the next rule or the same defaults decide.
fn may_refuse(points: Points, replace_mode: bool, before: Points, after: Points) -> bool {
    points.refusing
        || (replace_mode && (before.firewall != after.firewall || before.switch != after.switch))
}

impl Engine {
    pub fn add_acl(&self, endpoint: &str, spec: AclRuleSpec) -> Result<AclRule> {
        let mut rule = None;
        self.change_acls(endpoint, |acls| {
            let fallback = match spec.id {
                Some(_) => String::new(),
                None => next_rule_id(acls),
            };
            let r = spec.validate(&fallback)?;
            if acls.iter().any(|o| o.id == r.id) {
                return Err(EngineError::Conflict(format!(
                    "id {}: endpoint {endpoint:?} already has a rule with that id",
                    r.id
                )));
            }
            acls.push(r.clone());
            let points = Points::one(r.rule_type, r.action == Action::Block);
            rule = Some(r.clone());
            Ok((points, Rows::Added(r)))
        })?;
        Ok(rule.unwrap_or_else(|| unreachable!("change_acls ran the change")))
    }

    pub fn remove_acl(&self, endpoint: &str, id: &str) -> Result<()> {
        self.change_acls(endpoint, |acls| {
            let i = acls
                .iter()
                .position(|r| r.id.as_str() == id)
                .ok_or_else(|| EngineError::not_found("acl", format!("{endpoint}/{id}")))?;
            let rule = acls.remove(i);
            let points = Points::one(rule.rule_type, rule.action == Action::Allow);
            Ok((points, Rows::Removed(rule.id.to_string(), i)))
        })
    }

    /// Replaces the endpoint's whole ACL with `specs`, atomically: every
    /// rule is validated first, the record is stored once, and each
    /// enforcement point involved (the old rules' and the new ones') is
    /// programmed in one nf_tables transaction. Returns the new rules.
    pub fn replace_acls(&self, endpoint: &str, specs: Vec<AclRuleSpec>) -> Result<Vec<AclRule>> {
        let rules = validate_all(endpoint, &specs)?;
        let mut out = Vec::new();
        self.change_acls(endpoint, |acls| {
            let mut points = Points::of(acls);
            let new = Points::of(&rules);
            points.firewall |= new.firewall;
            points.switch |= new.switch;
            points.refusing = true;
            out.clone_from(&rules);
            *acls = rules;
            Ok((points, Rows::All))
        })?;
        Ok(out)
    }

    /// Changes the ACL of `endpoint` by `change`, which returns the points
    /// it touched and the rule rows it changed: stored (one durable
    /// transaction writing only those rows, `acl_rows.rs`), then
    /// programmed; on a kernel refusal the stored rows are put back.
    fn change_acls(
        &self,
        endpoint: &str,
        change: impl FnOnce(&mut Vec<AclRule>) -> Result<(Points, Rows)>,
    ) -> Result<()> {
        let mut inner = self.lock();
        // One copy of the record (10k rules are ~2 % of a change per copy):
        // the state's own is taken back as `previous` when `record` goes in.
        let mut record = inner.state.endpoint(endpoint)?.clone();
        let before = Points::of(&record.acls);
        let (points, rows) = change(&mut record.acls)?;
        let refuses = may_refuse(
            points,
            record.acl_mode == AclMode::Replace,
            before,
            Points::of(&record.acls),
        );
        let network = inner
            .state
            .networks
            .get(&record.network)
            .cloned()
            .ok_or_else(|| EngineError::not_found("network", endpoint))?;
        let namespace = inner
            .state
            .namespaces
            .get(&record.namespace)
            .cloned()
            .ok_or_else(|| EngineError::not_found("namespace", endpoint))?;
        // The stored rules passed these checks when they were stored: only
        // what this change brings is checked (a 100k-rule ACL is not
        // walked for one rule), before anything is stored.
        match &rows {
            Rows::Added(rule) => check_rule(network.driver, namespace.isolation, rule.rule_type)?,
            Rows::Removed(..) => {}
            Rows::All => {
                Policy::from_endpoint(&network, namespace.isolation, &record.endpoint)?;
            }
        }
        let (id, key) = (record.id, record.id.to_string());
        let mut removed = None;
        let intent = self.transaction_clearing(&mut inner, |t| {
            match &rows {
                Rows::Added(rule) => acl_rows::put_rule(t, &id, rule)?,
                Rows::Removed(rule, _) => removed = acl_rows::delete_rule(t, &id, rule)?,
                Rows::All => acl_rows::put_rules(t, &id, &record.acls)?,
            }
            t.put_intent(Op::Change, Kind::Endpoints, &key, serde_json::Value::Null)
        })?;
        let inner = &mut *inner;
        // The record moves into the state (no second copy of its rules);
        // below it is read back from there.
        let ns_id = record.namespace;
        let previous = inner
            .state
            .insert_endpoint(record)
            .ok_or_else(|| EngineError::not_found("endpoint", endpoint))?;
        if !points.firewall {
            // The rule list changed (a switch rule) without the firewall's
            // kept lists following: their indices would be off.
            inner.programmed.kept.remove(&(ns_id, id));
        }
        let mut programmed = Ok(());
        {
            let record = inner.state.endpoint(endpoint)?;
            let policy = Policy::from_stored(&network, namespace.isolation, &record.endpoint);
            if points.firewall {
                programmed = self.program_namespace_change(
                    &mut inner.programmed,
                    &inner.state,
                    ns_id,
                    (&previous, record),
                    &policy,
                    rows.at(record.acls.len()),
                );
            }
            if points.switch && programmed.is_ok() {
                programmed = self.program_switch_endpoint(
                    &mut inner.programmed,
                    &inner.state,
                    Some(&previous),
                    Some(record),
                );
            }
        }
        if let Err(e) = programmed {
            // The kernel refused a transaction: keep the old rules (and put
            // back the point that did change, if any).
            inner.state.insert_endpoint(previous.clone());
            if points.firewall {
                let _ = self.program_namespace(&mut inner.programmed, &inner.state, ns_id);
            }
            let _ = self.store.transaction(|t| {
                match (&rows, &removed) {
                    (Rows::Added(rule), _) => {
                        acl_rows::delete_rule(t, &id, rule.id.as_str())?;
                    }
                    (Rows::Removed(_, _), Some(row)) => acl_rows::restore_rule(t, row)?,
                    (Rows::Removed(_, _), None) => {}
                    (Rows::All, _) => acl_rows::put_rules(t, &id, &previous.acls)?,
                }
                t.clear_intent(&intent.id).map(|_| ())
            });
            return Err(e);
        }
        let record = inner.state.endpoint(endpoint)?;
        let policy = Policy::from_stored(&network, namespace.isolation, &record.endpoint);
        // Listing the tracked connections walks the kernel's whole
        // conntrack table: only when the change can refuse one.
        if points.firewall && refuses {
            if namespace.isolation == Isolation::Process {
                // Through the namespace's checked open file (`adopt.rs`).
                match self.netns_handle(&inner.state, &namespace) {
                    Ok(h) => self.cut_refused_flows(
                        &policy,
                        EnforcementPoint::HostFirewall,
                        Some(h.path()),
                        record,
                    ),
                    Err(e) => {
                        tracing::warn!(endpoint = %record.name, error = %e, "could not cut connections")
                    }
                }
            } else {
                self.cut_refused_flows(&policy, EnforcementPoint::SwitchPort, None, record);
            }
        }
        if points.switch && refuses {
            self.cut_refused_flows(&policy, EnforcementPoint::SwitchPort, None, record);
        }
        inner.pending_intents.push(intent.id);
        // The old record holds the whole old ACL: free it off this path.
        crate::reclaim::later(previous);
        Ok(())
    }

    /// Deletes the tracked connections of the endpoint that `policy` would
    /// refuse now if they were new.
    fn cut_refused_flows(
        &self,
        policy: &Policy<'_>,
        point: EnforcementPoint,
        netns: Option<&std::path::Path>,
        record: &EndpointRecord,
    ) {
        let addr = record.ip_address.addr;
        let flows = match self.kernel.flows(netns, addr) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(endpoint = %record.name, error = %e, "could not list connections");
                return;
            }
        };
        if flows.is_empty() {
            return;
        }
        // Each direction's rules in precedence order once, not one pass
        // over the whole list per connection (thousands of them at 10k
        // rules); a few connections are each checked in one pass instead
        // (sorting 100k rules twice was 9 % of a one-rule change).
        let ordered = (flows.len() > FEW_FLOWS)
            .then(|| [Direction::In, Direction::Out].map(|d| policy.ordered_rules(point, d)));
        let refused: Vec<Flow> = flows
            .into_iter()
            .filter(|f| {
                let direction = if f.src == addr {
                    Direction::Out
                } else {
                    Direction::In
                };
                let mut p = Packet::new(direction, f.src, f.dst, f.protocol);
                if let (Some(s), Some(d)) = (f.src_port, f.dst_port) {
                    p = p.with_ports(s, d);
                }
                p.ct = CtState::New;
                let decision = match &ordered {
                    Some(o) => {
                        let rules = &o[usize::from(direction == Direction::Out)];
                        evaluate_ordered(policy, point, &p, rules)
                    }
                    None => evaluate(policy, point, &p),
                };
                decision.verdict == Verdict::Block
            })
            .collect();
        if !refused.is_empty() {
            if let Err(e) = self.kernel.delete_flows(netns, &refused) {
                tracing::warn!(endpoint = %record.name, error = %e, "could not cut connections");
            }
        }
    }

    pub fn acls(&self, endpoint: &str) -> Result<Vec<AclRule>> {
        Ok(self.endpoint(endpoint)?.endpoint.acls)
    }
}

#[cfg(test)]
#[path = "acl_tests.rs"]
mod tests;
