//! The enforcement-point matrix (spec §3, the seeds' table): which points
//! exist for an endpoint, by network driver and isolation.
//!
//! | driver | process | vm |
//! |---|---|---|
//! | nat, transparent | host firewall | none programmable |
//! | l2bridge, l2tunnel, overlay | both | switch port |
//!
//! [`check_rule`] is the only gate a custom rule passes; its errors quote the
//! table's cell.

use bulkhead_model::{Driver, Isolation, RuleType};
use serde::Serialize;

use crate::error::PolicyError;

/// Where a rule is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EnforcementPoint {
    /// nftables inside the endpoint's namespace (HCN `Host`).
    HostFirewall,
    /// Rules in the host namespace on the endpoint's switch port (HCN `Switch`).
    SwitchPort,
}

impl EnforcementPoint {
    pub fn as_str(self) -> &'static str {
        match self {
            EnforcementPoint::HostFirewall => "host firewall",
            EnforcementPoint::SwitchPort => "switch port",
        }
    }

    /// The point a rule of this type is programmed at.
    pub fn of(rule_type: RuleType) -> Self {
        match rule_type {
            RuleType::Host => EnforcementPoint::HostFirewall,
            RuleType::Switch => EnforcementPoint::SwitchPort,
        }
    }
}

const HOST: &[EnforcementPoint] = &[EnforcementPoint::HostFirewall];
const BOTH: &[EnforcementPoint] = &[EnforcementPoint::HostFirewall, EnforcementPoint::SwitchPort];
const SWITCH: &[EnforcementPoint] = &[EnforcementPoint::SwitchPort];

/// The programmable enforcement points, host firewall first.
pub fn enforcement_points(driver: Driver, isolation: Isolation) -> &'static [EnforcementPoint] {
    let switched = !matches!(driver, Driver::Nat | Driver::Transparent);
    match (isolation, switched) {
        (Isolation::Process, false) => HOST,
        (Isolation::Process, true) => BOTH,
        (Isolation::Vm, false) => &[],
        (Isolation::Vm, true) => SWITCH,
    }
}

/// Whether `point` exists for the endpoint.
pub fn has_point(driver: Driver, isolation: Isolation, point: EnforcementPoint) -> bool {
    enforcement_points(driver, isolation).contains(&point)
}

/// Accepts a custom rule of `rule_type` on an endpoint, or says why not.
pub fn check_rule(
    driver: Driver,
    isolation: Isolation,
    rule_type: RuleType,
) -> Result<(), PolicyError> {
    let points = enforcement_points(driver, isolation);
    if points.is_empty() {
        return Err(PolicyError::NotProgrammable { driver });
    }
    if points.contains(&EnforcementPoint::of(rule_type)) {
        return Ok(());
    }
    let instead = match rule_type {
        RuleType::Host => RuleType::Switch,
        RuleType::Switch => RuleType::Host,
    };
    Err(PolicyError::RuleTypeNotAvailable {
        rule_type,
        driver,
        vm: isolation == Isolation::Vm,
        instead,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(d: Driver, i: Isolation, r: RuleType) -> String {
        check_rule(d, i, r).unwrap_err().to_string()
    }

    #[test]
    fn the_seeds_table() {
        use Driver::*;
        for d in [Nat, Transparent] {
            assert_eq!(enforcement_points(d, Isolation::Process), HOST);
            assert!(enforcement_points(d, Isolation::Vm).is_empty());
        }
        for d in [L2Bridge, L2Tunnel, Overlay] {
            assert_eq!(enforcement_points(d, Isolation::Process), BOTH);
            assert_eq!(enforcement_points(d, Isolation::Vm), SWITCH);
            assert!(check_rule(d, Isolation::Process, RuleType::Host).is_ok());
            assert!(check_rule(d, Isolation::Process, RuleType::Switch).is_ok());
            assert!(check_rule(d, Isolation::Vm, RuleType::Switch).is_ok());
        }
    }

    #[test]
    fn messages_quote_the_cell() {
        assert_eq!(
            msg(Driver::Nat, Isolation::Process, RuleType::Switch),
            "rule_type switch is not available on a nat network; use rule_type host"
        );
        assert_eq!(
            msg(Driver::Transparent, Isolation::Process, RuleType::Switch),
            "rule_type switch is not available on a transparent network; use rule_type host"
        );
        assert_eq!(
            msg(Driver::Nat, Isolation::Vm, RuleType::Host),
            "custom ACLs are not available for vm endpoints on a nat network: their default port ACLs cannot be reprogrammed"
        );
        assert_eq!(
            msg(Driver::Transparent, Isolation::Vm, RuleType::Switch),
            "custom ACLs are not available for vm endpoints on a transparent network: their default port ACLs cannot be reprogrammed"
        );
        assert_eq!(
            msg(Driver::L2Bridge, Isolation::Vm, RuleType::Host),
            "rule_type host is not available for vm endpoints on a l2bridge network; use rule_type switch"
        );
        assert!(!msg(Driver::Overlay, Isolation::Vm, RuleType::Host).contains('\n'));
    }
}
