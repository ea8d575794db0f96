//! The policy crate's errors. Every message is one line and says what is
//! allowed instead, in the spec's words.

use bulkhead_model::{Driver, RuleId, RuleType};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The rule's enforcement point does not exist for this endpoint.
    #[error("rule_type {rule_type} is not available{vm} on a {driver} network; use rule_type {instead}", vm = if *.vm { " for vm endpoints" } else { "" })]
    RuleTypeNotAvailable {
        rule_type: RuleType,
        driver: Driver,
        vm: bool,
        instead: RuleType,
    },
    /// vm endpoints of nat and transparent networks have no programmable point.
    #[error("custom ACLs are not available for vm endpoints on a {driver} network: their default port ACLs cannot be reprogrammed")]
    NotProgrammable { driver: Driver },
    /// Two rules of one endpoint share an id.
    #[error("duplicate ACL id {id}: ids must be unique per endpoint")]
    DuplicateRuleId { id: RuleId },
    /// The ACL needs more disjoint regions than the classifier allows.
    #[error("ACL {acl} needs more than {limit} disjoint regions; split or simplify its rules (fewer overlapping address and port lists)")]
    TooManyRegions { acl: String, limit: usize },
}
