//! The real [`Kernel`]: netlink in-process, in "the host" namespace (the one
//! the process runs in, or a pinned one for in-process services such as
//! `demo` and tests) and in endpoint namespaces reached through
//! [`crate::netns::run_in`]. Sockets for the host are opened once and
//! reused; a socket for an endpoint namespace lives for one call and is
//! closed by the [`Reaper`], off the operation's path. Every
//! host-side call names the host namespace explicitly, so no thread's own
//! namespace is ever touched by accident.
//!
//! Switch ports are destroyed on the reaper's thread too
//! ([`Kernel::remove_port_later`]), through a host socket of its own so
//! that the kernel's RCU waits never hold the operations' socket: a removal
//! deletes every retired port at once (interface group
//! [`RETIRED_GROUP`]), so a burst of deletes pays those waits about once.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::conntrack::{Conntrack, Tuple};
use crate::kernel::{
    Flow, Kernel, KernelError, NetnsHandle, NetnsId, PortAttach, PortKind, PortSpec, Protected,
    RemoteEndpoint, Result, SwitchSpec, TableChange, RETIRED_GROUP,
};
use crate::nft::{Batch as NftBatch, NftSocket, Table as NftTable};
use crate::reaper::Reaper;
use crate::rtnl::{Batch, Route, Rtnl, TapSpec, VethSpec};
use crate::{lower, netns, sysctl};

mod l2;
mod ns;
mod tunnel;

pub use l2::{VXLAN_OVERHEAD, VXLAN_PORT};

/// One line: the error and each of its sources (`netlink: commit batch:
/// Message too long`), with the kernel's errno.
fn err(e: impl std::error::Error + 'static) -> KernelError {
    KernelError::from_error(&e)
}

/// Queues the creation of a switch port's device in `b`: a veth whose peer
/// is made in the endpoint namespace, or a persistent TAP (created at once:
/// TUN devices are not made over rtnetlink). `mtu` applies to both ends.
/// The port is made down (fail closed); [`Kernel::enable_port`] brings it up.
fn port_device(rtnl: &mut Rtnl, b: &mut Batch, spec: &PortSpec, mtu: Option<u32>) -> Result<()> {
    let port = spec.switch_port.as_str();
    match &spec.kind {
        PortKind::Veth { netns, ifname } => {
            b.create_veth(&VethSpec {
                name: port,
                peer_name: ifname,
                peer_netns: Some(netns),
                mac: None,
                peer_mac: Some(spec.mac),
                mtu,
                up: false,
            })
            .map_err(err)?;
        }
        PortKind::Tap => {
            rtnl.create_tap(&TapSpec {
                name: port,
                multi_queue: false,
                owner: None,
                group: None,
            })
            .map_err(err)?;
            if let Some(mtu) = mtu {
                b.set_mtu(port, mtu);
            }
        }
    }
    Ok(())
}

