//! A recording fake of [`Kernel`] for orchestration tests: it keeps the
//! namespaces and links it was asked to make, records every call, and can be
//! told to fail a named step, so undo paths can be tested without root.
//!
//! Like the kernel, it refuses a veth whose endpoint side would take a name
//! already used in that namespace, and a port removal queued with
//! [`Kernel::remove_port_later`] only happens when the queue runs: here, at
//! [`Kernel::settle`] (the link and its endpoint side stay until then). A
//! retired port stays listed too, as it does in the kernel.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::kernel::{
    Flow, Kernel, KernelError, PortKind, PortSpec, RemoteEndpoint, Result, SwitchKind, SwitchSpec,
    TableChange,
};

#[derive(Debug, Default)]
struct World {
    netns: BTreeSet<String>,
    links: BTreeSet<String>,
    /// Endpoint sides of veth ports: host link -> (netns path, ifname).
    peers: BTreeMap<String, (PathBuf, String)>,
    /// Ports taken out of service by `retire_port`.
    retired: BTreeSet<String>,
    /// Removals queued by `remove_port_later`, run by `settle`.
    queued: Vec<String>,
    calls: Vec<String>,
    applied: Vec<(Option<PathBuf>, usize)>,
    fail: Option<String>,
}

/// The fake. Cheap to create; share it through `Arc`.
#[derive(Debug, Default)]
pub struct FakeKernel {
    world: Mutex<World>,
}

impl FakeKernel {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next call whose name starts with `step` fail (once).
    pub fn fail_next(&self, step: &str) {
        self.world().fail = Some(step.to_owned());
    }

    /// Every call so far, as `name arg`.
    pub fn calls(&self) -> Vec<String> {
        self.world().calls.clone()
    }

    pub fn netns(&self) -> BTreeSet<String> {
        self.world().netns.clone()
    }

    pub fn links(&self) -> BTreeSet<String> {
        self.world().links.clone()
    }

    /// Ports retired (out of service) and not yet removed.
    pub fn retired(&self) -> BTreeSet<String> {
        self.world().retired.clone()
    }

    /// Port removals queued and not yet run (see [`Kernel::settle`]).
    pub fn queued(&self) -> Vec<String> {
        self.world().queued.clone()
    }

    /// How many `apply` calls, with their namespace and op count.
    pub fn applied(&self) -> Vec<(Option<PathBuf>, usize)> {
        self.world().applied.clone()
    }

    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn call(&self, name: &str, arg: &str) -> Result<std::sync::MutexGuard<'_, World>> {
        let mut w = self.world();
        let call = format!("{name} {arg}");
        w.calls.push(call.clone());
        if w.fail.as_deref().is_some_and(|f| call.starts_with(f)) {
            w.fail = None;
            return Err(KernelError(format!("{call}: injected failure")));
        }
        Ok(w)
    }
}

impl World {
    /// A link goes, and with a veth its endpoint side.
    fn remove_link(&mut self, name: &str) {
        self.links.remove(name);
        self.peers.remove(name);
        self.retired.remove(name);
    }
}

impl Kernel for FakeKernel {
    fn prepare_host(&self) -> Result<()> {
        self.call("prepare_host", "").map(|_| ())
    }

    fn create_netns(&self, name: &str) -> Result<PathBuf> {
        let mut w = self.call("create_netns", name)?;
        if !w.netns.insert(name.to_owned()) {
            return Err(KernelError(format!("create netns {name}: File exists")));
        }
        Ok(crate::netns::path_of(name))
    }

    fn delete_netns(&self, name: &str) -> Result<()> {
        let mut w = self.call("delete_netns", name)?;
        w.netns.remove(name);
        // A namespace made again under this name is a new one: the old
        // one's interface names are free there.
        let path = crate::netns::path_of(name);
        w.peers.retain(|_, (netns, _)| *netns != path);
        Ok(())
    }

    fn netns_names(&self, prefix: &str) -> Result<Vec<String>> {
        let w = self.call("netns_names", prefix)?;
        Ok(w.netns
            .iter()
            .filter(|n| n.starts_with(prefix))
            .cloned()
            .collect())
    }

    fn create_network_device(&self, name: &str, _gateway: Option<(IpAddr, u8)>) -> Result<()> {
        self.call("create_network_device", name)?
            .links
            .insert(name.to_owned());
        Ok(())
    }

