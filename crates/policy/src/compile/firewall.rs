//! The endpoint firewall: `table inet bulkhead_fw` inside one endpoint namespace
//! (which may hold several endpoints, one interface each).
//!
//! ```text
//! chain input  (filter, hook input,  priority 0, policy accept)
//!   ct state established,related accept
//!   ct state invalid drop
//!   iifname "lo" accept
//!   meta nfproto ipv6 meta l4proto icmpv6 icmpv6 type { nd } accept
//!   iifname vmap @endpoints_in          # "<ifname>" : jump ep_<ifname>_in
//! chain ep_<ifname>_in
//!   meta nfproto ipv4 meta l4proto { 6, 17, 132, 136 } <key> vmap @acl_<ifname>_in_v4_ported_0
//!   (… one rule per segment: _1, _2, …, at most 8)
//!   meta nfproto ipv4 meta l4proto != { 6, 17, 132, 136 } <key> vmap @acl_<ifname>_in_v4_portless_0
//!   (ipv6 likewise)
//!   <default rules, or the replace-mode drop>
//! ```
//!
//! `output` mirrors `input` with `oifname` and `ep_<ifname>_out`. Endpoints
//! whose firewall does not exist (vm isolation) are skipped. It enforces
//! the HCN rules of `RuleType: Host` ([`EnforcementPoint::HostFirewall`],
//! `host_firewall` in the API and drop logs: HCN's name, kept on the wire).

use std::collections::BTreeMap;

use bulkhead_model::Direction;

use super::{add_drop_chains, endpoint_rules, nd_matches, FIREWALL, FIREWALL_TABLE};
use crate::endpoint::EndpointPolicy;
use crate::error::PolicyError;
use crate::ir::{
    ifname_bytes, Action, Chain, ChainKind, CtStates, Family, Field, Hook, Key, Match, Rule, Set,
    SetKind, Table, Verdict,
};
use crate::matrix::EnforcementPoint;

/// An endpoint as its namespace sees it: the interface name inside the
/// namespace and its policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirewallEndpoint {
    pub ifname: String,
    pub policy: EndpointPolicy,
}

/// Compiles the endpoint firewall of one namespace.
pub fn compile_endpoint_firewall(endpoints: &[FirewallEndpoint]) -> Result<Table, PolicyError> {
    let mut table = Table::new(Family::Inet, FIREWALL_TABLE);
    let sorted: BTreeMap<&str, &EndpointPolicy> = endpoints
        .iter()
        .filter(|e| e.policy.has_point(EnforcementPoint::HostFirewall))
        .map(|e| (e.ifname.as_str(), &e.policy))
        .collect();
    for (direction, hook, dev_field, map) in [
        (Direction::In, Hook::Input, Field::IifName, "endpoints_in"),
        (
            Direction::Out,
            Hook::Output,
            Field::OifName,
            "endpoints_out",
        ),
    ] {
        let mut dispatch = Set::new(map, vec![dev_field], false, SetKind::VerdictMap);
        for (ifname, policy) in &sorted {
            let chain_name = format!("ep_{ifname}_{direction}");
            let mut chain = Chain::regular(chain_name.as_str());
            endpoint_rules(
                &mut table,
                &mut chain.rules,
                policy,
                FIREWALL,
                direction,
                ifname,
            )?;
            table.add_chain(chain);
            let k = ifname_bytes(ifname);
            dispatch
                .elements
                .insert(Key::point(k), Some(Verdict::Jump(chain_name.into())));
        }
        let mut base = Chain::base(hook.as_str(), hook, 0, ChainKind::Filter);
        let lo = match dev_field {
            Field::IifName => Match::IifName {
                name: "lo".into(),
                negate: false,
            },
            _ => Match::OifName {
                name: "lo".into(),
                negate: false,
            },
        };
        // Counted: `acl ls --stats` shows them as the endpoint's defaults
        // (shared by the namespace's endpoints, see docs/nftables.md).
        base.rules = vec![
            Rule::verdict(
                vec![Match::CtState(
                    CtStates::ESTABLISHED.union(CtStates::RELATED),
                )],
                Verdict::Accept,
            )
            .with_comment("stateful")
            .counted(),
            Rule::verdict(vec![Match::CtState(CtStates::INVALID)], Verdict::Drop)
                .with_comment("stateful")
                .counted(),
            Rule::verdict(vec![lo], Verdict::Accept),
            Rule::verdict(nd_matches(), Verdict::Accept)
                .with_comment(crate::profile::ALLOW_ND)
                .counted(),
        ];
        if !dispatch.elements.is_empty() {
            base.rules.push(Rule::new(
                vec![],
                Action::Vmap {
                    key: vec![dev_field],
                    map: map.into(),
                },
            ));
            table.add_set(dispatch);
        }
        table.add_chain(base);
    }
    add_drop_chains(&mut table, EnforcementPoint::HostFirewall);
    Ok(table)
}
