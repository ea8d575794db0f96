//! Desired nf_tables state, compiled from the engine's state, and its
//! programming as diffs against what was programmed last.
//!
//! The virtual switch's tables live in the host namespace, three of them
//! ([`SwitchTables`]): `inet bulkhead` (switch ports: [`compile_switch`]),
//! `inet bulkhead_net` (driver plumbing: [`nat::build`]) and `bridge
//! bulkhead_l2` (anti-spoofing on bridge ports: [`antispoof::build`]); all
//! change in one transaction. Each process namespace with endpoints holds
//! its endpoint firewall, `inet bulkhead_fw` (its own name: nothing done in
//! an endpoint namespace can name a switch table). The policy crate builds
//! every table from plain inputs; this module only gathers those inputs
//! from the state and applies the results. `Programmed` remembers what the
//! kernel was last given; it is empty at start, and reconcile programs
//! everything from scratch, replacing whatever tables of ours the kernel
//! holds.
//!
//! Endpoint operations do not recompile the switch tables: each is a fixed
//! skeleton plus one disjoint fragment per endpoint (its elements in the
//! shared sets, its own chains and ACL maps), so the change for one
//! endpoint is `diff(its old fragment, its new fragment)`, applied to the
//! programmed tables in place. In debug builds every such change is checked
//! against a full recompile.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use bulkhead_dataplane::kernel::TableChange;
use bulkhead_model::{Id, Isolation, Network};
use bulkhead_policy::compile::incremental::{firewall_rule_change_kept, RuleLists};
use bulkhead_policy::compile::{antispoof, nat};
use bulkhead_policy::diff::{create, diff, Op};
use bulkhead_policy::ir::Table;
use bulkhead_policy::{
    compile_endpoint_firewall, compile_switch, EndpointPolicy, FirewallEndpoint, Policy,
    SwitchPortPolicy,
};

use crate::error::{EngineError, Result};
use crate::records::EndpointRecord;
use crate::state::State;
use crate::Engine;

#[derive(Debug, Default)]
pub(crate) struct Programmed {
    /// `None` until the switch tables were first programmed.
    pub switch: Option<SwitchTables>,
    pub firewalls: BTreeMap<Id, Table>,
    /// Per (namespace, endpoint): the endpoint's host-firewall rule lists
    /// as the last one-rule change left them, so the next one does not
    /// rebuild them ([`RuleLists`]); dropped whenever the namespace's
    /// firewall is programmed in full.
    pub kept: BTreeMap<(Id, Id), RuleLists>,
}

/// The virtual switch's tables in the host namespace, by role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SwitchTables {
    /// `inet bulkhead`: switch-port ACLs and guards.
    pub switch: Table,
    /// `inet bulkhead_net`: nat plumbing, published ports, isolation.
    pub nat: Table,
    /// `bridge bulkhead_l2`: anti-spoofing on bridge ports.
    pub antispoof: Table,
}

impl SwitchTables {
    pub fn all(&self) -> [&Table; 3] {
        [&self.switch, &self.nat, &self.antispoof]
    }

    fn all_mut(&mut self) -> [&mut Table; 3] {
        [&mut self.switch, &mut self.nat, &mut self.antispoof]
    }
}

/// The network of endpoint `e` in `state`.
fn network_of<'a>(state: &'a State, e: &EndpointRecord) -> Result<&'a Network> {
    state
        .networks
        .get(&e.network)
        .ok_or_else(|| EngineError::not_found("network", e.network.to_string()))
}

/// The policy of endpoint `e` in `state`.
pub(crate) fn policy_of(state: &State, e: &EndpointRecord) -> Result<EndpointPolicy> {
    let network = network_of(state, e)?;
    let namespace = state
        .namespaces
        .get(&e.namespace)
        .ok_or_else(|| EngineError::not_found("namespace", e.namespace.to_string()))?;
    // Compiled tables keep their policies: owned.
    Ok(Policy::from_endpoint(network, namespace.isolation, &e.endpoint)?.into_owned())
}

