//! Harness for end-to-end tests of the engine on the real kernel (tier T2),
//! on the shared kit (`bulkhead-testkit`, re-exported here).
//!
//! Safety: every test builds its own throwaway "host" namespace with an
//! "outside" peer behind the uplink ([`Host::with_outside`]) and runs the
//! engine's real kernel ([`HostKernel`]) inside it, with a netns prefix
//! unique to the test (`bht<pid>x<n>-`), so parallel tests never see each
//! other's namespaces. On drop (also on panic) the harness unpins every
//! namespace with its prefix, then the kit's guards remove the outside and
//! host namespaces.
#![allow(dead_code, unused_imports)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::Arc;

pub use bulkhead_testkit::capture::*;
pub use bulkhead_testkit::cmd::*;
pub use bulkhead_testkit::lan::*;
pub use bulkhead_testkit::netns::*;
pub use bulkhead_testkit::probe::*;
pub use bulkhead_testkit::require_root;

use bulkhead_dataplane::host::HostKernel;
use bulkhead_engine::{Config, Engine};
use bulkhead_model::{AclRuleSpec, EndpointSpec, NamespaceSpec, NetworkSpec};
use bulkhead_store::MemoryStore;

/// One endpoint made through the engine, with its own namespace.
#[derive(Debug, Clone)]
pub struct Ep {
    pub name: String,
    pub ip: Ipv4Addr,
    /// The namespace's pin (`/run/netns/<prefix><name>`).
    pub ns: PathBuf,
    /// The pinned namespace name (for `ip -n`).
    pub ns_name: String,
}

impl Ep {
    pub fn addr(&self, port: u16) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(self.ip, port))
    }
}

/// One test's world: host namespace, outside peer, engine.
pub struct Harness {
    pub engine: Arc<Engine>,
    pub kernel: Arc<HostKernel>,
    pub prefix: String,
    host: Host,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("prefix", &self.prefix)
            .field("host", &self.host)
            .finish()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        // Endpoint namespaces first (by this test's unique prefix), then the
        // host guard (a field) drops: outside, then host, which takes every
        // link in it (switch ports, uplink) along.
        delete_pins(&self.prefix);
    }
}

/// The throwaway host's accessors (`host()`, `host_name()`, `outside()`),
/// and `&Harness` where the kit takes a `&Host`.
impl std::ops::Deref for Harness {
    type Target = Host;
    fn deref(&self) -> &Host {
        &self.host
    }
}

impl Harness {
    /// `None` when not root (loud skip; panics under `CI=true`).
    #[track_caller]
    pub fn new(tag: &str) -> Option<Self> {
        if !require_root() {
            return None;
        }
        let host = Host::with_outside(tag);
        let kernel = Arc::new(HostKernel::open(Some(host.host())).expect("open host kernel"));
        let (prefix, _) = unique_prefix('x');
        let (engine, _report) = Engine::open(
            kernel.clone(),
            Arc::new(MemoryStore::new()),
            Config {
                netns_prefix: prefix.clone(),
            },
        )
        .expect("open engine");
        Some(Self {
            engine: Arc::new(engine),
            kernel,
            prefix,
            host,
        })
    }

    /// A nat network with `subnet`, default profile unless `profile`.
    pub fn nat_network(&self, name: &str, subnet: &str, profile: Option<&str>) {
        self.engine
            .create_network(NetworkSpec {
                name: name.into(),
                driver: "nat".into(),
                subnets: vec![subnet.into()],
                acl_profile: profile.map(Into::into),
                ..Default::default()
            })
            .unwrap_or_else(|e| panic!("create network {name}: {e}"));
    }

    /// An endpoint `name` in a fresh namespace of the same name.
    pub fn endpoint(
        &self,
        name: &str,
        network: &str,
        publish: &[&str],
        acl_mode: Option<&str>,
    ) -> Ep {
        let (ep, ns, ns_name) = self.endpoint_from(EndpointSpec {
            name: name.into(),
            network: network.into(),
            namespace: name.into(),
            publish: publish.iter().map(|s| (*s).to_owned()).collect(),
            acl_mode: acl_mode.map(Into::into),
            ..Default::default()
        });
        let IpAddr::V4(ip) = ep.ip_address.addr else {
            panic!("endpoint {name}: not IPv4: {:?}", ep.ip_address)
        };
        Ep {
            name: name.into(),
            ip,
            ns,
            ns_name,
        }
    }

