//! Reconcile: make the kernel match the store, after a crash, a restart or
//! a reboot.
//!
//! 1. Operations left in flight (intents) are finished: a delete whose record
//!    is still there is completed; a create is redone from its record.
//! 2. Missing kernel objects are recreated (namespaces, network devices,
//!    switch ports with their addresses and routes); a namespace or a
//!    switch port whose create was in flight is rebuilt from scratch, and so
//!    is a namespace pin that is a bare file, not a mounted namespace.
//! 3. Kernel objects carrying our prefixes that no record owns are removed
//!    (namespace pins with this engine's prefix, `bhp*`/`bhn*` host links).
//!    This is what clears the switch ports of endpoints deleted just before
//!    a crash, whose background removal never ran (retired: down, in the
//!    retired interface group, their records already gone). Unowned links
//!    go before missing ports are made, so such a port's veth side frees
//!    its name in its namespace first.
//! 4. Every table of ours is replaced atomically by the compiled one; in
//!    each owned namespace the firewall's pre-rename table (`inet bulkhead`,
//!    see `docs/design.md`) is destroyed in the same transaction.
//! 5. Only then do the ports made in 2. come up (fail closed: after a
//!    reboot no port passes a packet before its tables are committed). The
//!    ports of a namespace whose firewall could not be committed, or whose
//!    identity does not check out (`adopt.rs`), stay down, and the report
//!    says so.
//! 6. Every IPv4 vm endpoint's DHCP server runs on its TAP as it is now
//!    (`dhcp.rs`); servers of endpoints no longer stored stop.
//!
//! Adopted namespaces (a runtime's, see `namespace.rs`) are never created or
//! removed here. When the runtime has deleted one, its endpoints' switch
//! ports died with it: nothing is rebuilt or programmed there, and the
//! records stay (counted in `adopted_gone`) until the runtime's CNI DEL or
//! GC removes them, releasing addresses and published ports.

use std::collections::BTreeSet;

use bulkhead_dataplane::kernel::{NetnsId, PortSpec, TableChange};
use bulkhead_model::Isolation;
use bulkhead_store::{Kind, Op, Reader, StoreExt};
use serde::Serialize;

use crate::error::{EngineError, Result};
use crate::network::device_name;
use crate::records::{NamespaceRecord, NetworkRecord};
use crate::state::State;
use crate::tables::{firewall, replacements, switch_tables, Programmed};
use crate::{Engine, Inner, NETWORK_DEVICE_PREFIX, SWITCH_PORT_PREFIX};

/// What reconcile did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct ReconcileReport {
    pub intents_finished: usize,
    pub namespaces_created: usize,
    pub ports_created: usize,
    pub namespaces_removed: usize,
    pub links_removed: usize,
    /// Adopted namespaces whose network namespace no longer exists.
    pub adopted_gone: usize,
    pub errors: Vec<String>,
}

impl Engine {
    /// Loads the store and repairs the kernel from it (see the module doc).
    pub fn reconcile(&self) -> Result<ReconcileReport> {
        let mut inner = self.lock_raw();
        self.reconcile_counted(&mut inner)
    }

    /// [`Engine::reconcile_locked`], counted in the events ring's tally.
    pub(crate) fn reconcile_counted(&self, inner: &mut Inner) -> Result<ReconcileReport> {
        let result = self.reconcile_locked(inner);
        self.events
            .tally()
            .reconcile(result.as_ref().map_err(|_| ()));
        result
    }