/// The policy of each endpoint of `endpoints`.
fn policies<'a>(
    state: &'a State,
    endpoints: impl Iterator<Item = &'a EndpointRecord> + 'a,
) -> impl Iterator<Item = Result<(&'a EndpointRecord, EndpointPolicy)>> + 'a {
    endpoints.map(move |e| Ok((e, policy_of(state, e)?)))
}

fn switch_port(e: &EndpointRecord, policy: EndpointPolicy) -> SwitchPortPolicy {
    SwitchPortPolicy {
        port: e.switch_port.to_string(),
        mac: e.mac_address,
        policy,
    }
}

/// The switch tables' skeleton: what they hold with no endpoint.
fn skeleton() -> &'static SwitchTables {
    static SKELETON: OnceLock<SwitchTables> = OnceLock::new();
    SKELETON.get_or_init(|| SwitchTables {
        switch: compile_switch(&[]).unwrap_or_else(|e| unreachable!("empty switch compiles: {e}")),
        nat: nat::build(&[], &[]),
        antispoof: antispoof::build(&[]),
    })
}

/// One endpoint's share of the switch tables, as the skeleton plus that
/// endpoint alone (`None`: the skeleton, i.e. the endpoint is absent).
fn fragment(state: &State, e: Option<&EndpointRecord>) -> Result<SwitchTables> {
    let Some(e) = e else {
        return Ok(skeleton().clone());
    };
    let policy = policy_of(state, e)?;
    let network = network_of(state, e)?;
    let endpoint = [(&e.endpoint, network)];
    Ok(SwitchTables {
        switch: compile_switch(&[switch_port(e, policy)])?,
        nat: nat::build(&[], &endpoint),
        antispoof: antispoof::build(&endpoint),
    })
}

