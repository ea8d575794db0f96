//! `trace`: the policy evaluator run on the endpoints' real configuration,
//! naming each enforcement point on the path from one side to the other and
//! the rule that decided there.

use std::net::IpAddr;

use bulkhead_model::{Direction, Protocol};
use bulkhead_policy::{
    evaluate, CtState, Decider, EndpointPolicy, EnforcementPoint, Packet, Verdict,
};
use serde::Serialize;

use crate::error::{EngineError, Result};
use crate::records::EndpointRecord;
use crate::state::State;
use crate::Engine;

/// One enforcement point on the path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TraceHop {
    /// `host_firewall` or `switch_port`.
    pub point: &'static str,
    /// The endpoint whose point this is, and which way the packet crosses it.
    pub endpoint: String,
    pub direction: Direction,
    /// A custom rule id or the named default rule.
    pub rule: String,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TraceReport {
    pub from: IpAddr,
    pub to: IpAddr,
    pub protocol: Protocol,
    pub port: Option<u16>,
    pub hops: Vec<TraceHop>,
    pub verdict: Verdict,
}

fn decider_name(d: &Decider) -> String {
    match d {
        Decider::Custom(id) => id.to_string(),
        Decider::Default(name) => (*name).to_owned(),
        Decider::Stateful => "stateful".into(),
        Decider::NotProgrammable => "not-programmable".into(),
    }
}

/// An endpoint by name or by address, or a plain address.
fn resolve<'a>(
    state: &'a State,
    field: &str,
    value: &str,
) -> Result<(IpAddr, Option<&'a EndpointRecord>)> {
    if let Ok(e) = state.endpoint(value) {
        return Ok((e.ip_address.addr, Some(e)));
    }
    let ip = bulkhead_model::addr::parse_ip(field, value).map_err(|_| {
        bulkhead_model::InvalidValue::new(field, value, "an endpoint name or an IP address")
    })?;
    Ok((
        ip,
        state.endpoints.values().find(|e| e.ip_address.addr == ip),
    ))
}

fn policy_of(state: &State, e: &EndpointRecord) -> Result<EndpointPolicy> {
    let network = state
        .networks
        .get(&e.network)
        .ok_or_else(|| EngineError::not_found("network", e.network.to_string()))?;
    let ns = state
        .namespaces
        .get(&e.namespace)
        .ok_or_else(|| EngineError::not_found("namespace", e.namespace.to_string()))?;
    Ok(EndpointPolicy::from_endpoint(
        network,
        ns.isolation,
        &e.to_endpoint(),
    )?)
}

impl Engine {
    pub fn trace(
        &self,
        from: &str,
        to: &str,
        protocol: &str,
        port: Option<&str>,
    ) -> Result<TraceReport> {
        let protocol = Protocol::parse("protocol", protocol)?;
        let Some(number) = protocol.number() else {
            return Err(EngineError::Invalid(bulkhead_model::InvalidValue::new(
                "protocol",
                "any",
                "one protocol: a trace follows one packet",
            )));
        };
        let port = port
            .map(|p| bulkhead_model::port::parse_port_number("port", p))
            .transpose()?;
        let inner = self.lock();
        let state = &inner.state;
        let (src, from_ep) = resolve(state, "from", from)?;
        let (dst, to_ep) = resolve(state, "to", to)?;
        let mut hops = Vec::new();
        let legs = [
            (
                from_ep,
                Direction::Out,
                [EnforcementPoint::HostFirewall, EnforcementPoint::SwitchPort],
            ),
            (
                to_ep,
                Direction::In,
                [EnforcementPoint::SwitchPort, EnforcementPoint::HostFirewall],
            ),
        ];
        for (endpoint, direction, points) in legs {
            let Some(e) = endpoint else { continue };
            let policy = policy_of(state, e)?;
            let mut packet = Packet::new(direction, src, dst, number);
            if protocol.has_ports() {
                packet = packet.with_ports(49152, port.unwrap_or(0));
            }
            packet.ct = CtState::New;
            for point in points.into_iter().filter(|p| policy.has_point(*p)) {
                let d = evaluate(&policy, point, &packet);
                hops.push(TraceHop {
                    point: point.as_str(),
                    endpoint: e.name.to_string(),
                    direction,
                    rule: decider_name(&d.decided_by),
                    verdict: d.verdict,
                });
            }
        }
        let verdict = if hops.iter().any(|h| h.verdict == Verdict::Block) {
            Verdict::Block
        } else {
            Verdict::Allow
        };
        Ok(TraceReport {
            from: src,
            to: dst,
            protocol,
            port,
            hops,
            verdict,
        })
    }
}
