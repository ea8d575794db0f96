//! ACL operations on one endpoint. A change is programmed at the one
//! enforcement point it belongs to, atomically (one nf_tables transaction),
//! and connections the new policy would now refuse are cut: their conntrack
//! entries are removed, so they cannot live on as "established".

use bulkhead_dataplane::kernel::Flow;
use bulkhead_model::{AclRule, AclRuleSpec, Direction, Isolation, RuleType};
use bulkhead_policy::{evaluate, CtState, EndpointPolicy, EnforcementPoint, Packet, Verdict};
use bulkhead_store::{Kind, StoreExt};

use crate::error::{EngineError, Result};
use crate::records::EndpointRecord;
use crate::Engine;

fn next_rule_id(record: &EndpointRecord) -> String {
    (1..)
        .map(|i| format!("rule-{i}"))
        .find(|id| !record.acls.iter().any(|r| r.id.as_str() == id))
        .unwrap_or_default()
}

impl Engine {
    pub fn add_acl(&self, endpoint: &str, spec: AclRuleSpec) -> Result<AclRule> {
        let current = self.endpoint(endpoint)?;
        let rule = spec.validate(&next_rule_id(&current))?;
        if current.acls.iter().any(|r| r.id == rule.id) {
            return Err(EngineError::Conflict(format!(
                "id {}: endpoint {endpoint:?} already has a rule with that id",
                rule.id
            )));
        }
        self.change_acls(endpoint, rule.rule_type, |acls| acls.push(rule.clone()))?;
        Ok(rule)
    }

    pub fn remove_acl(&self, endpoint: &str, id: &str) -> Result<()> {
        let current = self.endpoint(endpoint)?;
        let rule = current
            .acls
            .iter()
            .find(|r| r.id.as_str() == id)
            .ok_or_else(|| EngineError::not_found("acl", format!("{endpoint}/{id}")))?;
        self.change_acls(endpoint, rule.rule_type, |acls| {
            acls.retain(|r| r.id.as_str() != id)
        })
    }

    fn change_acls(
        &self,
        endpoint: &str,
        rule_type: RuleType,
        change: impl FnOnce(&mut Vec<AclRule>),
    ) -> Result<()> {
        let mut inner = self.lock();
        let mut record = inner.state.endpoint(endpoint)?.clone();
        change(&mut record.acls);
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
        let policy =
            EndpointPolicy::from_endpoint(&network, namespace.isolation, &record.to_endpoint())?;
        let key = record.id.to_string();
        let previous = inner.state.endpoint(endpoint)?.clone();
        let intent = self.store.transaction(|t| {
            t.put(&record)?;
            t.put_intent("acl.change", Kind::Endpoints, &key, serde_json::Value::Null)
        })?;
        let mut next = inner.state.clone();
        next.insert_endpoint(record.clone());
        let inner = &mut *inner;
        let programmed = match rule_type {
            RuleType::Host => {
                self.program_namespace(&mut inner.programmed, &next, record.namespace)
            }
            RuleType::Switch => self.program_host(&mut inner.programmed, &next),
        };
        if let Err(e) = programmed {
            // The kernel refused the whole transaction: keep the old rules.
            let _ = self.store.transaction(|t| {
                t.put(&previous)?;
                t.clear_intent(&intent.id).map(|_| ())
            });
            return Err(e);
        }
        inner.state = next;
        let (point, netns) = match rule_type {
            RuleType::Host if namespace.isolation == Isolation::Process => (
                EnforcementPoint::HostFirewall,
                Some(namespace.netns_path.as_path()),
            ),
            _ => (EnforcementPoint::SwitchPort, None),
        };
        self.cut_refused_flows(&policy, point, netns, &record);
        self.clear_intent(&intent.id);
        Ok(())
    }

    /// Deletes the tracked connections of the endpoint that `policy` would
    /// refuse now if they were new.
    fn cut_refused_flows(
        &self,
        policy: &EndpointPolicy,
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
                evaluate(policy, point, &p).verdict == Verdict::Block
            })
            .collect();
        if !refused.is_empty() {
            if let Err(e) = self.kernel.delete_flows(netns, &refused) {
                tracing::warn!(endpoint = %record.name, error = %e, "could not cut connections");
            }
        }
    }

    pub fn acls(&self, endpoint: &str) -> Result<Vec<AclRule>> {
        Ok(self.endpoint(endpoint)?.acls)
    }
}