    /// Makes the namespace `spec.namespace` and the endpoint `spec` in it,
    /// and waits until both ends of its veth are up. Returns the endpoint,
    /// the namespace's pin and its pinned name.
    pub fn endpoint_from(&self, spec: EndpointSpec) -> (bulkhead_model::Endpoint, PathBuf, String) {
        let name = spec.name.clone();
        let namespace = spec.namespace.clone();
        let ns = self
            .engine
            .create_namespace(NamespaceSpec {
                name: namespace.clone(),
                isolation: None,
                ..NamespaceSpec::default()
            })
            .unwrap_or_else(|e| panic!("create namespace {namespace}: {e}"));
        let ep = self
            .engine
            .create_endpoint(spec)
            .unwrap_or_else(|e| panic!("create endpoint {name}: {e}"));
        // A fresh veth drops packets until the kernel's link watch has
        // activated both ends (up to a second): wait for both to be UP so
        // probes measure the policy, not link bring-up.
        let ns_name = format!("{}{namespace}", self.prefix);
        wait_up(&ns_name, ep.ifname.as_str());
        wait_up(self.host.host_name(), ep.switch_port.as_str());
        (
            ep,
            ns.netns_path.clone().expect("a process namespace"),
            ns_name,
        )
    }

    /// Adds a rule, returning its id.
    pub fn acl(&self, ep: &Ep, spec: AclRuleSpec) -> String {
        self.engine
            .add_acl(&ep.name, spec.clone())
            .unwrap_or_else(|e| panic!("add_acl {}: {spec:?}: {e}", ep.name))
            .id
            .to_string()
    }
}

/// A rule spec: `action direction protocol`, optional local ports, remote
/// addresses, priority.
pub fn rule(
    action: &str,
    direction: &str,
    protocol: &str,
    local_ports: Option<&str>,
    remote: Option<&str>,
    priority: u16,
) -> AclRuleSpec {
    AclRuleSpec {
        action: action.into(),
        direction: direction.into(),
        protocol: Some(protocol.into()),
        local_ports: local_ports.map(Into::into),
        remote_addresses: remote.map(Into::into),
        priority: Some(priority.to_string()),
        ..Default::default()
    }
}

/// A network of any driver (`--uplink`, `--vni` and `--gateway` as given).
pub fn l2_network(
    h: &Harness,
    name: &str,
    driver: &str,
    subnet: &str,
    gateway: Option<&str>,
    uplink: &str,
    vni: Option<u32>,
) {
    h.engine
        .create_network(NetworkSpec {
            name: name.into(),
            driver: driver.into(),
            subnets: vec![subnet.into()],
            gateway: gateway.map(Into::into),
            uplink: Some(uplink.into()),
            vni: vni.map(|v| v.to_string()),
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("create {driver} network {name}: {e}"));
}

/// A process endpoint `name` (own namespace) on `network` at `ip`, waited
/// up on both sides.
pub fn endpoint_at(h: &Harness, name: &str, network: &str, ip: &str) -> Ep {
    endpoint_publishing(h, name, network, ip, &[])
}

/// [`endpoint_at`] with published ports.
pub fn endpoint_publishing(
    h: &Harness,
    name: &str,
    network: &str,
    ip: &str,
    publish: &[&str],
) -> Ep {
    let (_, ns, ns_name) = h.endpoint_from(EndpointSpec {
        name: name.into(),
        network: network.into(),
        namespace: name.into(),
        ip: Some(ip.into()),
        publish: publish.iter().map(|p| (*p).to_owned()).collect(),
        ..Default::default()
    });
    Ep {
        name: name.into(),
        ip: ip.parse().expect("ipv4"),
        ns,
        ns_name,
    }
}

/// A vm endpoint (TAP switch port) `name` on `network`.
pub fn vm_endpoint(h: &Harness, name: &str, network: &str) -> bulkhead_model::Endpoint {
    h.engine
        .create_namespace(NamespaceSpec {
            name: name.into(),
            isolation: Some("vm".into()),
            ..NamespaceSpec::default()
        })
        .unwrap_or_else(|e| panic!("create vm namespace {name}: {e}"));
    h.engine
        .create_endpoint(EndpointSpec {
            name: name.into(),
            network: network.into(),
            namespace: name.into(),
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("create vm endpoint {name}: {e}"))
}
