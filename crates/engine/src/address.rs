//! An endpoint's address as the user sees its refusals: a requested `ip`
//! is checked against the subnet the network allocates from (its first),
//! and the IPAM's refusals become the engine's error kinds with one line
//! naming the field `ip`, the value and what is allowed. Bad values are
//! `Invalid` (HTTP 400: wrong family, outside the subnet, reserved); a
//! good value the network cannot give now is `Conflict` (HTTP 409: in use,
//! exhausted). Anything else from the store stays a store error.

use std::net::IpAddr;

use bulkhead_model::{Cidr, Id, InvalidValue, Network};
use bulkhead_store::StoreError;

use crate::error::{EngineError, Result};
use crate::state::State;

/// The subnet `network`'s addresses come from (the IPAM pool's).
fn pool_subnet(network: &Network) -> Cidr {
    network.subnets[0]
}

fn within(network: &Network) -> String {
    format!(
        "{} (network {:?} allocates from it)",
        pool_subnet(network),
        network.name.as_str()
    )
}

/// Refuses a requested `ip` of the wrong family or outside the subnet the
/// network allocates from, before anything is stored.
pub(crate) fn check_requested(network: &Network, ip: IpAddr) -> Result<()> {
    let subnet = pool_subnet(network);
    if subnet.contains(ip) {
        return Ok(());
    }
    let family = if subnet.network().is_ipv4() {
        "an IPv4"
    } else {
        "an IPv6"
    };
    Err(EngineError::Invalid(InvalidValue::new(
        "ip",
        ip.to_string(),
        format!("{family} address inside {}", within(network)),
    )))
}

/// The user's view of an allocation failure in `network` (`requested` is
/// the `ip` asked for, if any).
pub(crate) fn refusal(
    e: EngineError,
    state: &State,
    network: &Network,
    requested: Option<IpAddr>,
) -> EngineError {
    let EngineError::Store(store) = e else {
        return e;
    };
    let value = requested.map_or_else(|| "(none)".to_owned(), |ip| ip.to_string());
    let invalid = |ip: IpAddr, allowed: String| {
        EngineError::Invalid(InvalidValue::new("ip", ip.to_string(), allowed))
    };
    match store {
        StoreError::NotInSubnet { ip, subnet } => {
            invalid(ip, format!("an address inside {subnet} (network {:?})", network.name.as_str()))
        }
        StoreError::Reserved { ip, what, .. } => invalid(
            ip,
            format!(
                "an address of {} other than its network address, broadcast address and gateway ({ip} is the {what})",
                pool_subnet(network)
            ),
        ),
        StoreError::AddressInUse { ip, owner, .. } => {
            // The owner is the holding endpoint's id: name it.
            let holder = Id::parse("owner", &owner)
                .ok()
                .and_then(|id| state.endpoints.get(&id))
                .map_or(owner, |e| format!("endpoint {:?}", e.name.as_str()));
            EngineError::Conflict(format!(
                "ip {:?}: in use by {holder}; allowed: a free address of {}, or none to allocate one",
                ip.to_string(),
                within(network)
            ))
        }
        StoreError::Exhausted { .. } => EngineError::Conflict(format!(
            "ip {value:?}: no free address left in {}; an address is free again once an endpoint of the network is removed",
            within(network)
        )),
        other => EngineError::Store(other),
    }
}

#[cfg(test)]
mod tests {
    use bulkhead_model::{EndpointSpec, NetworkSpec};

    use crate::{test_kit, EngineError};

    fn spec(name: &str, network: &str, ip: Option<&str>) -> EndpointSpec {
        EndpointSpec {
            name: name.into(),
            network: network.into(),
            namespace: "x".into(),
            ip: ip.map(Into::into),
            ..Default::default()
        }
    }

    /// Each refusal: its kind, one line naming `ip` and the value, and
    /// nothing stored or asked of the kernel.
    #[test]
    fn refusals_keep_their_meaning_and_change_nothing() {
        let (e, k) = test_kit::engine("10.77.0.0/24", &["x"]);
        e.create_network(NetworkSpec {
            name: "dual".into(),
            driver: "nat".into(),
            subnets: vec!["10.78.0.0/24".into(), "fd00:78::/64".into()],
            ..Default::default()
        })
        .expect("dual-stack network");
        e.create_endpoint(spec("a", "n", Some("10.77.0.9")))
            .expect("a");
        let cases = [
            (
                spec("b", "n", Some("10.77.0.9")),
                true,
                "in use by endpoint \"a\"",
            ),
            (
                spec("b", "n", Some("fd00::5")),
                false,
                "an IPv4 address inside 10.77.0.0/24",
            ),
            (
                spec("b", "dual", Some("fd00:78::5")),
                false,
                "an IPv4 address inside 10.78.0.0/24",
            ),
            (
                spec("b", "n", Some("10.78.0.5")),
                false,
                "inside 10.77.0.0/24",
            ),
            (
                spec("b", "n", Some("10.77.0.1")),
                false,
                "10.77.0.1 is the gateway",
            ),
            (
                spec("b", "n", Some("10.77.0.255")),
                false,
                "is the broadcast address",
            ),
            (
                spec("b", "n", Some("10.77.0.0")),
                false,
                "is the network address",
            ),
        ];
        let calls = k.calls().len();
        let before = e.endpoints();
        for (s, conflict, words) in cases {
            let ip = s.ip.clone().unwrap_or_default();
            let err = e.create_endpoint(s).expect_err(&ip);
            let line = err.to_string();
            assert_eq!(matches!(err, EngineError::Conflict(_)), conflict, "{line}");
            if !conflict {
                assert!(matches!(err, EngineError::Invalid(_)), "{line}");
            }
            assert!(
                line.contains("ip") && line.contains(&ip) && line.contains(words),
                "{ip}: {line}"
            );
            assert_eq!(line.lines().count(), 1, "{line}");
        }
        assert_eq!(e.endpoints(), before, "nothing stored");
        assert_eq!(k.calls().len(), calls, "nothing asked of the kernel");
    }

    #[test]
    fn an_exhausted_subnet_is_a_conflict() {
        // A /30: network, gateway, one host, broadcast.
        let (e, _) = test_kit::engine("10.79.0.0/30", &["x"]);
        let a = e.create_endpoint(spec("a", "n", None)).expect("a");
        assert_eq!(a.ip_address.addr.to_string(), "10.79.0.2");
        let err = e.create_endpoint(spec("b", "n", None)).expect_err("full");
        assert!(matches!(err, EngineError::Conflict(_)), "{err}");
        assert_eq!(
            err.to_string(),
            "ip \"(none)\": no free address left in 10.79.0.0/30 (network \"n\" allocates from it); \
             an address is free again once an endpoint of the network is removed"
        );
        e.delete_endpoint("a").expect("delete a");
        e.create_endpoint(spec("b", "n", None))
            .expect("b takes the freed address");
    }
}
