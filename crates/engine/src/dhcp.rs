//! Which endpoints get DHCP and what they are told (the server itself is
//! the dataplane's, see `bulkhead_dataplane::dhcp` and
//! `docs/adr/0007-dhcp.md`).
//!
//! Contract: every IPv4 endpoint of a `vm` namespace has a server on its
//! TAP from the moment its create returns until its delete starts, on every
//! driver, and after a reconcile (daemon restart). The guest is told the
//! endpoint's address and prefix, the network's IPv4 gateway as its router,
//! and no name servers (bulkhead networks carry no DNS configuration; a
//! guest keeps its own resolver settings). IPv6 vm endpoints get none.

use std::net::IpAddr;

use bulkhead_dataplane::dhcp::{DhcpLease, LEASE_SECS};
use bulkhead_model::{Endpoint, Isolation, Namespace, Network};

use crate::state::State;

/// The lease of `endpoint`, if it is served.
pub(crate) fn lease_of(
    endpoint: &Endpoint,
    network: &Network,
    namespace: &Namespace,
) -> Option<DhcpLease> {
    let IpAddr::V4(address) = endpoint.ip_address.addr else {
        return None;
    };
    if namespace.isolation != Isolation::Vm {
        return None;
    }
    let gateway = match network.gateway {
        Some(IpAddr::V4(g)) => Some(g),
        _ => None,
    };
    Some(DhcpLease {
        port: endpoint.switch_port.to_string(),
        mac: endpoint.mac_address.0,
        address,
        prefix: endpoint.ip_address.prefix,
        gateway,
        dns: Vec::new(),
        lease_secs: LEASE_SECS,
    })
}

/// The leases of every served endpoint of `state`.
pub(crate) fn leases(state: &State) -> Vec<DhcpLease> {
    state
        .endpoints
        .values()
        .filter_map(|e| {
            lease_of(
                &e.endpoint,
                state.networks.get(&e.network)?,
                state.namespaces.get(&e.namespace)?,
            )
        })
        .collect()
}