/// The switch tables for `state`.
pub(crate) fn switch_tables(state: &State) -> Result<SwitchTables> {
    let ports = policies(state, state.endpoints.values())
        .map(|r| r.map(|(e, policy)| switch_port(e, policy)))
        .collect::<Result<Vec<_>>>()?;
    let switch = compile_switch(&ports)?;
    let networks: Vec<_> = state.networks.values().collect();
    let models = state.endpoint_models();
    let endpoints = state
        .endpoints
        .values()
        .zip(&models)
        .map(|(e, model)| Ok((model, network_of(state, e)?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(SwitchTables {
        switch,
        nat: nat::build(&networks, &endpoints),
        antispoof: antispoof::build(&endpoints),
    })
}

/// The endpoint firewall of namespace `id` for `state`; `None` when it has no
/// process endpoints.
pub(crate) fn firewall(state: &State, id: Id) -> Result<Option<Table>> {
    let Some(ns) = state.namespaces.get(&id) else {
        return Ok(None);
    };
    if ns.isolation != Isolation::Process {
        return Ok(None);
    }
    let endpoints = policies(state, state.endpoints_in_namespace(id))
        .map(|r| {
            r.map(|(e, policy)| FirewallEndpoint {
                ifname: e.ifname.to_string(),
                policy,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if endpoints.is_empty() {
        return Ok(None);
    }
    Ok(Some(compile_endpoint_firewall(&endpoints)?))
}

/// The changes that turn the `old` tables into the `new` ones (tables are
/// told apart by family and name).
pub(crate) fn changes<'a>(old: &[&'a Table], new: &[&Table]) -> Vec<TableChange<'a>> {
    let find = |list: &[&Table], t: &Table| {
        list.iter()
            .position(|o| o.family == t.family && o.name == t.name)
    };
    let mut out = Vec::new();
    for &t in new {
        let current = find(old, t).map(|i| old[i]);
        let ops = match current {
            Some(c) => diff(c, t),
            None => create(t),
        };
        if !ops.is_empty() {
            out.push(TableChange {
                family: t.family,
                table: t.name.clone(),
                current,
                replace: false,
                ops,
            });
        }
    }
    for &t in old.iter().filter(|t| find(new, t).is_none()) {
        let ops = vec![bulkhead_policy::diff::Op::DeleteTable {
            family: t.family,
            name: t.name.clone(),
        }];
        out.push(TableChange {
            family: t.family,
            table: t.name.clone(),
            current: Some(t),
            replace: false,
            ops,
        });
    }
    out
}

/// Changes that replace each of `tables` wholesale (reconcile).
pub(crate) fn replacements<'t>(
    tables: impl IntoIterator<Item = &'t Table>,
) -> Vec<TableChange<'static>> {
    tables
        .into_iter()
        .map(|t| TableChange {
            family: t.family,
            table: t.name.clone(),
            current: None,
            replace: true,
            ops: create(t),
        })
        .collect()
}

impl Engine {
    /// Brings the switch tables to what `next` needs, in one transaction.
    pub(crate) fn program_switch(&self, programmed: &mut Programmed, next: &State) -> Result<()> {
        let tables = switch_tables(next)?;
        let old: Vec<&Table> = programmed.switch.iter().flat_map(|t| t.all()).collect();
        let ops = changes(&old, &tables.all());
        if !ops.is_empty() {
            self.kernel.apply(None, &ops).map_err(EngineError::kernel)?;
        }
        programmed.switch = Some(tables);
        Ok(())
    }

    /// Changes the switch tables for one endpoint going from `old` to `new`
    /// (`None`: absent), in one transaction, at a cost that depends on that
    /// endpoint alone. `state` must already hold the new endpoint (or lack
    /// the removed one); its network and namespace must be in it.
    pub(crate) fn program_switch_endpoint(
        &self,
        programmed: &mut Programmed,
        state: &State,
        old: Option<&EndpointRecord>,
        new: Option<&EndpointRecord>,
    ) -> Result<()> {
        let Some(current) = programmed.switch.as_mut() else {
            return self.program_switch(programmed, state);
        };
        let before = fragment(state, old)?;
        let after = fragment(state, new)?;
        let ops: Vec<Vec<Op>> = before
            .all()
            .iter()
            .zip(after.all())
            .map(|(b, a)| diff(b, a))
            .collect();
        let changes: Vec<TableChange<'_>> = current
            .all()
            .into_iter()
            .zip(&ops)
            .filter(|(_, ops)| !ops.is_empty())
            .map(|(t, ops)| TableChange {
                family: t.family,
                table: t.name.clone(),
                current: Some(t),
                replace: false,
                ops: ops.clone(),
            })
            .collect();
        if !changes.is_empty() {
            self.kernel
                .apply(None, &changes)
                .map_err(EngineError::kernel)?;
        }
        for (t, ops) in current.all_mut().into_iter().zip(&ops) {
            // The kernel accepted these ops, so they apply; if the model of
            // the kernel ever disagrees, the next reconcile replaces it.
            if let Err(e) = bulkhead_policy::diff::apply_in_place(t, ops) {
                tracing::error!(table = %t.name, error = %e, "programmed table out of step");
            }
        }
        #[cfg(debug_assertions)]
        {
            let full = switch_tables(state)?;
            debug_assert!(
                programmed.switch.as_ref() == Some(&full),
                "incremental switch tables differ from a full recompile"
            );
        }
        Ok(())
    }

    /// Brings the endpoint firewall of namespace `id` to what `next` needs
    /// after endpoint `old` became `new` (same endpoint, its ACL changed;
    /// `policy` is `new`'s; `at`: the index of the one rule added or
    /// removed, when the caller knows the change is that):
    /// when that is one rule added or removed, only the ops of that rule
    /// are computed and sent ([`firewall_rule_change_kept`], from the
    /// endpoint's kept rule lists), at a cost that
    /// depends on the regions the rule covers, not on the ACL's size;
    /// otherwise the table is compiled and diffed in full. In debug builds
    /// the result is checked against a full compile.
    pub(crate) fn program_namespace_change(
        &self,
        programmed: &mut Programmed,
        next: &State,
        id: Id,
        (old, new): (&EndpointRecord, &EndpointRecord),
        policy: &Policy<'_>,
        at: Option<usize>,
    ) -> Result<()> {
        let Some(ns) = next.namespaces.get(&id) else {
            return Ok(());
        };
        let Programmed {
            firewalls, kept, ..
        } = programmed;
        let fast = match firewalls.get(&id) {
            Some(table) if ns.isolation == Isolation::Process => {
                // Only the ACL changed (`acl.rs::change_acls`): the old
                // policy is `policy`'s facts with the old rules.
                let lists = kept.entry((id, new.id)).or_default();
                firewall_rule_change_kept(table, new.ifname.as_str(), &old.acls, policy, lists, at)?
            }
            _ => None,
        };
        let Some(ops) = fast else {
            return self.program_namespace(programmed, next, id);
        };
        if next.adopted_gone(id, |p| self.kernel.is_netns(p)) {
            return self.program_namespace(programmed, next, id);
        }
        let Some(table) = programmed.firewalls.get_mut(&id) else {
            return Ok(());
        };
        if !ops.is_empty() {
            // Through the namespace's checked open file (`adopt.rs`).
            let handle = self.netns_handle(next, ns)?;
            let change = TableChange {
                family: table.family,
                table: table.name.clone(),
                current: Some(table),
                replace: false,
                ops,
            };
            self.kernel
                .apply(Some(handle.path()), std::slice::from_ref(&change))
                .map_err(EngineError::kernel)?;
            // The kernel accepted these ops, so they apply; if the model of
            // the kernel ever disagrees, the next reconcile replaces it.
            let ops = change.ops;
            if let Err(e) = bulkhead_policy::diff::apply_in_place(table, &ops) {
                tracing::error!(table = %table.name, error = %e, "programmed table out of step");
            }
        }
        #[cfg(debug_assertions)]
        {
            let full = firewall(next, id)?;
            debug_assert!(
                programmed.firewalls.get(&id) == full.as_ref(),
                "incremental endpoint firewall differs from a full compile"
            );
        }
        Ok(())
    }

    /// Brings the endpoint firewall of namespace `id` to what `next` needs.
    pub(crate) fn program_namespace(
        &self,
        programmed: &mut Programmed,
        next: &State,
        id: Id,
    ) -> Result<()> {
        // Whatever the full compile changes, the kept lists do not follow.
        programmed.kept.retain(|(ns, _), _| *ns != id);
        let Some(ns) = next.namespaces.get(&id) else {
            return Ok(());
        };
        if next.adopted_gone(id, |p| self.kernel.is_netns(p)) {
            // The runtime deleted the netns, and our table with it.
            programmed.firewalls.remove(&id);
            return Ok(());
        }
        let new = firewall(next, id)?;
        let old = programmed.firewalls.get(&id);
        let ops = changes(&Vec::from_iter(old), &Vec::from_iter(new.as_ref()));
        if !ops.is_empty() {
            // Through the namespace's checked open file (`adopt.rs`).
            let handle = self.netns_handle(next, ns)?;
            self.kernel
                .apply(Some(handle.path()), &ops)
                .map_err(EngineError::kernel)?;
        }
        // The applied ops own copies of every chain, rule and element they
        // add: freeing them is 2–3 % of a replace at 10k and 100k rules.
        crate::reclaim::later(ops.into_iter().map(|c| c.ops).collect::<Vec<_>>());
        let old = match new {
            Some(t) => programmed.firewalls.insert(id, t),
            None => programmed.firewalls.remove(&id),
        };
        if old.is_none() && programmed.firewalls.contains_key(&id) {
            // A namespace with a firewall now: the watcher logs its drops
            // and guards it from now on, not from its next sync.
            self.poke_watcher();
        }
        // Freeing a 10k-rule table is tens of milliseconds of allocator work.
        crate::reclaim::later(old);
        Ok(())
    }
}
