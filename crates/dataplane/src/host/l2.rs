//! The switches of the drivers other than nat, on the real kernel (see
//! `docs/drivers.md`): bridges with the uplink enslaved (transparent), a
//! VXLAN device under the bridge with static remote endpoints (overlay),
//! routed ports published on the uplink by proxy neighbour entries
//! (l2bridge, l2tunnel), bridged switch ports, and l2tunnel's policy routing.
//!
//! Contract: every function is idempotent (what exists is kept), names the
//! object it failed on, and acts only in the host namespace of its
//! [`HostKernel`]; the only host-wide settings it touches are
//! `net.bridge.bridge-nf-call-iptables` and `-ip6tables` (set to 1 when a
//! bridged switch is made: the switch-port filter needs bridged IPv4 and
//! IPv6 in the inet hooks) and the uplink's `proxy_delay` (0: proxy answers
//! for endpoints at once).
//!
//! Every device bulkhead makes that a tenant can send into (switch ports,
//! switches) is told not to learn from routers ([`HostKernel::no_router_role`]):
//! a tenant's router advertisement or redirect must not configure the host.

use crate::kernel::KernelError;
use crate::kernel::{
    PortAttach, PortKind, PortSpec, RemoteEndpoint, Result, SwitchKind, SwitchSpec,
};
use crate::rtnl::{Batch, Link, Neighbour, Rtnl, VxlanSpec};
use crate::sysctl;

use super::{err, HostKernel};

/// VXLAN over IPv4: outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8.
pub const VXLAN_OVERHEAD: u32 = 50;
/// The IANA VXLAN port.
pub const VXLAN_PORT: u16 = 4789;

fn find(rtnl: &mut Rtnl, name: &str, what: &str) -> Result<Link> {
    rtnl.link(name).map_err(err)?.ok_or_else(|| {
        KernelError::new(format!(
            "{what} {name:?}: no such interface in the host namespace"
        ))
    })
}

/// Executes `b`, taking "already exists" as done.
fn execute_idempotent(rtnl: &mut Rtnl, b: &Batch) -> Result<()> {
    match rtnl.execute(b) {
        Err(e) if !e.is_exists() => Err(err(e)),
        _ => Ok(()),
    }
}

/// Executes `b`, taking "not found" as done.
fn execute_absent(rtnl: &mut Rtnl, b: &Batch) -> Result<()> {
    match rtnl.execute(b) {
        Err(e) if !e.is_not_found() => Err(err(e)),
        _ => Ok(()),
    }
}

impl HostKernel {
    /// Bridged IPv4 and IPv6 must meet the inet hooks (br_netfilter), or
    /// the switch port filter (ACLs, by address) never sees traffic between
    /// bridge ports. Both settings are per network namespace.
    fn ensure_br_netfilter(&self) -> Result<()> {
        for key in [
            "net.bridge.bridge-nf-call-iptables",
            "net.bridge.bridge-nf-call-ip6tables",
        ] {
            match self.sysctl.read(key) {
                Ok(v) if v == "1" => {}
                Ok(_) => self.sysctl.write(key, "1").map_err(err)?,
                Err(e) => {
                    return Err(KernelError::new(format!(
                        "{e} (is the br_netfilter module loaded?)"
                    )))
                }
            }
        }
        Ok(())
    }

