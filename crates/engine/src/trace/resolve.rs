//! From the engine's state and a [`TraceSpec`] of strings to the pure
//! model's [`Topology`] and [`Probe`]; every bad value is an error naming
//! its field.

use std::net::{IpAddr, SocketAddr};

use bulkhead_model::addr::parse_ip;
use bulkhead_model::port::parse_port_number;
use bulkhead_model::InvalidValue;
use bulkhead_policy::packet::is_ported;

use super::path::{EpView, NetView, Origin, Probe, Topology};
use super::{TraceSpec, DEFAULT_SOURCE_PORT};
use crate::error::{EngineError, Result};
use crate::state::State;

/// The host's topology: networks, local endpoints with their policies, and
/// the host's own addresses `(address, scope)` in interface order.
pub(super) fn topology(state: &State, host: &[(IpAddr, u8)]) -> Result<Topology> {
    let ids: Vec<_> = state.networks.keys().copied().collect();
    let networks = state
        .networks
        .values()
        .map(|n| NetView {
            name: n.name.to_string(),
            driver: n.driver,
            subnets: n.subnets.clone(),
            gateway: n.gateway,
        })
        .collect();
    let mut endpoints = Vec::with_capacity(state.endpoints.len());
    for e in state.endpoints.values() {
        let policy = crate::tables::policy_of(state, e)?;
        endpoints.push(EpView {
            name: e.name.to_string(),
            network: ids.iter().position(|i| *i == e.network).unwrap_or(0),
            addresses: vec![e.ip_address.addr],
            switch_port: e.switch_port.to_string(),
            policy,
            mappings: e.port_mappings.clone(),
        });
    }
    // A port has no address: a masquerade out of it takes the host's first
    // global IPv4 address in interface order (the kernel's
    // `inet_select_addr` fallback).
    let masquerade_source = host
        .iter()
        .find(|(ip, scope)| ip.is_ipv4() && *scope == 0)
        .map(|(ip, _)| *ip);
    // The gateways bulkhead itself put on the host (nat, overlay) are the
    // host's even when the kernel could not be asked.
    let mut host_addresses: Vec<IpAddr> = host.iter().map(|(ip, _)| *ip).collect();
    for (gw, _) in state
        .networks
        .values()
        .filter_map(crate::drivers::host_gateway)
    {
        if !host_addresses.contains(&gw) {
            host_addresses.push(gw);
        }
    }
    Ok(Topology {
        networks,
        endpoints,
        host_addresses,
        masquerade_source,
    })
}

fn bad(field: &str, value: &str, allowed: &str) -> EngineError {
    EngineError::Invalid(InvalidValue::new(field, value, allowed))
}

/// `to`: an endpoint name, an IP address, or `IP:PORT` (`[IPv6]:PORT`).
fn destination(state: &State, to: &str) -> Result<(IpAddr, Option<u16>)> {
    if let Ok(e) = state.endpoint(to) {
        return Ok((e.ip_address.addr, None));
    }
    if let Ok(sa) = to.parse::<SocketAddr>() {
        return Ok((sa.ip(), Some(sa.port())));
    }
    let ip = parse_ip("to", to)
        .map_err(|_| bad("to", to, "an endpoint name, an IP address or HOST_IP:PORT"))?;
    Ok((ip, None))
}

/// The packet the query describes, in `topo`.
pub(super) fn probe(state: &State, topo: &Topology, q: &TraceSpec, protocol: u8) -> Result<Probe> {
    let (dst, to_port) = destination(state, &q.to)?;
    let port = q
        .port
        .as_deref()
        .map(|p| parse_port_number("port", p))
        .transpose()?;
    let dst_port = match (to_port, port) {
        (Some(a), Some(b)) if a != b => {
            return Err(bad(
                "port",
                &b.to_string(),
                &format!("the port of --to ({a}), or no --port"),
            ))
        }
        (a, b) => a.or(b),
    };
    let (origin, own) = if let Ok(e) = state.endpoint(&q.from) {
        let i = topo
            .endpoints
            .iter()
            .position(|v| v.name == e.name.as_str());
        (Origin::Endpoint(i.unwrap_or(0)), e.ip_address.addr)
    } else {
        let ip = parse_ip("from", &q.from)
            .map_err(|_| bad("from", &q.from, "an endpoint name or an IP address"))?;
        match topo.endpoint_at(ip) {
            Some(i) => (Origin::Endpoint(i), ip),
            None if topo.host_addresses.contains(&ip) => (Origin::Host, ip),
            None => (Origin::Outside, ip),
        }
    };
    let src = match q.source_ip.as_deref() {
        None => own,
        Some(s) if matches!(origin, Origin::Endpoint(_)) => parse_ip("source-ip", s)?,
        Some(s) => {
            return Err(bad(
                "source-ip",
                s,
                "an address, with --from naming an endpoint (the sender)",
            ))
        }
    };
    if src.is_ipv4() != dst.is_ipv4() {
        return Err(bad(
            "to",
            &q.to,
            &format!("an address of the source's family ({src})"),
        ));
    }
    let ported = is_ported(protocol);
    let src_port = q
        .source_port
        .as_deref()
        .map(|p| parse_port_number("source-port", p))
        .transpose()?;
    if !ported && (src_port.is_some() || dst_port.is_some()) {
        let given = dst_port.or(src_port).unwrap_or(0).to_string();
        return Err(bad("port", &given, "no port: the protocol has none"));
    }
    Ok(Probe {
        origin,
        src,
        dst,
        protocol,
        src_port: ported.then_some(src_port.unwrap_or(DEFAULT_SOURCE_PORT)),
        dst_port: if ported {
            Some(dst_port.unwrap_or(0))
        } else {
            None
        },
        established: q.established,
    })
}