    fn create_switch(&self, spec: &SwitchSpec) -> Result<()> {
        let mut w = self.call("create_switch", &spec.name)?;
        w.links.insert(spec.name.clone());
        if let SwitchKind::Overlay { vxlan, .. } = &spec.kind {
            w.links.insert(vxlan.clone());
        }
        Ok(())
    }

    fn delete_switch(&self, spec: &SwitchSpec) -> Result<()> {
        let mut w = self.call("delete_switch", &spec.name)?;
        w.links.remove(&spec.name);
        if let SwitchKind::Overlay { vxlan, .. } = &spec.kind {
            w.links.remove(vxlan);
        }
        Ok(())
    }

    fn detach_port(&self, spec: &PortSpec) -> Result<()> {
        self.call("detach_port", &spec.switch_port).map(|_| ())
    }

    fn set_remotes(
        &self,
        vxlan: &str,
        add: &[RemoteEndpoint],
        remove: &[RemoteEndpoint],
    ) -> Result<()> {
        let arg = format!("{vxlan} +{} -{}", add.len(), remove.len());
        self.call("set_remotes", &arg).map(|_| ())
    }

    fn create_port(&self, spec: &PortSpec) -> Result<()> {
        let mut w = self.call("create_port", &spec.switch_port)?;
        let exists = || {
            Err(KernelError(format!(
                "create veth {}: File exists",
                spec.switch_port
            )))
        };
        if w.links.contains(&spec.switch_port) {
            return exists();
        }
        if let PortKind::Veth { netns, ifname } = &spec.kind {
            if w.peers.values().any(|(n, i)| n == netns && i == ifname) {
                return exists();
            }
            w.peers
                .insert(spec.switch_port.clone(), (netns.clone(), ifname.clone()));
        }
        w.links.insert(spec.switch_port.clone());
        Ok(())
    }

    fn delete_link(&self, name: &str) -> Result<()> {
        self.call("delete_link", name)?.remove_link(name);
        Ok(())
    }

    fn retire_port(&self, spec: &PortSpec) -> Result<()> {
        let mut w = self.call("retire_port", &spec.switch_port)?;
        if w.links.contains(&spec.switch_port) {
            w.retired.insert(spec.switch_port.clone());
        }
        Ok(())
    }

    fn remove_port_later(&self, name: &str) {
        match self.call("remove_port_later", name) {
            Ok(mut w) => w.queued.push(name.to_owned()),
            Err(e) => tracing::warn!(port = name, error = %e, "could not remove switch port"),
        }
    }

    fn settle(&self) {
        let mut w = self.world();
        w.calls.push("settle ".to_owned());
        for name in std::mem::take(&mut w.queued) {
            // As the kernel does: every retired port goes, then this one.
            for r in std::mem::take(&mut w.retired) {
                w.remove_link(&r);
            }
            w.remove_link(&name);
        }
    }

    fn link_names(&self, prefix: &str) -> Result<Vec<String>> {
        let w = self.call("link_names", prefix)?;
        Ok(w.links
            .iter()
            .filter(|n| n.starts_with(prefix))
            .cloned()
            .collect())
    }

    fn apply(&self, netns: Option<&Path>, changes: &[TableChange<'_>]) -> Result<()> {
        let arg = netns.map_or_else(|| "host".to_owned(), |p| p.display().to_string());
        let mut w = self.call("apply", &arg)?;
        w.applied.push((
            netns.map(Path::to_path_buf),
            changes.iter().map(|c| c.ops.len()).sum(),
        ));
        Ok(())
    }

    /// The fake kernel passes no packets: nothing is ever counted.
    fn counters(
        &self,
        netns: Option<&Path>,
        table: &bulkhead_policy::ir::Table,
        _sets: &[String],
    ) -> Result<crate::counters::TableCounters> {
        let arg = netns.map_or_else(|| "host".to_owned(), |p| p.display().to_string());
        drop(self.call("counters", &format!("{arg} {}", table.name))?);
        Ok(crate::counters::TableCounters::default())
    }

    fn flows(&self, _netns: Option<&Path>, addr: IpAddr) -> Result<Vec<Flow>> {
        self.call("flows", &addr.to_string()).map(|_| Vec::new())
    }

    fn delete_flows(&self, _netns: Option<&Path>, flows: &[Flow]) -> Result<usize> {
        self.call("delete_flows", &flows.len().to_string())
            .map(|_| flows.len())
    }
}
