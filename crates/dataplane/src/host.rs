//! The real [`Kernel`]: netlink in-process, in "the host" namespace (the one
//! the process runs in, or a pinned one for in-process services such as
//! `demo` and tests) and in endpoint namespaces reached through
//! [`crate::netns::run_in`]. Sockets for the host are opened once and
//! reused, and so are those of the namespaces this kernel made
//! (`host/owned.rs`, from creation to `delete_netns`); a socket for any
//! other (adopted) namespace lives for one call and is closed by the
//! [`Reaper`], off the operation's path. Every
//! host-side call names the host namespace explicitly, so no thread's own
//! namespace is ever touched by accident.
//!
//! Switch ports are destroyed on a thread of their own
//! ([`Kernel::remove_port_later`], `host/sweep.rs`), through a host socket
//! of its own so that the kernel's RCU waits never hold the operations'
//! socket, and only once host rtnetlink has been quiet for a moment: a
//! device's destruction holds `rtnl_lock` through RCU grace periods, which
//! a create would otherwise wait for. A removal deletes every retired port
//! at once (interface group [`crate::kernel::RETIRED_GROUP`]), so a burst
//! of deletes pays those waits about once.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::conntrack::Conntrack;
use crate::kernel::{
    Flow, Kernel, KernelError, NetnsHandle, NetnsId, PortAttach, PortSpec, Protected,
    RemoteEndpoint, Result, SwitchSpec, TableChange,
};
use crate::nft::NftSocket;
use crate::reaper::Reaper;
use crate::rtnl::{Batch, Rtnl};
use crate::{netns, sysctl};

mod gather;
mod l2;
mod netfilter;
mod ns;
mod owned;
mod port;
mod sweep;
mod tunnel;
mod warm;

pub use l2::{VXLAN_OVERHEAD, VXLAN_PORT};

/// One line: the error and each of its sources (`netlink: commit batch:
/// Message too long`), with the kernel's errno.
fn err(e: impl std::error::Error + 'static) -> KernelError {
    KernelError::from_error(&e)
}

/// The host-side kernel of one bulkhead instance.
#[derive(Debug)]
pub struct HostKernel {
    /// The host's `/proc/sys/net`, kept (see [`sysctl::NetDir`]).
    sysctl: sysctl::NetDir,
    rtnl: Mutex<Rtnl>,
    nft: Mutex<NftSocket>,
    conntrack: Mutex<Conntrack>,
    /// The conntrack reaper's own host socket (a removed endpoint's
    /// connections; the sweeper has an rtnetlink one). Kept open: closing
    /// a netfilter socket waits for an RCU grace period.
    cleanup_ct: Arc<Mutex<Conntrack>>,
    /// Addresses whose host connections a queued reaper job will delete,
    /// gathered into batches ([`gather`]).
    forgetting: Arc<gather::Gathering>,
    reaper: Reaper,
    /// Retired switch ports, destroyed while the host is quiet.
    sweeper: sweep::Sweeper,
    /// The host's conntrack clean-up, on a thread of its own: each job
    /// walks the kernel's whole connection table, and a runtime waiting
    /// for its ports to go ([`Kernel::settle_ports`]) must not wait for it.
    flows_reaper: Reaper,
    /// The sockets of the namespaces made by [`Kernel::create_netns`].
    owned: owned::Owned,
    /// Namespaces never to be adopted, captured at open.
    protected: Vec<(NetnsId, Protected)>,
    /// The DHCP servers of vm ports, in the host namespace.
    dhcp: crate::dhcp::DhcpServers,
    /// Namespaces made ahead of their create, if asked for
    /// ([`HostKernel::warm_namespaces`]).
    warm: Option<warm::Warm>,
}

impl HostKernel {
    /// Opens the host sockets in `host` (a pinned namespace), or in the
    /// caller's namespace when `None`.
    pub fn open(host: Option<&Path>) -> Result<Self> {
        let open_rtnl = || match host {
            Some(p) => Rtnl::in_netns(p),
            None => Rtnl::current(),
        };
        let rtnl = open_rtnl().map_err(err)?;
        let cleanup = open_rtnl().map_err(err)?;
        let nft = NftSocket::open(host).map_err(err)?;
        let conntrack = Conntrack::open(host).map_err(err)?;
        let cleanup_ct = Conntrack::open(host).map_err(err)?;
        let sysctl = sysctl::NetDir::open(host).map_err(err)?;
        Ok(Self {
            sysctl,
            rtnl: Mutex::new(rtnl),
            nft: Mutex::new(nft),
            conntrack: Mutex::new(conntrack),
            sweeper: sweep::Sweeper::new(port::destroy_retired(cleanup)),
            cleanup_ct: Arc::new(Mutex::new(cleanup_ct)),
            forgetting: Arc::default(),
            reaper: Reaper::new(),
            flows_reaper: Reaper::named("bulkhead-flows"),
            owned: owned::Owned::default(),
            protected: ns::protected_now(host),
            dhcp: crate::dhcp::DhcpServers::new(host.map(Path::to_path_buf)),
            warm: None,
        })
    }