    /// [`Engine::reconcile`] under the engine lock. Replaces the whole
    /// in-memory state, and clears the reconcile mark, only on success.
    pub(crate) fn reconcile_locked(&self, inner: &mut Inner) -> Result<ReconcileReport> {
        let mut report = ReconcileReport::default();
        // Background removals of this instance finish first: what they were
        // removing is not mistaken for leftovers (nor raced with).
        self.settle_locked(inner);
        let (networks, namespaces, endpoints, intents) = self.store.read(|t| {
            Ok((
                t.list::<NetworkRecord>()?,
                t.list::<NamespaceRecord>()?,
                crate::acl_rows::load_endpoints(t)?,
                t.list_intents()?,
            ))
        })?;
        let (mut endpoints, stale) = endpoints;
        // Endpoint records written with their rules inside (schema 1)
        // become record plus rule rows, all in one transaction.
        if !stale.is_empty() {
            self.store
                .transaction(|t| crate::acl_rows::migrate(t, &mut endpoints, &stale))?;
        }
        // 1. Finish deletes; remember creates to rebuild.
        let mut rebuild: BTreeSet<String> = BTreeSet::new();
        let mut deleted: BTreeSet<String> = BTreeSet::new();
        for intent in &intents {
            let is_delete = intent.op == Op::Delete;
            match (intent.object_kind, is_delete) {
                (Kind::Endpoints, true) => {
                    if let Some(e) = endpoints
                        .iter()
                        .find(|e| e.id.to_string() == intent.object_key)
                    {
                        let (key, net, ip) =
                            (e.id.to_string(), e.network.to_string(), e.ip_address.addr);
                        self.store.transaction(|t| {
                            crate::acl_rows::delete_endpoint(t, &key)?;
                            t.release(&net, ip).map(|_| ())
                        })?;
                    }
                    deleted.insert(intent.object_key.clone());
                }
                (Kind::Networks, true) => {
                    let key = intent.object_key.clone();
                    self.store.transaction(|t| {
                        t.delete::<NetworkRecord>(&key)?;
                        t.delete_pool(&key).map(|_| ())
                    })?;
                    deleted.insert(key);
                }
                (Kind::Namespaces, true) => {
                    let key = intent.object_key.clone();
                    self.store
                        .transaction(|t| t.delete::<NamespaceRecord>(&key).map(|_| ()))?;
                    deleted.insert(key);
                }
                _ => {
                    rebuild.insert(intent.object_key.clone());
                }
            }
            report.intents_finished += 1;
        }
        endpoints.retain(|e| !deleted.contains(&e.id.to_string()));
        let mut state = State::default();
        for n in networks
            .into_iter()
            .filter(|n| !deleted.contains(&n.0.id.to_string()))
        {
            state.insert_network(n.0);
        }
        let mut recorded: Vec<(bulkhead_model::Id, NetnsId)> = Vec::new();
        for n in namespaces
            .into_iter()
            .filter(|n| !deleted.contains(&n.namespace.id.to_string()))
        {
            let (id, adopted) = (n.namespace.id, n.adopted);
            if let Some(r) = n.netns_id.filter(|_| adopted) {
                recorded.push((id, r.into()));
            }
            state.insert_namespace(n.namespace);
            if adopted {
                state.adopted.insert(id);
            }
        }
        for e in endpoints {
            state.insert_endpoint(e);
        }
        // 2. and 3.: kernel objects.
        self.kernel.prepare_host().map_err(EngineError::kernel)?;
        self.reconcile_namespaces(&state, &mut rebuild, &mut report)?;
        self.load_identities(&mut state, &recorded, &mut report.errors);
        // Schema-1 adopted records get the identity found now, stored.
        let upgraded: Vec<NamespaceRecord> = state
            .adopted
            .iter()
            .filter(|id| !recorded.iter().any(|(r, _)| r == *id))
            .filter_map(|id| {
                let n = state.namespaces.get(id)?;
                Some(NamespaceRecord::of(n, Some(*state.netns_ids.get(id)?)))
            })
            .collect();
        if !upgraded.is_empty() {
            self.store.transaction(|t| {
                for r in &upgraded {
                    t.put(r)?;
                }
                Ok(())
            })?;
        }
        let made = self.reconcile_links(&state, &rebuild, &mut report)?;
        // 4. Tables, replaced atomically.
        let switch = switch_tables(&state)?;
        self.kernel
            .apply(None, &replacements(switch.all()))
            .map_err(EngineError::kernel)?;
        let mut programmed = Programmed {
            switch: Some(switch),
            ..Programmed::default()
        };
        let mut closed = BTreeSet::new();
        for ns in state.namespaces.values().filter(|n| {
            n.isolation == Isolation::Process
                && !state.adopted_gone(n.id, |p| self.kernel.is_netns(p))
        }) {
            let fw = firewall(&state, ns.id)?;
            // The firewall's table as an earlier version named it goes in
            // the same transaction (it is never the host's switch table:
            // the namespace's identity was checked, see `adopt.rs`).
            let mut changes = vec![destroy(bulkhead_policy::compile::LEGACY_FIREWALL_TABLE)];
            match &fw {
                Some(t) => changes.extend(replacements([t])),
                // Nothing to enforce: drop whatever table an earlier run left.
                None => changes.push(destroy(bulkhead_policy::compile::FIREWALL_TABLE)),
            }
            let applied = self.netns_handle(&state, ns).and_then(|h| {
                self.kernel
                    .apply(Some(h.path()), &changes)
                    .map_err(EngineError::kernel)
            });
            match applied {
                Ok(()) => {
                    if let Some(t) = fw {
                        // A repair may run beside the watcher: it watches
                        // this namespace from now on, not from its next sync.
                        if programmed.firewalls.insert(ns.id, t).is_none() {
                            self.poke_watcher();
                        }
                    }
                }
                Err(e) => {
                    closed.insert(ns.id);
                    report.errors.push(format!(
                        "namespace {}: {e}; its new ports stay down",
                        ns.name
                    ));
                }
            }
        }
        // 5. Ports come up once their tables are in.
        for (namespace, spec) in made {
            if closed.contains(&namespace) {
                continue;
            }
            if let Err(e) = self.kernel.enable_port(&spec) {
                report
                    .errors
                    .push(format!("port {}: {e}", spec.switch_port));
            }
        }
        // 6. DHCP for every vm endpoint, on its TAP as it is now.
        report
            .errors
            .extend(self.kernel.serve_dhcp_only(&crate::dhcp::leases(&state)));
        let ids: Vec<String> = intents.iter().map(|i| i.id.clone()).collect();
        self.store.transaction(|t| {
            for id in &ids {
                t.clear_intent(id)?;
            }
            Ok(())
        })?;
        inner.state = state;
        inner.programmed = programmed;
        // Every stored intent was just finished and cleared.
        inner.pending_intents.clear();
        self.needs_reconcile
            .store(false, std::sync::atomic::Ordering::Release);
        Ok(report)
    }

