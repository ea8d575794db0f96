//! From engine values to the API's presentation types, and from API
//! requests to the model's raw specs. No validation happens here: the model
//! does it, with errors that name the field.

use bulkhead_api::{
    AclCounterInfo, AclInfo, AclStatsInfo, EndpointInfo, NamespaceInfo, NetworkInfo,
    PortMappingInfo, TraceHop, TraceResult,
};
use bulkhead_engine::trace::Target;
use bulkhead_engine::{EndpointRecord, RuleCounters, TraceReport};
use bulkhead_model::{AclRule, Namespace, Network};
use bulkhead_policy::EnforcementPoint;

pub fn network(n: &Network, endpoints: usize) -> NetworkInfo {
    NetworkInfo {
        id: n.id.to_string(),
        name: n.name.to_string(),
        driver: n.driver.to_string(),
        subnets: n.subnets.iter().map(ToString::to_string).collect(),
        gateway: n.gateway.map(|g| g.to_string()),
        uplink: n.uplink.as_ref().map(ToString::to_string),
        vni: n.vni,
        acl_profile: n.acl_profile.to_string(),
        endpoints: u32::try_from(endpoints).unwrap_or(u32::MAX),
    }
}

pub fn namespace(n: &Namespace, endpoints: Vec<String>, adopted: bool) -> NamespaceInfo {
    NamespaceInfo {
        id: n.id.to_string(),
        name: n.name.to_string(),
        compartment_id: n.compartment_id,
        isolation: n.isolation.to_string(),
        netns_path: n.netns_path.as_ref().map(|p| p.display().to_string()),
        endpoints,
        containers: n.containers.clone(),
        adopted,
    }
}

fn split(s: String) -> Vec<String> {
    if s.is_empty() {
        Vec::new()
    } else {
        s.split(',').map(str::to_owned).collect()
    }
}

pub fn acl(r: &AclRule) -> AclInfo {
    AclInfo {
        id: r.id.to_string(),
        direction: r.direction.to_string(),
        action: r.action.to_string(),
        protocol: r.protocol.to_string(),
        local_ports: split(r.local_ports.to_string()),
        remote_ports: split(r.remote_ports.to_string()),
        local_addresses: split(r.local_addresses.to_string()),
        remote_addresses: split(r.remote_addresses.to_string()),
        priority: r.priority,
        rule_type: r.rule_type.to_string(),
    }
}

/// An endpoint's rules and counters (`acl ls --stats`); points as the
/// CLI's `--rule-type` names them (`host`, `switch`).
pub fn acl_stats(acls: &[AclRule], counters: &[RuleCounters]) -> AclStatsInfo {
    AclStatsInfo {
        acls: acls.iter().map(acl).collect(),
        counters: counters
            .iter()
            .map(|c| AclCounterInfo {
                rule: c.rule.clone(),
                default: c.default,
                point: match c.point {
                    EnforcementPoint::HostFirewall => "host".into(),
                    EnforcementPoint::SwitchPort => "switch".into(),
                },
                direction: c.direction.to_string(),
                packets: c.packets,
                bytes: c.bytes,
            })
            .collect(),
    }
}

pub fn endpoint(e: &EndpointRecord, network: &str, namespace: &str) -> EndpointInfo {
    EndpointInfo {
        id: e.id.to_string(),
        name: e.name.to_string(),
        network: network.to_owned(),
        namespace: namespace.to_owned(),
        ip_address: e.ip_address.to_string(),
        mac_address: e.mac_address.to_string(),
        switch_port: e.switch_port.to_string(),
        ifname: Some(e.ifname.to_string()),
        port_mappings: e
            .port_mappings
            .iter()
            .map(|m| PortMappingInfo {
                protocol: m.protocol.to_string(),
                host_ip: m.host_ip.map(|ip| ip.to_string()),
                host_port: m.host_port,
                container_port: m.container_port,
            })
            .collect(),
        acl_mode: e.acl_mode.to_string(),
        acls: e.acls.iter().map(acl).collect(),
        container_id: e.container_id.clone(),
    }
}

fn verdict(v: bulkhead_policy::Verdict) -> String {
    match v {
        bulkhead_policy::Verdict::Allow => "allow".into(),
        bulkhead_policy::Verdict::Block => "block".into(),
    }
}

/// A trace report as the API shows it: one hop per step.
pub fn trace(t: &TraceReport) -> TraceResult {
    let stage = |s: &bulkhead_engine::TraceStep| {
        serde_json::to_value(s.stage)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    let target = match &t.target {
        Target::Endpoint(n) => format!("endpoint {n}"),
        Target::Host => "host".into(),
        Target::Network(n) => format!("network {n}"),
        Target::Outside => "outside".into(),
    };
    let port = t
        .delivered_port
        .map(|p| format!(":{p}"))
        .unwrap_or_default();
    TraceResult {
        verdict: verdict(t.verdict),
        hops: t
            .steps
            .iter()
            .map(|s| TraceHop {
                stage: stage(s),
                point: s.point.to_owned(),
                location: match s.direction {
                    Some(d) => format!("{} {d}", s.location),
                    None => s.location.clone(),
                },
                rule: s.rule.clone(),
                verdict: verdict(s.verdict),
            })
            .collect(),
        target,
        delivered: format!("{} -> {}{port}", t.delivered_from, t.delivered_to),
    }
}