    /// `dev` (a switch port or switch of this host) ignores router
    /// advertisements and ICMP redirects: a tenant must not give the host
    /// an address, a route or a default router. Called before a port's
    /// peer is up, so before the port passes any traffic; a kernel without
    /// IPv6 has no IPv6 settings to write.
    pub(super) fn no_router_role(&self, dev: &str) -> Result<()> {
        let v4 = format!("net/ipv4/conf/{dev}/accept_redirects");
        let ra = format!("net/ipv6/conf/{dev}/accept_ra");
        let redirects = format!("net/ipv6/conf/{dev}/accept_redirects");
        let all = [
            (v4.as_str(), "0"),
            (ra.as_str(), "0"),
            (redirects.as_str(), "0"),
        ];
        match self.sysctl.write_all(&all) {
            Err(sysctl::SysctlError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound
                    && !std::path::Path::new("/proc/sys/net/ipv6").exists() =>
            {
                self.sysctl.write(&v4, "0").map_err(err)
            }
            done => done.map_err(err),
        }
    }

    /// The bridge `name`, created up if missing; its index.
    fn ensure_bridge(rtnl: &mut Rtnl, name: &str, mtu: Option<u32>) -> Result<u32> {
        let link = match rtnl.link(name).map_err(err)? {
            Some(l) => l,
            None => {
                let mut b = Batch::new();
                b.create_bridge(name);
                if let Some(mtu) = mtu {
                    b.set_mtu(name, mtu);
                }
                b.set_up(name);
                let found = rtnl.execute_and_find(&b, &[name]).map_err(err)?;
                found
                    .first()
                    .cloned()
                    .flatten()
                    .ok_or_else(|| KernelError::new(format!("find link {name}: gone")))?
            }
        };
        Ok(link.index)
    }

    pub(super) fn l2_create_switch(&self, spec: &SwitchSpec) -> Result<()> {
        let mut rtnl = self.rtnl();
        match &spec.kind {
            SwitchKind::Routed { uplink } => {
                find(&mut rtnl, uplink, "uplink")?;
                Self::ensure_bridge(&mut rtnl, &spec.name, None)?;
                drop(rtnl);
                self.proxy_at_once(uplink)?;
                self.no_router_role(&spec.name)?;
            }
            SwitchKind::Tunnel { uplink, .. } => {
                find(&mut rtnl, uplink, "uplink")?;
                Self::ensure_bridge(&mut rtnl, &spec.name, None)?;
                drop(rtnl);
                self.proxy_at_once(uplink)?;
                self.no_router_role(&spec.name)?;
                self.tunnel_routing(spec, true)?;
            }
            SwitchKind::Bridge { uplink } => {
                self.ensure_br_netfilter()?;
                let up = find(&mut rtnl, uplink, "uplink")?;
                let bridge = Self::ensure_bridge(&mut rtnl, &spec.name, Some(up.mtu))?;
                if up.master != Some(bridge) {
                    if up.master.is_some() {
                        return Err(KernelError::new(format!(
                            "uplink {uplink:?}: already a port of another bridge or bond"
                        )));
                    }
                    let mut b = Batch::new();
                    b.set_master(uplink, Some(bridge)).set_up(uplink);
                    rtnl.execute(&b).map_err(err)?;
                }
                drop(rtnl);
                self.no_router_role(&spec.name)?;
            }
            SwitchKind::Overlay { vxlan, uplink, vni } => {
                self.ensure_br_netfilter()?;
                let up = find(&mut rtnl, uplink, "uplink")?;
                let mtu = up.mtu.saturating_sub(VXLAN_OVERHEAD);
                let bridge = Self::ensure_bridge(&mut rtnl, &spec.name, Some(mtu))?;
                if rtnl.link(vxlan).map_err(err)?.is_none() {
                    let mut b = Batch::new();
                    b.create_vxlan(&VxlanSpec {
                        name: vxlan,
                        vni: *vni,
                        local: None,
                        underlay: Some(up.index),
                        port: VXLAN_PORT,
                        learning: false,
                        proxy: true,
                        mtu: Some(mtu),
                    })
                    .set_master(vxlan, Some(bridge))
                    .set_up(vxlan);
                    rtnl.execute(&b).map_err(err)?;
                }
                drop(rtnl);
                self.no_router_role(&spec.name)?;
            }
        }
        Ok(())
    }

    pub(super) fn l2_delete_switch(&self, spec: &SwitchSpec) -> Result<()> {
        let mut errors = Vec::new();
        if let SwitchKind::Tunnel { .. } = spec.kind {
            if let Err(e) = self.tunnel_routing(spec, false) {
                errors.push(e.to_string());
            }
        }
        let mut rtnl = self.rtnl();
        if let SwitchKind::Overlay { vxlan, .. } = &spec.kind {
            let mut b = Batch::new();
            b.delete_link(vxlan);
            if let Err(e) = execute_absent(&mut rtnl, &b) {
                errors.push(e.to_string());
            }
        }
        // Deleting the bridge releases an enslaved uplink.
        let mut b = Batch::new();
        b.delete_link(&spec.name);
        if let Err(e) = execute_absent(&mut rtnl, &b) {
            errors.push(e.to_string());
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(KernelError::new(errors.join("; ")))
        }
    }

    /// A switch port enslaved to `bridge`, with the bridge's MTU.
    pub(super) fn create_bridged_port(&self, spec: &PortSpec, bridge: &str) -> Result<()> {
        let port = spec.switch_port.as_str();
        let mut rtnl = self.rtnl();
        let br = find(&mut rtnl, bridge, "bridge")?;
        let mut b = Batch::new();
        super::port::port_device(&mut rtnl, &mut b, spec, Some(br.mtu))?;
        b.set_master(port, Some(br.index));
        rtnl.execute(&b).map_err(err)?;
        drop(rtnl);
        self.no_router_role(port)?;
        if let PortKind::Veth { netns, ifname } = &spec.kind {
            self.configure_peer(netns, ifname, spec)?;
        }
        Ok(())
    }

    /// l2bridge/l2tunnel: the uplink answers ARP for the endpoint (proxy
    /// neighbour entry, at once); l2tunnel also resolves the endpoint to the
    /// uplink's own MAC, so hairpinned frames come back to the host.
    pub(super) fn publish_on_uplink(&self, spec: &PortSpec, add: bool) -> Result<()> {
        let PortAttach::Uplink { uplink, hairpin } = &spec.attach else {
            return Ok(());
        };
        let mut rtnl = self.rtnl();
        let up = find(&mut rtnl, uplink, "uplink")?;
        let proxy = Neighbour::Proxy {
            dev: up.index,
            ip: spec.address,
        };
        let back = up.mac.filter(|_| *hairpin).map(|mac| Neighbour::Ip {
            dev: up.index,
            ip: spec.address,
            mac,
        });
        for n in std::iter::once(proxy).chain(back) {
            let mut b = Batch::new();
            if add {
                b.add_neighbour(&n);
                execute_idempotent(&mut rtnl, &b)?;
            } else {
                b.delete_neighbour(&n);
                execute_absent(&mut rtnl, &b)?;
            }
        }
        Ok(())
    }

    /// The uplink answers proxy ARP at once (the neighbour default delays
    /// each answer by up to 800 ms, stalling a LAN host's first packet).
    fn proxy_at_once(&self, uplink: &str) -> Result<()> {
        let delay = format!("net/ipv4/neigh/{uplink}/proxy_delay");
        if self.sysctl.read(&delay).map_err(err)? != "0" {
            self.sysctl.write(&delay, "0").map_err(err)?;
        }
        Ok(())
    }

    pub(super) fn l2_set_remotes(
        &self,
        vxlan: &str,
        add: &[RemoteEndpoint],
        remove: &[RemoteEndpoint],
    ) -> Result<()> {
        let mut rtnl = self.rtnl();
        let dev = find(&mut rtnl, vxlan, "vxlan")?.index;
        for r in remove {
            for n in [
                Neighbour::Ip {
                    dev,
                    ip: r.ip,
                    mac: r.mac,
                },
                Neighbour::Fdb {
                    dev,
                    mac: r.mac,
                    dst: r.host,
                },
            ] {
                let mut b = Batch::new();
                b.delete_neighbour(&n);
                execute_absent(&mut rtnl, &b)?;
            }
        }
        for r in add {
            let mut b = Batch::new();
            b.add_neighbour(&Neighbour::Fdb {
                dev,
                mac: r.mac,
                dst: r.host,
            });
            execute_idempotent(&mut rtnl, &b)?;
            let mut b = Batch::new();
            b.add_neighbour(&Neighbour::Ip {
                dev,
                ip: r.ip,
                mac: r.mac,
            });
            execute_idempotent(&mut rtnl, &b)?;
        }
        Ok(())
    }

    /// [`crate::kernel::Kernel::remotes`]: the permanent entries of the
    /// VXLAN device, neighbours joined with FDB entries by MAC.
    pub(super) fn l2_remotes(&self, vxlan: &str) -> Result<Vec<RemoteEndpoint>> {
        let mut rtnl = self.rtnl();
        let dev = find(&mut rtnl, vxlan, "vxlan")?.index;
        let entries = rtnl.permanent_neighbours(dev).map_err(err)?;
        let mut ips = Vec::new();
        let mut dsts = std::collections::BTreeMap::new();
        for n in entries {
            match n {
                Neighbour::Ip { ip, mac, .. } => ips.push((ip, mac)),
                // All-zero: a flood entry, not a remote endpoint.
                Neighbour::Fdb { mac, dst, .. } if mac != [0; 6] => {
                    dsts.insert(mac, dst);
                }
                _ => {}
            }
        }
        let none = std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
        let mut out: Vec<RemoteEndpoint> = ips
            .iter()
            .map(|&(ip, mac)| RemoteEndpoint {
                ip,
                mac,
                host: dsts.get(&mac).copied().unwrap_or(none),
            })
            .collect();
        out.extend(
            dsts.iter()
                .filter(|(mac, _)| !ips.iter().any(|(_, m)| m == *mac))
                .map(|(&mac, &host)| RemoteEndpoint {
                    ip: none,
                    mac,
                    host,
                }),
        );
        Ok(out)
    }
}
