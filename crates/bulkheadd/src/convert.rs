//! From engine values to the API's presentation types (`*Info`). Requests
//! need no conversion: the API's bodies are the model's raw specs. Values
//! become text through the model's one text form of each object
//! (`AclRuleSpec::from`, `NetworkSpec::from`), not field by field here.

use bulkhead_api::{
    AclCounterInfo, AclInfo, AclStatsInfo, EndpointInfo, NamespaceInfo, NetworkInfo,
    PortMappingInfo, TapInfo, TraceHop, TraceResult,
};
use bulkhead_engine::trace::Target;
use bulkhead_engine::{EndpointRecord, RuleCounters, TraceReport};
use bulkhead_model::{AclRule, AclRuleSpec, Namespace, Network, NetworkSpec};
use bulkhead_policy::EnforcementPoint;

/// A network as the API shows it: the model's text form of the network
/// ([`NetworkSpec::from`]) with its id, VNI number and endpoint count.
pub fn network(n: &Network, endpoints: usize) -> NetworkInfo {
    let text = NetworkSpec::from(n);
    NetworkInfo {
        id: n.id.to_string(),
        name: text.name,
        driver: text.driver,
        subnets: text.subnets,
        gateway: text.gateway,
        uplink: text.uplink,
        vni: n.vni,
        acl_profile: text.acl_profile.unwrap_or_default(),
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

/// A rule as the API shows it: the model's text form of the rule
/// ([`AclRuleSpec::from`]) with its lists split.
pub fn acl(r: &AclRule) -> AclInfo {
    let text = AclRuleSpec::from(r);
    let list = |v: Option<String>| -> Vec<String> {
        v.map(|t| t.split(',').map(str::to_owned).collect())
            .unwrap_or_default()
    };
    AclInfo {
        id: text.id.unwrap_or_default(),
        direction: text.direction,
        action: text.action,
        protocol: text.protocol.unwrap_or_default(),
        local_ports: list(text.local_ports),
        remote_ports: list(text.remote_ports),
        local_addresses: list(text.local_addresses),
        remote_addresses: list(text.remote_addresses),
        priority: r.priority,
        rule_type: text.rule_type.unwrap_or_default(),
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

/// An endpoint as the API shows it; `vm` when its namespace has vm
/// isolation (its switch port is a TAP, shown with its options).
pub fn endpoint(e: &EndpointRecord, network: &str, namespace: &str, vm: bool) -> EndpointInfo {
    let tap = e.tap.unwrap_or_default();
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
        tap: vm.then(|| TapInfo {
            name: e.switch_port.to_string(),
            owner: tap.owner,
            group: tap.group,
            queues: tap.queues,
        }),
        node: None,
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
