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

#[cfg(test)]
mod tests {
    use bulkhead_model::{EndpointSpec, NamespaceSpec};

    use crate::test_kit::engine;

    /// The orchestration on the fake kernel: a vm endpoint is served from
    /// create to delete and again after a reconcile; a process endpoint
    /// never is. (The packets are `tests/e2e_dhcp.rs`.)
    #[test]
    fn vm_endpoints_are_served_from_create_to_delete_and_after_reconcile() {
        let (e, kernel) = engine("10.7.0.0/24", &["p"]);
        e.create_namespace(NamespaceSpec {
            name: "v".into(),
            isolation: Some("vm".into()),
            ..Default::default()
        })
        .expect("vm namespace");
        let spec = |name: &str, ns: &str| EndpointSpec {
            name: name.into(),
            network: "n".into(),
            namespace: ns.into(),
            ..Default::default()
        };
        let vm = e.create_endpoint(spec("vm", "v")).expect("vm endpoint");
        e.create_endpoint(spec("pr", "p"))
            .expect("process endpoint");
        let leases = kernel.dhcp_leases();
        assert_eq!(leases.len(), 1, "{leases:?}");
        let l = &leases[vm.switch_port.as_str()];
        assert_eq!(
            (l.mac, l.prefix, l.lease_secs),
            (vm.mac_address.0, 24, 3600)
        );
        assert_eq!(std::net::IpAddr::V4(l.address), vm.ip_address.addr);
        assert_eq!(
            l.gateway.map(std::net::IpAddr::V4),
            e.network("n").unwrap().gateway
        );
        assert!(l.dns.is_empty());
        e.reconcile().expect("reconcile");
        assert_eq!(kernel.dhcp_leases().len(), 1);
        e.delete_endpoint("vm").expect("delete");
        assert!(kernel.dhcp_leases().is_empty());
    }
}