    fn reconcile_namespaces(
        &self,
        state: &State,
        rebuild: &mut BTreeSet<String>,
        report: &mut ReconcileReport,
    ) -> Result<()> {
        let prefix = &self.config.netns_prefix;
        let present: BTreeSet<String> = self
            .kernel
            .netns_names(prefix)
            .map_err(EngineError::kernel)?
            .into_iter()
            .collect();
        let mut wanted = BTreeSet::new();
        for ns in state
            .namespaces
            .values()
            .filter(|n| n.isolation == Isolation::Process)
        {
            if state.adopted.contains(&ns.id) {
                if state.adopted_gone(ns.id, |p| self.kernel.is_netns(p)) {
                    report.adopted_gone += 1;
                }
                continue;
            }
            let name = self.netns_name(&ns.name);
            // A pin whose create was in flight may be a bare file (the crash
            // came between making it and mounting on it) or a namespace
            // never finished (loopback down, conntrack not strict): made
            // again from scratch, like a port whose create was in flight.
            // So is a bare file whose create was not (one left by a crash
            // in an earlier reconcile's own create).
            let stale = present.contains(&name)
                && (rebuild.contains(&ns.id.to_string())
                    || !self
                        .kernel
                        .netns_pinned(&name)
                        .map_err(EngineError::kernel)?);
            if stale {
                self.kernel
                    .delete_netns(&name)
                    .map_err(EngineError::kernel)?;
            }
            if stale || !present.contains(&name) {
                self.kernel
                    .create_netns(&name)
                    .map_err(EngineError::kernel)?;
                report.namespaces_created += 1;
                // Its endpoints' veth peers died with the old namespace.
                rebuild.extend(
                    state
                        .endpoints_in_namespace(ns.id)
                        .map(|e| e.id.to_string()),
                );
            }
            wanted.insert(name);
        }
        for name in present.difference(&wanted) {
            match self.kernel.delete_netns(name) {
                Ok(()) => report.namespaces_removed += 1,
                Err(e) => report.errors.push(e.to_string()),
            }
        }
        Ok(())
    }

    fn reconcile_links(
        &self,
        state: &State,
        rebuild: &BTreeSet<String>,
        report: &mut ReconcileReport,
    ) -> Result<Vec<(bulkhead_model::Id, PortSpec)>> {
        let mut made = Vec::new();
        let mut present: BTreeSet<String> = BTreeSet::new();
        for prefix in [SWITCH_PORT_PREFIX, NETWORK_DEVICE_PREFIX] {
            present.extend(
                self.kernel
                    .link_names(prefix)
                    .map_err(EngineError::kernel)?,
            );
        }
        let mut wanted = BTreeSet::new();
        for n in state.networks.values() {
            self.create_network_kernel(n)?;
            wanted.insert(device_name(&n.id));
        }
        let mut missing = Vec::new();
        for e in state.endpoints.values() {
            if state.adopted_gone(e.namespace, |p| self.kernel.is_netns(p)) {
                continue; // its port died with the runtime's netns
            }
            let port = e.switch_port.to_string();
            if !present.contains(&port) || rebuild.contains(&e.id.to_string()) {
                missing.push(e);
            }
            wanted.insert(port);
        }
        // Unowned links first (a deleted endpoint's port whose removal a
        // crash interrupted may hold, in a namespace, the interface name a
        // missing port is about to take).
        for name in present.difference(&wanted) {
            match self.kernel.delete_link(name) {
                Ok(()) => report.links_removed += 1,
                Err(e) => report.errors.push(e.to_string()),
            }
        }
        for e in missing {
            let port = e.switch_port.to_string();
            if present.contains(&port) {
                let _ = self.kernel.delete_link(&port);
            }
            let (Some(network), Some(namespace)) = (
                state.networks.get(&e.network),
                state.namespaces.get(&e.namespace),
            ) else {
                continue;
            };
            match self.create_port(state, &e.endpoint, network, namespace, e.tap.as_ref()) {
                Ok(spec) => {
                    report.ports_created += 1;
                    made.push((namespace.id, spec));
                }
                Err(err) => report.errors.push(format!("endpoint {}: {err}", e.name)),
            }
        }
        Ok(made)
    }
}

/// Destroys table `inet NAME` if present (a no-op otherwise).
fn destroy(name: &str) -> TableChange<'static> {
    TableChange {
        family: bulkhead_policy::ir::Family::Inet,
        table: name.into(),
        current: None,
        replace: true,
        ops: vec![],
    }
}
