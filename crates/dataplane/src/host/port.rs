//! Switch ports on the real kernel: making one (a veth whose peer is born
//! in the endpoint's namespace and configured there, or a persistent TAP),
//! retiring one at once and destroying retired ones on the reaper's thread.
//!
//! Contract: a port is made down (fail closed; `enable_port` brings it into
//! service); retiring takes it out of service without the kernel's RCU
//! waits, which the background removal pays once for every retired port
//! ([`RETIRED_GROUP`]).

use std::path::Path;
use std::time::Instant;

use super::{err, HostKernel};
use crate::kernel::{KernelError, PortAttach, PortKind, PortSpec, Result, RETIRED_GROUP};
use crate::rtnl::{Batch, Route, Rtnl, TapSpec, VethSpec};

/// Queues the creation of a switch port's device in `b`: a veth whose peer
/// is made in the endpoint namespace, or a persistent TAP (created at once:
/// TUN devices are not made over rtnetlink). `mtu` applies to both ends.
/// The port is made down (fail closed); [`Kernel::enable_port`] brings it up.
pub(super) fn port_device(
    rtnl: &mut Rtnl,
    b: &mut Batch,
    spec: &PortSpec,
    mtu: Option<u32>,
) -> Result<()> {
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
                multi_queue: spec.tap.multi_queue,
                owner: spec.tap.owner,
                group: spec.tap.group,
            })
            .map_err(err)?;
            if let Some(mtu) = mtu {
                b.set_mtu(port, mtu);
            }
        }
    }
    Ok(())
}

impl HostKernel {
    /// The peer side of a veth: up, addressed, default route via the gateway.
    pub(super) fn configure_peer(&self, netns: &Path, ifname: &str, spec: &PortSpec) -> Result<()> {
        // The namespace's kept socket when this kernel made it, else one
        // for this call (rtnetlink closes without an RCU wait).
        let kept = self.owned.get(netns);
        let mut guard = kept.as_ref().map(super::owned::lock);
        let mut opened = None;
        let ns = match guard.as_mut() {
            Some(g) => &mut g.rtnl,
            None => opened.insert(Rtnl::in_netns(netns).map_err(err)?),
        };
        // Found while still down: once up, the peer has no carrier until
        // the port comes up, and a link query in between makes the kernel
        // apply that carrier loss at once (an expedited RCU grace period
        // under `rtnl_lock`, ~1.5 ms) instead of letting the port's carrier
        // cancel it.
        let index = ns
            .link(ifname)
            .map_err(err)?
            .map(|l| l.index)
            .ok_or_else(|| KernelError::new(format!("find link {ifname}: gone")))?;
        let mut b = Batch::new();
        b.set_up(ifname);
        b.add_address(index, spec.address, spec.prefix);
        if let Some(gw) = spec.gateway {
            if gw.is_ipv4() == spec.address.is_ipv4() {
                b.add_route(&Route::default_via(gw, index, false));
            }
        }
        ns.execute(&b).map_err(err)
    }

    pub(super) fn create_port_steps(&self, spec: &PortSpec) -> Result<()> {
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
            self.sysctl
                .write_all(&[(proxy.as_str(), "1"), (delay.as_str(), "0")])
                .map_err(err)?;
        } else {
            self.sysctl.write(&proxy, "1").map_err(err)?;
        }
        drop(rtnl);
        self.no_router_role(port)?;
        if let PortKind::Veth { netns, ifname } = &spec.kind {
            self.configure_peer(netns, ifname, spec)?;
        }
        Ok(())
    }

    pub(super) fn retire_port_steps(&self, spec: &PortSpec) -> Result<()> {
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

    pub(super) fn remove_port_in_background(&self, name: &str) {
        self.sweeper.retire(name);
    }
}

/// The sweeper's destruction of retired ports ([`super::sweep`]), on the
/// host socket kept for clean-up: every port in [`RETIRED_GROUP`] at once
/// (one round of RCU waits), then each name given, in case one was never
/// retired.
pub(super) fn destroy_retired(mut rtnl: Rtnl) -> super::sweep::Destroy {
    Box::new(move |names: &[String]| {
        let started = Instant::now();
        let mut all = Batch::new();
        all.delete_group(RETIRED_GROUP);
        let mut done = vec![("retired ports", rtnl.execute(&all))];
        for name in names {
            let mut one = Batch::new();
            one.delete_link(name);
            done.push((name.as_str(), rtnl.execute(&one)));
        }
        for (what, result) in done {
            match result {
                Err(e) if !e.is_not_found() => {
                    tracing::warn!(port = %what, error = %e, "could not remove switch port");
                }
                _ => {}
            }
        }
        tracing::debug!(
            ports = names.len(),
            took_ms = started.elapsed().as_secs_f64() * 1e3,
            "retired switch ports removed"
        );
    })
}