/// One batch for every change: one transaction.
fn lower_changes(changes: &[TableChange<'_>]) -> std::result::Result<NftBatch, lower::LowerError> {
    let mut batch = NftBatch::new();
    let mut ids = lower::AnonIds::default();
    for c in changes {
        if c.replace {
            batch.destroy_table(&NftTable::new(lower::lower_family(c.family), &c.table));
        }
        let current = if c.replace { None } else { c.current };
        lower::lower_ops_into(&mut batch, current, &c.ops, &mut ids)?;
    }
    Ok(batch)
}

/// The host-side kernel of one bulkhead instance.
#[derive(Debug)]
pub struct HostKernel {
    host: Option<PathBuf>,
    rtnl: Mutex<Rtnl>,
    nft: Mutex<NftSocket>,
    conntrack: Mutex<Conntrack>,
    /// The reaper's own host sockets: rtnetlink (port removal) and
    /// ctnetlink (a removed endpoint's connections). Kept open: closing a
    /// netfilter socket waits for an RCU grace period.
    cleanup: Arc<Mutex<Rtnl>>,
    cleanup_ct: Arc<Mutex<Conntrack>>,
    reaper: Reaper,
    /// Namespaces never to be adopted, captured at open.
    protected: Vec<(NetnsId, Protected)>,
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
        Ok(Self {
            host: host.map(Path::to_path_buf),
            rtnl: Mutex::new(rtnl),
            nft: Mutex::new(nft),
            conntrack: Mutex::new(conntrack),
            cleanup: Arc::new(Mutex::new(cleanup)),
            cleanup_ct: Arc::new(Mutex::new(cleanup_ct)),
            reaper: Reaper::new(),
            protected: ns::protected_now(host),
        })
    }

    /// Runs `f` on the conntrack socket of `netns`: the cached one for the
    /// host, a fresh one (closed by the reaper) for an endpoint namespace.
    fn with_conntrack<R>(
        &self,
        netns: Option<&Path>,
        f: impl FnOnce(&mut Conntrack) -> std::result::Result<R, crate::conntrack::ConntrackError>,
    ) -> Result<R> {
        match netns {
            None => f(&mut self.conntrack.lock().unwrap_or_else(|p| p.into_inner())).map_err(err),
            Some(path) => {
                let mut ct = Conntrack::open(Some(path)).map_err(err)?;
                let out = f(&mut ct).map_err(err);
                self.reaper.reap(ct);
                out
            }
        }
    }

    fn rtnl(&self) -> std::sync::MutexGuard<'_, Rtnl> {
        self.rtnl.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The peer side of a veth: up, addressed, default route via the gateway.
    fn configure_peer(netns: &Path, ifname: &str, spec: &PortSpec) -> Result<()> {
        let mut ns = Rtnl::in_netns(netns).map_err(err)?;
        let mut up = Batch::new();
        up.set_up(ifname);
        let found = ns.execute_and_find(&up, &[ifname]).map_err(err)?;
        let index = found
            .first()
            .cloned()
            .flatten()
            .map(|l| l.index)
            .ok_or_else(|| KernelError::new(format!("find link {ifname}: gone")))?;
        let mut b = Batch::new();
        b.add_address(index, spec.address, spec.prefix);
        if let Some(gw) = spec.gateway {
            if gw.is_ipv4() == spec.address.is_ipv4() {
                b.add_route(&Route::default_via(gw, index, false));
            }
        }
        ns.execute(&b).map_err(err)
    }

    fn create_port_steps(&self, spec: &PortSpec) -> Result<()> {
        let port = spec.switch_port.as_str();
        let mut rtnl = self.rtnl();
        let mut b = Batch::new();
        port_device(&mut rtnl, &mut b, spec, None)?;
        rtnl.execute(&b).map_err(err)?;
        let v4 = spec.address.is_ipv4();
        let proxy = if v4 {
            format!("net/ipv4/conf/{port}/proxy_arp")
        } else {
            format!("net/ipv6/conf/{port}/proxy_ndp")
        };
        if v4 {
            // proxy_delay: the kernel delays each proxy ARP answer by a random
            // 0-800 ms (neigh default), which stalls the first packet between
            // two endpoints; answer at once.
            let delay = format!("net/ipv4/neigh/{port}/proxy_delay");
            sysctl::write_all(
                self.host.as_deref(),
                &[(proxy.as_str(), "1"), (delay.as_str(), "0")],
            )
            .map_err(err)?;
        } else {
            sysctl::write(self.host.as_deref(), &proxy, "1").map_err(err)?;
        }
        drop(rtnl);
        self.no_router_role(port)?;
        if let PortKind::Veth { netns, ifname } = &spec.kind {
            Self::configure_peer(netns, ifname, spec)?;
        }
        Ok(())
    }
}

impl Kernel for HostKernel {
    fn prepare_host(&self) -> Result<()> {
        sysctl::write_all(self.host.as_deref(), &[("net.ipv4.ip_forward", "1")]).map_err(err)
    }

    fn create_netns(&self, name: &str) -> Result<PathBuf> {
        let path =
            netns::create(name).map_err(|e| KernelError::io(format!("create netns {name}"), &e))?;
        let lo_up = Rtnl::in_netns(&path).and_then(|mut r| {
            let mut b = Batch::new();
            b.set_up("lo");
            r.execute(&b)
        });
        if let Err(e) = lo_up {
            let _ = netns::delete(name);
            return Err(err(e));
        }
        if let Err(e) = ns::strict_tcp(&path) {
            let _ = netns::delete(name);
            return Err(e);
        }
        Ok(path)
    }