    /// Keeps up to `size` namespaces made ahead of their create
    /// (`host/warm.rs`): [`Kernel::create_netns`] then pins one of them
    /// instead of making one. 0 keeps none (the default).
    pub fn warm_namespaces(mut self, size: usize) -> Result<Self> {
        self.warm = match size {
            0 => None,
            n => Some(
                warm::Warm::start(n, Self::make_warm)
                    .map_err(|e| KernelError::io("start the namespace pool", &e))?,
            ),
        };
        Ok(self)
    }

    /// A namespace for the pool, readied as [`Self::ready_netns_here`] does.
    fn make_warm() -> Result<warm::Made> {
        let (ns, ready) = netns::create_unpinned(|| Self::ready_netns_here(None))
            .map_err(|e| KernelError::io("make a namespace", &e))?;
        let mut sockets = ready?;
        // Until it is taken (as `owned` does for a namespace in use).
        sockets.rtnl.release_buffer();
        sockets.nft.release_buffer();
        Ok(warm::Made { ns, sockets })
    }

    /// Pins a namespace from the pool at `name`, if one is ready; `None`
    /// when the pool is empty or off.
    fn create_netns_warm(&self, name: &str) -> Option<Result<PathBuf>> {
        let mut made = self.warm.as_ref()?.take()?;
        Some(match netns::pin(name, &made.ns) {
            Ok(path) => {
                made.sockets.rtnl.name_netns(&path);
                self.owned.keep(&path, made.sockets);
                Ok(path)
            }
            Err(e) => Err(KernelError::io(format!("create netns {name}"), &e)),
        })
    }

    /// The host's rtnetlink socket; taking it marks the host busy (retired
    /// ports wait for a quiet moment: [`sweep`]).
    fn rtnl(&self) -> std::sync::MutexGuard<'_, Rtnl> {
        self.sweeper.busy();
        self.rtnl.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A namespace just made, run by the thread still inside it
    /// ([`netns::create_with`]): loopback up, strict TCP tracking, and the
    /// sockets later calls for it reuse, all opened there (no entry per
    /// socket or setting). `path` names it in errors (`None`: not pinned
    /// yet).
    fn ready_netns_here(path: Option<&Path>) -> Result<owned::NsSockets> {
        let mut rtnl = match path {
            Some(p) => Rtnl::here_named(p),
            None => Rtnl::current(),
        }
        .map_err(err)?;
        let mut b = Batch::new();
        b.set_up("lo");
        rtnl.execute(&b).map_err(err)?;
        ns::strict_tcp_here()?;
        let nft = NftSocket::open(None).map_err(err)?;
        Ok(owned::NsSockets { rtnl, nft })
    }

    /// How many namespaces made ahead wait in the pool now.
    pub fn warm_ready(&self) -> usize {
        self.warm.as_ref().map_or(0, warm::Warm::ready)
    }

    /// How many namespaces made by this kernel have sockets kept open.
    pub fn kept_namespaces(&self) -> usize {
        self.owned.len()
    }
}

impl Kernel for HostKernel {
    fn serve_dhcp(&self, lease: &crate::dhcp::DhcpLease) -> Result<()> {
        self.dhcp
            .serve(lease)
            .map_err(|e| KernelError::io(format!("serve dhcp on {}", lease.port), &e))
    }

    fn stop_dhcp(&self, port: &str) {
        self.dhcp.stop(port);
    }

    fn serve_dhcp_only(&self, leases: &[crate::dhcp::DhcpLease]) -> Vec<String> {
        self.dhcp.serve_only(leases)
    }

    fn prepare_host(&self) -> Result<()> {
        self.sysctl.write("net.ipv4.ip_forward", "1").map_err(err)
    }

    fn create_netns(&self, name: &str) -> Result<PathBuf> {
        if let Some(pinned) = self.create_netns_warm(name) {
            return pinned;
        }
        let pin = netns::path_of(name);
        let (path, ready) = netns::create_with(name, || Self::ready_netns_here(Some(&pin)))
            .map_err(|e| KernelError::io(format!("create netns {name}"), &e))?;
        match ready {
            Ok(sockets) => {
                self.owned.keep(&path, sockets);
                Ok(path)
            }
            Err(e) => {
                let _ = netns::delete(name);
                Err(e)
            }
        }
    }

    fn delete_netns(&self, name: &str) -> Result<()> {
        self.owned.forget(&netns::path_of(name), &self.reaper);
        netns::delete(name).map_err(|e| KernelError::io(format!("delete netns {name}"), &e))
    }

    fn netns_names(&self, prefix: &str) -> Result<Vec<String>> {
        netns::list(prefix).map_err(|e| KernelError::io("list netns", &e))
    }

