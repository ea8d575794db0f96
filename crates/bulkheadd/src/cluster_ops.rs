//! The API's cluster side: which commands go through the cluster control
//! plane ([`bulkhead_cluster::Cluster`]) and how its answers look. Without
//! `--etcd` the node commands are refused with one line saying how to join
//! a cluster; `endpoint ls --all-nodes` then lists this host's endpoints.

use bulkhead_api::{EndpointInfo, NetworkSpec, NodeInfo};
use bulkhead_cluster::keys::EndpointEntry;
use bulkhead_cluster::ops::NodeStatus;
use bulkhead_cluster::Cluster;
use bulkhead_engine::EngineError;

/// Whether `spec` asks for an overlay network (a cluster object).
pub fn is_overlay(spec: &NetworkSpec) -> bool {
    spec.driver.eq_ignore_ascii_case("overlay")
}

/// The cluster, or the refusal of a cluster command on a single host.
pub fn cluster(cluster: Option<&Cluster>) -> Result<&Cluster, EngineError> {
    cluster.ok_or_else(|| {
        EngineError::Conflict(
            "this host is not in a cluster; start bulkheadd with --etcd URL --node NAME --underlay-address IP"
                .into(),
        )
    })
}

/// Another node's endpoint as `endpoint ls --all-nodes` lists it.
pub fn remote_endpoint(e: &EndpointEntry) -> EndpointInfo {
    EndpointInfo {
        name: e.name.clone(),
        network: e.network.clone(),
        ip_address: e.ip.to_string(),
        mac_address: e.mac.clone(),
        node: Some(e.node.clone()),
        ..EndpointInfo::default()
    }
}

/// A node as `node ls` lists it.
pub fn node(n: &NodeStatus) -> NodeInfo {
    let t = bulkhead_api::time::UtcTime::from_unix_ms(n.last_seen_ms);
    NodeInfo {
        name: n.name.clone(),
        underlay_address: n.underlay.to_string(),
        state: n.state.to_owned(),
        endpoints: n.endpoints,
        last_seen: format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year, t.month, t.day, t.hour, t.minute, t.second
        ),
    }
}