    fn delete_netns(&self, name: &str) -> Result<()> {
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
        let mut errors = Vec::new();
        if let Err(e) = self.publish_on_uplink(spec, false) {
            errors.push(e.to_string());
        }
        let port = spec.switch_port.as_str();
        let mut rtnl = self.rtnl();
        let mut b = Batch::new();
        b.set_group(port, RETIRED_GROUP).set_down(port);
        let link = match rtnl.execute_and_find(&b, &[port]) {
            Ok(found) => found.into_iter().next().flatten(),
            Err(e) if e.is_not_found() => None,
            Err(e) => {
                errors.push(e.to_string());
                None
            }
        };
        // Going down already made the kernel drop the port's routes; the
        // host route is removed by name too, so that a failure says so.
        if let Some(link) = link.filter(|_| !matches!(spec.attach, PortAttach::Bridge { .. })) {
            let mut b = Batch::new();
            b.delete_route(&Route::host(spec.address, link.index));
            match rtnl.execute(&b) {
                Err(e) if !e.is_not_found() => errors.push(e.to_string()),
                _ => {}
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(KernelError::new(errors.join("; ")))
        }
    }

    fn remove_port_later(&self, name: &str) {
        let rtnl = self.cleanup.clone();
        let name = name.to_owned();
        let queued = Instant::now();
        self.reaper.later(move || {
            let started = Instant::now();
            let mut rtnl = rtnl.lock().unwrap_or_else(|p| p.into_inner());
            // Every retired port at once (one round of RCU waits), then this
            // one by name, in case it was never retired.
            let mut all = Batch::new();
            all.delete_group(RETIRED_GROUP);
            let mut one = Batch::new();
            one.delete_link(&name);
            for done in [rtnl.execute(&all), rtnl.execute(&one)] {
                match done {
                    Err(e) if !e.is_not_found() => {
                        tracing::warn!(port = %name, error = %e, "could not remove switch port");
                    }
                    _ => {}
                }
            }
            tracing::debug!(
                port = %name,
                queued_ms = started.duration_since(queued).as_secs_f64() * 1e3,
                took_ms = started.elapsed().as_secs_f64() * 1e3,
                "switch port removed"
            );
        });
    }

    fn settle(&self) {
        self.reaper.flush();
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
        let batch = lower_changes(changes).map_err(err)?;
        match netns {
            None => self
                .nft
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .commit(batch)
                .map_err(err),
            Some(path) => {
                let mut sock = NftSocket::open(Some(path)).map_err(err)?;
                let done = sock.commit(batch).map_err(err);
                self.reaper.reap(sock);
                done
            }
        }
    }

    fn counters(
        &self,
        netns: Option<&Path>,
        table: &bulkhead_policy::ir::Table,
        sets: &[String],
    ) -> Result<crate::counters::TableCounters> {
        match netns {
            None => {
                let mut sock = self.nft.lock().unwrap_or_else(|p| p.into_inner());
                crate::counters::read(&mut sock, table, sets).map_err(err)
            }
            Some(path) => {
                let mut sock = NftSocket::open(Some(path)).map_err(err)?;
                let read = crate::counters::read(&mut sock, table, sets).map_err(err);
                self.reaper.reap(sock);
                read
            }
        }
    }

    fn flows(&self, netns: Option<&Path>, addr: IpAddr) -> Result<Vec<Flow>> {
        let entries = self.with_conntrack(netns, |ct| {
            let mut all = ct.list_matching(addr, false, true)?;
            all.extend(ct.list_matching(addr, false, false)?);
            Ok(all)
        })?;
        let ported = |p: u8| matches!(p, 6 | 17 | 132 | 136);
        let mut seen = std::collections::HashSet::new();
        Ok(entries
            .into_iter()
            .filter(|e| seen.insert(e.orig)) // a flow to itself is in both dumps
            .map(|e| Flow {
                protocol: e.orig.proto,
                src: e.orig.src,
                dst: e.orig.dst,
                src_port: ported(e.orig.proto).then_some(e.orig.sport),
                dst_port: ported(e.orig.proto).then_some(e.orig.dport),
            })
            .collect())
    }

    fn forget_host_flows(&self, addr: IpAddr) {
        let ct = self.cleanup_ct.clone();
        self.reaper.later(move || {
            let gone = ct
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .delete_by_addr(addr);
            if let Err(e) = gone {
                tracing::warn!(%addr, error = %e, "could not delete tracked connections");
            }
        });
    }

    fn delete_flows(&self, netns: Option<&Path>, flows: &[Flow]) -> Result<usize> {
        self.with_conntrack(netns, |ct| {
            let mut removed = 0;
            for f in flows {
                let t = Tuple {
                    src: f.src,
                    dst: f.dst,
                    proto: f.protocol,
                    sport: f.src_port.unwrap_or(0),
                    dport: f.dst_port.unwrap_or(0),
                };
                removed += ct.delete_flow(&t)?;
            }
            Ok(removed)
        })
    }
}
