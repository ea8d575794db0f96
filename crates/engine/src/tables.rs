//! Desired nf_tables state, compiled from the engine's state, and its
//! programming as diffs against what was programmed last.
//!
//! The host namespace holds two tables: `inet bulkhead` (switch ports: the
//! policy crate's compile) and `inet bulkhead_net` (driver plumbing:
//! [`crate::nat`]); both change in one transaction. Each process namespace
//! with endpoints holds its host firewall, `inet bulkhead`. `Programmed`
//! remembers what the kernel was last given; it is empty at start, and
//! reconcile programs everything from scratch, replacing whatever tables of
//! ours the kernel holds.

use std::collections::BTreeMap;

use bulkhead_dataplane::kernel::TableChange;
use bulkhead_model::{Id, Isolation};
use bulkhead_policy::diff::{create, diff};
use bulkhead_policy::ir::Table;
use bulkhead_policy::{
    compile_host_firewall, compile_switch, EndpointPolicy, HostEndpoint, SwitchPortPolicy,
};

use crate::error::{EngineError, Result};
use crate::state::State;
use crate::Engine;

#[derive(Debug, Default)]
pub(crate) struct Programmed {
    pub host: Vec<Table>,
    pub firewalls: BTreeMap<Id, Table>,
}

/// The policy of each endpoint in `state` that `keep` selects.
fn policies<'a>(
    state: &'a State,
    keep: impl Fn(&crate::records::EndpointRecord) -> bool + 'a,
) -> impl Iterator<Item = Result<(&'a crate::records::EndpointRecord, EndpointPolicy)>> + 'a {
    state
        .endpoints
        .values()
        .filter(move |e| keep(e))
        .map(move |e| {
            let network = state
                .networks
                .get(&e.network)
                .ok_or_else(|| EngineError::not_found("network", e.network.to_string()))?;
            let namespace = state
                .namespaces
                .get(&e.namespace)
                .ok_or_else(|| EngineError::not_found("namespace", e.namespace.to_string()))?;
            let policy =
                EndpointPolicy::from_endpoint(network, namespace.isolation, &e.to_endpoint())?;
            Ok((e, policy))
        })
}

/// The host namespace's tables for `state`.
pub(crate) fn host_tables(state: &State) -> Result<Vec<Table>> {
    let ports = policies(state, |_| true)
        .map(|r| {
            r.map(|(e, policy)| SwitchPortPolicy {
                port: e.switch_port.to_string(),
                mac: e.mac_address,
                policy,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let switch = compile_switch(&ports)?;
    let networks: Vec<_> = state.networks.values().collect();
    let endpoints = state.endpoint_models();
    let endpoints: Vec<_> = endpoints.iter().collect();
    Ok(vec![switch, crate::nat::build(&networks, &endpoints)])
}

/// The host firewall of namespace `id` for `state`; `None` when it has no
/// process endpoints.
pub(crate) fn firewall(state: &State, id: Id) -> Result<Option<Table>> {
    let Some(ns) = state.namespaces.get(&id) else {
        return Ok(None);
    };
    if ns.isolation != Isolation::Process {
        return Ok(None);
    }
    let endpoints = policies(state, move |e| e.namespace == id)
        .map(|r| {
            r.map(|(e, policy)| HostEndpoint {
                ifname: e.ifname.to_string(),
                policy,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if endpoints.is_empty() {
        return Ok(None);
    }
    Ok(Some(compile_host_firewall(&endpoints)?))
}

/// The changes that turn the `old` tables into the `new` ones (tables are
/// told apart by family and name).
pub(crate) fn changes<'a>(old: &'a [Table], new: &[Table]) -> Vec<TableChange<'a>> {
    let find = |list: &[Table], t: &Table| {
        list.iter()
            .position(|o| o.family == t.family && o.name == t.name)
    };
    let mut out = Vec::new();
    for t in new {
        let current = find(old, t).map(|i| &old[i]);
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
    for t in old.iter().filter(|t| find(new, t).is_none()) {
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
pub(crate) fn replacements(tables: &[Table]) -> Vec<TableChange<'static>> {
    tables
        .iter()
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
    /// Brings the host's tables to what `next` needs, in one transaction.
    pub(crate) fn program_host(&self, programmed: &mut Programmed, next: &State) -> Result<()> {
        let tables = host_tables(next)?;
        let ops = changes(&programmed.host, &tables);
        if !ops.is_empty() {
            self.kernel.apply(None, &ops).map_err(EngineError::kernel)?;
        }
        programmed.host = tables;
        Ok(())
    }

    /// Brings the host firewall of namespace `id` to what `next` needs.
    pub(crate) fn program_namespace(
        &self,
        programmed: &mut Programmed,
        next: &State,
        id: Id,
    ) -> Result<()> {
        let Some(ns) = next.namespaces.get(&id) else {
            return Ok(());
        };
        let new = firewall(next, id)?;
        let old = programmed.firewalls.get(&id);
        let ops = changes(
            old.map(std::slice::from_ref).unwrap_or_default(),
            new.as_slice(),
        );
        if !ops.is_empty() {
            self.kernel
                .apply(Some(&ns.netns_path), &ops)
                .map_err(EngineError::kernel)?;
        }
        match new {
            Some(t) => programmed.firewalls.insert(id, t),
            None => programmed.firewalls.remove(&id),
        };
        Ok(())
    }
}
