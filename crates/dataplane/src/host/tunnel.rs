//! l2tunnel's policy routing: endpoint traffic leaves by the uplink, even
//! to an endpoint of the same host, and comes back through the LAN switch
//! (hairpin).
//!
//! ```text
//! priority B:   iif <uplink> lookup main      # what comes back is delivered
//! priority B:   iif lo lookup main            # the host's own traffic is not
//! priority B:   fwmark DNAT/DNAT lookup main  # published-port connections
//! priority B+1: from <subnet> lookup <table>  # endpoint traffic
//! table <table>: <subnet> dev <uplink>; default via <router> dev <uplink>
//! ```
//!
//! A connection a published port DNATed (marked [`DNAT_MARK`] by the nat
//! table) is delivered by the host: its packets never enter the fabric,
//! where the second pass would meet conntrack with another tuple.
//!
//! Contract: four rules and at most two routes per network, whatever the
//! number of endpoints (B = 20000 + 2 × (table mod 4096), below main's
//! 32766); an endpoint's address resolves on the uplink to the uplink's own
//! MAC (a permanent neighbour, see `l2.rs`), so the frame goes to the LAN
//! switch and back. Adding is idempotent; removing ignores what is gone.

use crate::kernel::KernelError;
use crate::kernel::{Result, SwitchKind, SwitchSpec, DNAT_MARK};
use crate::rtnl::{Batch, Route, RoutingRule};

use super::{err, HostKernel};

const LOOKUP_MAIN: u32 = 254;

impl HostKernel {
    pub(super) fn tunnel_routing(&self, spec: &SwitchSpec, add: bool) -> Result<()> {
        let SwitchKind::Tunnel {
            uplink,
            subnet,
            router,
            table,
        } = &spec.kind
        else {
            return Ok(());
        };
        let v4 = subnet.0.is_ipv4();
        let base = 20_000 + 2 * (table % 4096);
        let rules = [
            RoutingRule {
                priority: base,
                table: LOOKUP_MAIN,
                v4,
                src: None,
                iif: Some(uplink.clone()),
                fwmark: None,
            },
            RoutingRule {
                priority: base,
                table: LOOKUP_MAIN,
                v4,
                src: None,
                iif: Some("lo".into()),
                fwmark: None,
            },
            RoutingRule {
                priority: base,
                table: LOOKUP_MAIN,
                v4,
                src: None,
                iif: None,
                fwmark: Some(DNAT_MARK),
            },
            RoutingRule {
                priority: base + 1,
                table: *table,
                v4,
                src: Some(*subnet),
                iif: None,
                fwmark: None,
            },
        ];
        let mut rtnl = self.rtnl();
        let mut routes = Vec::new();
        if add {
            let dev = rtnl
                .link_index(uplink)
                .map_err(err)?
                .ok_or_else(|| KernelError::new(format!("uplink {uplink:?}: no such interface")))?;
            let mut net = Route::to_net(subnet.0, subnet.1, dev);
            net.table = Some(*table);
            routes.push(net);
            if let Some(gw) = router {
                let mut def = Route::default_via(*gw, dev, false);
                def.table = Some(*table);
                routes.push(def);
            }
        }
        for r in &rules {
            let mut b = Batch::new();
            if add {
                b.add_rule(r);
            } else {
                b.delete_rule(r);
            }
            match rtnl.execute(&b) {
                Err(e) if !(e.is_exists() || e.is_not_found()) => return Err(err(e)),
                _ => {}
            }
        }
        for r in &routes {
            let mut b = Batch::new();
            b.add_route(r);
            match rtnl.execute(&b) {
                Err(e) if !e.is_exists() => return Err(err(e)),
                _ => {}
            }
        }
        // Removing: the table's routes are deleted one by one (absent is fine).
        if !add {
            if let Ok(Some(dev)) = rtnl.link_index(uplink) {
                let mut net = Route::to_net(subnet.0, subnet.1, dev);
                net.table = Some(*table);
                let mut b = Batch::new();
                b.delete_route(&net);
                if let Some(gw) = router {
                    let mut def = Route::default_via(*gw, dev, false);
                    def.table = Some(*table);
                    b.delete_route(&def);
                }
                let _ = rtnl.execute(&b);
            }
        }
        Ok(())
    }
}
