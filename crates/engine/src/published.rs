//! Checks on an endpoint's published ports before anything is stored.
//!
//! Contract: a port mapping's host IP is unspecified (`None`: every host
//! address; an explicit `0.0.0.0` or `::` is turned into `None`) or one of
//! the host namespace's own addresses as the kernel lists them now (spec
//! §9: a published port only ever captures traffic to the host). A mapping
//! bound to another address — another endpoint's, a LAN peer's, the cloud
//! metadata service's `169.254.169.254` — is refused with one line naming
//! `publish[i].host_ip`, the value and what is allowed. The DNAT rules also
//! require a local destination, so an address that leaves the host later
//! captures nothing either (`bulkhead_policy::compile::nat`). Clashes with mappings already
//! published are a conflict.

use std::net::IpAddr;

use bulkhead_dataplane::kernel::Kernel;
use bulkhead_model::{Endpoint, InvalidValue, PortMapping};

use crate::error::{EngineError, Result};
use crate::state::State;

/// How many host addresses an error lists before it stops.
const LISTED: usize = 8;

/// `mappings` with explicit unspecified host IPs made `None`, each host IP
/// checked against the host's addresses (asked only when one is bound).
pub(crate) fn check_host_ips(
    kernel: &dyn Kernel,
    mappings: Vec<PortMapping>,
) -> Result<Vec<PortMapping>> {
    let mappings: Vec<PortMapping> = mappings
        .into_iter()
        .map(|m| PortMapping {
            host_ip: m.host_ip.filter(|ip| !ip.is_unspecified()),
            ..m
        })
        .collect();
    if mappings.iter().all(|m| m.host_ip.is_none()) {
        return Ok(mappings);
    }
    let host = kernel.host_addresses().map_err(EngineError::kernel)?;
    for (i, m) in mappings.iter().enumerate() {
        match m.host_ip {
            Some(ip) if !host.contains(&ip) => {
                return Err(EngineError::Invalid(InvalidValue::new(
                    format!("publish[{i}].host_ip"),
                    ip.to_string(),
                    allowed(&host),
                )))
            }
            _ => {}
        }
    }
    Ok(mappings)
}

fn allowed(host: &[IpAddr]) -> String {
    let mut list: Vec<String> = host.iter().take(LISTED).map(ToString::to_string).collect();
    if host.len() > LISTED {
        list.push("…".into());
    }
    format!(
        "an address of this host ({}) or none (every host address)",
        list.join(", ")
    )
}

/// Refuses a mapping whose host port another endpoint already publishes
/// on the same or an overlapping host address.
pub(crate) fn check_published(state: &State, endpoint: &Endpoint) -> Result<()> {
    for m in &endpoint.port_mappings {
        for other in state.endpoints.values() {
            let clash = other.port_mappings.iter().any(|o| {
                o.protocol == m.protocol
                    && o.host_port == m.host_port
                    && (o.host_ip.is_none() || m.host_ip.is_none() || o.host_ip == m.host_ip)
            });
            if clash {
                return Err(EngineError::Conflict(format!(
                    "publish {m}: host port {}/{} is already published by endpoint {:?}",
                    m.host_port,
                    m.protocol,
                    other.name.as_str()
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bulkhead_dataplane::fake::FakeKernel;
    use bulkhead_model::EndpointSpec;
    use bulkhead_store::MemoryStore;

    use crate::{test_kit, Engine, EngineError};

    fn engine() -> (Engine, Arc<FakeKernel>) {
        let kernel = Arc::new(FakeKernel::new());
        kernel.add_host_address("192.0.2.1".parse().unwrap());
        let store = Arc::new(MemoryStore::new());
        let e = test_kit::engine_on(kernel.clone(), store, "10.77.0.0/24", &["x", "y"]);
        (e, kernel)
    }

    fn create(e: &Engine, name: &str, ns: &str, publish: &[&str]) -> crate::Result<Vec<String>> {
        e.create_endpoint(EndpointSpec {
            name: name.into(),
            network: "n".into(),
            namespace: ns.into(),
            publish: publish.iter().map(|p| (*p).to_owned()).collect(),
            ..Default::default()
        })
        .map(|ep| ep.port_mappings.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn a_host_ip_that_is_not_the_hosts_is_refused_before_anything_is_made() {
        let (e, k) = engine();
        create(&e, "a", "x", &[]).expect("a");
        let n = k.calls().len();
        for (bad, field) in [
            (vec!["10.77.0.9:18080:80"], "publish[0].host_ip"),
            (
                vec!["8080:80", "169.254.169.254:80:80"],
                "publish[1].host_ip",
            ),
            (vec!["[fd00::1]:80:80"], "publish[0].host_ip"),
        ] {
            let err = create(&e, "b", "y", &bad).expect_err("refused");
            let line = err.to_string();
            assert!(matches!(err, EngineError::Invalid(_)), "{line}");
            assert!(line.starts_with(&format!("invalid {field} ")), "{line}");
            assert!(
                line.contains("an address of this host (10.77.0.1, 127.0.0.1, 192.0.2.1, ::1)"),
                "{line}"
            );
            assert!(!line.contains('\n'));
        }
        // Only the address list was asked for: no port, no table, no record.
        assert!(k.calls()[n..]
            .iter()
            .all(|c| c.starts_with("host_addresses")));
        assert!(e.endpoint("b").is_err());
    }

    #[test]
    fn host_addresses_and_unspecified_are_accepted() {
        let (e, k) = engine();
        let n = k.calls().len();
        let got = create(&e, "a", "x", &["8080:80", "0.0.0.0:8081:81"]).expect("a");
        assert_eq!(got, ["8080:80/tcp", "8081:81/tcp"], "0.0.0.0 is unbound");
        assert!(!k.calls()[n..]
            .iter()
            .any(|c| c.starts_with("host_addresses")));
        for (name, ns, p) in [
            ("b", "y", "192.0.2.1:9000:80"),
            ("c", "y", "10.77.0.1:9001:80"),
            ("d", "y", "127.0.0.1:9002:80/udp"),
        ] {
            create(&e, name, ns, &[p]).unwrap_or_else(|err| panic!("{p}: {err}"));
        }
    }
}
