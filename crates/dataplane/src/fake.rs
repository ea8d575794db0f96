//! A recording fake of [`Kernel`] for orchestration tests: it keeps the
//! namespaces and links it was asked to make, records every call, and can be
//! told to fail a named step, so undo paths can be tested without root.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::kernel::{
    Flow, Kernel, KernelError, PortSpec, RemoteEndpoint, Result, SwitchKind, SwitchSpec,
    TableChange,
};

#[derive(Debug, Default)]
struct World {
    netns: BTreeSet<String>,
    links: BTreeSet<String>,
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
        self.call("delete_netns", name)?.netns.remove(name);
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
        if !w.links.insert(spec.switch_port.clone()) {
            return Err(KernelError(format!(
                "create veth {}: File exists",
                spec.switch_port
            )));
        }
        Ok(())
    }

    fn delete_link(&self, name: &str) -> Result<()> {
        self.call("delete_link", name)?.links.remove(name);
        Ok(())
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

    fn flows(&self, _netns: Option<&Path>, addr: IpAddr) -> Result<Vec<Flow>> {
        self.call("flows", &addr.to_string()).map(|_| Vec::new())
    }

    fn delete_flows(&self, _netns: Option<&Path>, flows: &[Flow]) -> Result<usize> {
        self.call("delete_flows", &flows.len().to_string())
            .map(|_| flows.len())
    }
}
