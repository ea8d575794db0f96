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
    Flow, Kernel, KernelError, NetnsHandle, NetnsId, PortKind, PortSpec, Protected, RemoteEndpoint,
    Result, SwitchKind, SwitchSpec, TableChange,
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
    /// Host addresses beyond the gateways: loopback and whatever
    /// [`FakeKernel::add_host_address`] added (an uplink's).
    addresses: BTreeSet<IpAddr>,
    /// Gateway addresses on network devices, by device.
    gateways: BTreeMap<String, IpAddr>,
    /// Ports made and not yet enabled (down).
    down: BTreeSet<String>,
    /// Namespace identities by path: set by tests ([`FakeKernel::set_netns_id`])
    /// and given to namespaces the fake creates.
    ids: BTreeMap<PathBuf, NetnsId>,
    protected: Vec<(NetnsId, Protected)>,
    next_ino: u64,
    panic: Option<String>,
    /// DHCP leases served, by TAP port.
    dhcp: BTreeMap<String, crate::dhcp::DhcpLease>,
    /// Remote endpoints programmed, by VXLAN device.
    remotes: BTreeMap<String, BTreeSet<RemoteEndpoint>>,
}

/// The fake. Cheap to create; share it through `Arc`.
#[derive(Debug)]
pub struct FakeKernel {
    world: Mutex<World>,
}

impl Default for FakeKernel {
    /// A host with loopback only (127.0.0.1 and ::1).
    fn default() -> Self {
        let world = World {
            addresses: [
                IpAddr::from(std::net::Ipv4Addr::LOCALHOST),
                IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
            ]
            .into(),
            ..World::default()
        };
        Self {
            world: Mutex::new(world),
        }
    }
}

impl FakeKernel {
    pub fn new() -> Self {
        Self::default()
    }

    /// Gives the host one more address (as an uplink's would be).
    pub fn add_host_address(&self, ip: IpAddr) {
        self.world().addresses.insert(ip);
    }

    /// The DHCP leases being served, by port.
    pub fn dhcp_leases(&self) -> BTreeMap<String, crate::dhcp::DhcpLease> {
        self.world().dhcp.clone()
    }

    /// Makes the next call whose name starts with `step` fail (once).
    pub fn fail_next(&self, step: &str) {
        self.world().fail = Some(step.to_owned());
    }

    /// Makes the next call whose name starts with `step` panic (once), as
    /// a bug inside an operation would.
    pub fn panic_next(&self, step: &str) {
        self.world().panic = Some(step.to_owned());
    }

    /// Every call so far, as `name arg`.
    pub fn calls(&self) -> Vec<String> {
        self.world().calls.clone()
    }

    /// The remote endpoints programmed on every VXLAN device, as `set_remotes` left them.
    pub fn remotes(&self) -> BTreeSet<RemoteEndpoint> {
        self.world().remotes.values().flatten().copied().collect()
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

    /// Ports created and not yet enabled: down, passing nothing.
    pub fn down(&self) -> BTreeSet<String> {
        self.world().down.clone()
    }

    /// Makes `path` a network namespace with identity `id` (a runtime's
    /// netns; the same `id` under two paths is one namespace bound twice).
    pub fn set_netns_id(&self, path: &Path, id: NetnsId) {
        self.world().ids.insert(path.to_path_buf(), id);
    }

    /// Declares `id` a namespace never to be adopted.
    pub fn protect(&self, id: NetnsId, why: Protected) {
        self.world().protected.push((id, why));
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
            return Err(KernelError::new(format!("{call}: injected failure")));
        }
        if w.panic.as_deref().is_some_and(|f| call.starts_with(f)) {
            w.panic = None;
            drop(w);
            panic!("{call}: injected panic");
        }
        Ok(w)
    }
}

impl World {
    /// A link goes, and with a veth its endpoint side.
    fn remove_link(&mut self, name: &str) {
        self.links.remove(name);
        self.gateways.remove(name);
        self.down.remove(name);
        self.peers.remove(name);
        self.retired.remove(name);
    }
}

impl Kernel for FakeKernel {
    fn serve_dhcp(&self, lease: &crate::dhcp::DhcpLease) -> Result<()> {
        let mut w = self.call("serve_dhcp", &lease.port)?;
        if !w.links.contains(&lease.port) {
            return Err(KernelError::refused(
                libc::ENODEV,
                format!("serve dhcp on {}: No such device", lease.port),
            ));
        }
        w.dhcp.insert(lease.port.clone(), lease.clone());
        Ok(())
    }

