//! Support of `e2e_trace.rs`: the world (networks, endpoints, nodes), the
//! seeded generator and the real probes.
#![allow(dead_code)]

pub mod gen;
pub mod probes;

use std::net::{IpAddr, Ipv4Addr};

use bulkhead_engine::EndpointOptions;
use bulkhead_model::{EndpointSpec, NamespaceSpec};

use crate::common::{wait_up, Harness};

/// An endpoint `name` in its own namespace: `ip` (or IPAM's), published
/// ports, ACL mode. Returns its address and namespace pin.
pub fn endpoint(
    h: &Harness,
    name: &str,
    network: &str,
    ip: Option<&str>,
    publish: &[&str],
    mode: &str,
) -> (Ipv4Addr, std::path::PathBuf) {
    let ns = h
        .engine
        .create_namespace(NamespaceSpec {
            name: name.into(),
            isolation: None,
        })
        .unwrap_or_else(|e| panic!("create namespace {name}: {e}"));
    let ep = h
        .engine
        .create_endpoint(
            EndpointSpec {
                name: name.into(),
                network: network.into(),
                namespace: name.into(),
                ip: ip.map(Into::into),
                publish: publish.iter().map(|s| (*s).to_owned()).collect(),
                acl_mode: Some(mode.into()),
                ..Default::default()
            },
            EndpointOptions::default(),
        )
        .unwrap_or_else(|e| panic!("create endpoint {name}: {e}"));
    wait_up(&format!("{}{name}", h.prefix), ep.ifname.as_str());
    wait_up(h.host_name(), ep.switch_port.as_str());
    let IpAddr::V4(addr) = ep.ip_address.addr else {
        panic!("{name}: not IPv4")
    };
    (addr, ns.netns_path.clone())
}