    fn host_addresses(&self) -> Result<Vec<IpAddr>> {
        let mut out: Vec<IpAddr> = self
            .rtnl()
            .addresses()
            .map_err(err)?
            .into_iter()
            .map(|a| a.ip)
            .collect();
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    fn netns_pinned(&self, name: &str) -> Result<bool> {
        Ok(netns::is_pinned(name))
    }

    fn create_network_device(&self, name: &str, gateway: Option<(IpAddr, u8)>) -> Result<()> {
        let mut rtnl = self.rtnl();
        let index = match rtnl.link_index(name).map_err(err)? {
            Some(i) => i,
            None => {
                let mut b = Batch::new();
                b.create_bridge(name).set_up(name);
                let found = rtnl.execute_and_find(&b, &[name]).map_err(err)?;
                found
                    .first()
                    .cloned()
                    .flatten()
                    .map(|l| l.index)
                    .ok_or_else(|| KernelError::new(format!("find link {name}: gone")))?
            }
        };
        if let Some((gw, prefix)) = gateway {
            let mut b = Batch::new();
            b.add_address(index, gw, prefix);
            match rtnl.execute(&b) {
                Err(e) if !e.is_exists() => return Err(err(e)),
                _ => {}
            }
        }
        drop(rtnl);
        self.no_router_role(name)
    }

    fn create_switch(&self, spec: &SwitchSpec) -> Result<()> {
        self.l2_create_switch(spec)
    }

    fn delete_switch(&self, spec: &SwitchSpec) -> Result<()> {
        self.l2_delete_switch(spec)
    }

    fn detach_port(&self, spec: &PortSpec) -> Result<()> {
        self.publish_on_uplink(spec, false)
    }

    fn set_remotes(
        &self,
        vxlan: &str,
        add: &[RemoteEndpoint],
        remove: &[RemoteEndpoint],
    ) -> Result<()> {
        self.l2_set_remotes(vxlan, add, remove)
    }

    fn remotes(&self, vxlan: &str) -> Result<Vec<RemoteEndpoint>> {
        self.l2_remotes(vxlan)
    }

    fn create_port(&self, spec: &PortSpec) -> Result<()> {
        let made = match &spec.attach {
            PortAttach::Bridge { bridge } => self.create_bridged_port(spec, bridge),
            PortAttach::Routed => self.create_port_steps(spec),
            PortAttach::Uplink { .. } => self
                .create_port_steps(spec)
                .and_then(|()| self.publish_on_uplink(spec, true)),
        };
        if made.is_err() {
            let _ = self.delete_link(&spec.switch_port);
        }
        made
    }

    fn enable_port(&self, spec: &PortSpec) -> Result<()> {
        self.enable_port_steps(spec)
    }

    fn netns_id(&self, path: &Path) -> Result<NetnsId> {
        ns::identify(path)
    }

    fn protected_netns(&self) -> Vec<(NetnsId, Protected)> {
        self.protected.clone()
    }

    fn open_netns(&self, path: &Path, expected: NetnsId) -> Result<NetnsHandle> {
        ns::open_checked(path, expected)
    }

    fn prepare_netns(&self, netns: &Path) -> Result<()> {
        ns::strict_tcp(netns)
    }

    fn delete_link(&self, name: &str) -> Result<()> {
        let mut b = Batch::new();
        b.delete_link(name);
        match self.rtnl().execute(&b) {
            Err(e) if !e.is_not_found() => Err(err(e)),
            _ => Ok(()),
        }
    }

    fn retire_port(&self, spec: &PortSpec) -> Result<()> {
        self.retire_port_steps(spec)
    }

    fn remove_port_later(&self, name: &str) {
        self.remove_port_in_background(name)
    }

    fn settle(&self) {
        self.reaper.flush();
        self.sweeper.settle();
        self.forgetting.hurry();
        self.flows_reaper.flush();
    }

    fn settle_ports(&self) {
        self.sweeper.settle();
    }

    fn settle_flows(&self) {
        self.forgetting.hurry();
        self.flows_reaper.flush();
    }

    fn local_addresses(&self) -> Result<Vec<(IpAddr, u8)>> {
        Ok(self
            .rtnl()
            .addresses()
            .map_err(err)?
            .into_iter()
            .map(|a| (a.ip, a.scope))
            .collect())
    }

    fn link_names(&self, prefix: &str) -> Result<Vec<String>> {
        Ok(self
            .rtnl()
            .links(prefix)
            .map_err(err)?
            .into_iter()
            .map(|l| l.name)
            .collect())
    }

    fn apply(&self, netns: Option<&Path>, changes: &[TableChange<'_>]) -> Result<()> {
        self.commit_changes(netns, changes)
    }

    fn counters(
        &self,
        netns: Option<&Path>,
        table: &bulkhead_policy::ir::Table,
        sets: &[String],
    ) -> Result<crate::counters::TableCounters> {
        self.read_counters(netns, table, sets)
    }

    fn flows(&self, netns: Option<&Path>, addr: IpAddr) -> Result<Vec<Flow>> {
        self.tracked_flows(netns, addr)
    }

    fn forget_host_flows(&self, addr: IpAddr) {
        self.forget_host_flows_later(addr)
    }

    fn delete_flows(&self, netns: Option<&Path>, flows: &[Flow]) -> Result<usize> {
        self.delete_tracked_flows(netns, flows)
    }
}