    fn stop_dhcp(&self, port: &str) {
        if let Ok(mut w) = self.call("stop_dhcp", port) {
            w.dhcp.remove(port);
        }
    }

    fn serve_dhcp_only(&self, leases: &[crate::dhcp::DhcpLease]) -> Vec<String> {
        self.world()
            .dhcp
            .retain(|p, _| leases.iter().any(|l| &l.port == p));
        leases
            .iter()
            .filter_map(|l| self.serve_dhcp(l).err().map(|e| e.to_string()))
            .collect()
    }

    fn prepare_host(&self) -> Result<()> {
        self.call("prepare_host", "").map(|_| ())
    }

    fn create_netns(&self, name: &str) -> Result<PathBuf> {
        let mut w = self.call("create_netns", name)?;
        if !w.netns.insert(name.to_owned()) {
            return Err(KernelError::refused(
                libc::EEXIST,
                format!("create netns {name}: File exists"),
            ));
        }
        let path = crate::netns::path_of(name);
        w.next_ino += 1;
        let id = NetnsId {
            dev: 0,
            ino: 0x4000_0000 + w.next_ino,
        };
        w.ids.insert(path.clone(), id);
        Ok(path)
    }

    fn prepare_netns(&self, netns: &Path) -> Result<()> {
        self.call("prepare_netns", &netns.display().to_string())
            .map(|_| ())
    }

    fn delete_netns(&self, name: &str) -> Result<()> {
        let mut w = self.call("delete_netns", name)?;
        w.netns.remove(name);
        // A namespace made again under this name is a new one: the old
        // one's interface names are free there.
        let path = crate::netns::path_of(name);
        w.peers.retain(|_, (netns, _)| *netns != path);
        w.ids.remove(&path);
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

    fn create_network_device(&self, name: &str, gateway: Option<(IpAddr, u8)>) -> Result<()> {
        let mut w = self.call("create_network_device", name)?;
        w.links.insert(name.to_owned());
        if let Some((ip, _)) = gateway {
            w.gateways.insert(name.to_owned(), ip);
        }
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
        let mut w = self.call("set_remotes", &arg)?;
        let set = w.remotes.entry(vxlan.to_owned()).or_default();
        for r in remove {
            set.remove(r);
        }
        set.extend(add.iter().copied());
        Ok(())
    }

    fn remotes(&self, vxlan: &str) -> Result<Vec<RemoteEndpoint>> {
        let w = self.call("remotes", vxlan)?;
        Ok(w.remotes
            .get(vxlan)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default())
    }

    fn create_port(&self, spec: &PortSpec) -> Result<()> {
        let mut w = self.call("create_port", &spec.switch_port)?;
        let exists = || {
            Err(KernelError::refused(
                libc::EEXIST,
                format!("create veth {}: File exists", spec.switch_port),
            ))
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
        w.down.insert(spec.switch_port.clone());
        Ok(())
    }

    fn enable_port(&self, spec: &PortSpec) -> Result<()> {
        let mut w = self.call("enable_port", &spec.switch_port)?;
        if !w.links.contains(&spec.switch_port) {
            return Err(KernelError::refused(
                libc::ENODEV,
                format!("set up {}: No such device", spec.switch_port),
            ));
        }
        w.down.remove(&spec.switch_port);
        Ok(())
    }

    fn netns_id(&self, path: &Path) -> Result<NetnsId> {
        self.world().ids.get(path).copied().ok_or_else(|| {
            KernelError::new(format!("netns {}: not a network namespace", path.display()))
        })
    }

    fn protected_netns(&self) -> Vec<(NetnsId, Protected)> {
        self.world().protected.clone()
    }

    fn open_netns(&self, path: &Path, expected: NetnsId) -> Result<NetnsHandle> {
        let id = self.netns_id(path)?;
        if id != expected {
            return Err(KernelError::new(format!(
                "netns {}: is namespace {id} now, not the adopted {expected}",
                path.display()
            )));
        }
        Ok(NetnsHandle::unheld(path))
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

    fn settle_flows(&self) {
        // Host flows are forgotten at once here (the trait's default).
        self.world().calls.push("settle_flows ".to_owned());
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

    fn host_addresses(&self) -> Result<Vec<IpAddr>> {
        let w = self.call("host_addresses", "")?;
        let all: BTreeSet<IpAddr> = w
            .addresses
            .iter()
            .chain(w.gateways.values())
            .copied()
            .collect();
        Ok(all.into_iter().collect())
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
