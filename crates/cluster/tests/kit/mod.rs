//! Fixtures of the cluster crate's tests against a real etcd: the test
//! kit's underlay and etcd (each case its own), and nodes that run the
//! control plane in-process on an engine with the recording fake kernel
//! (orchestration under test; packets are the daemon tests' part). The
//! whole case runs on a thread moved into a namespace plugged into the
//! underlay, so every socket it (and its runtime's threads) opens is
//! there, never in the machine's own namespace.

#![allow(dead_code)]

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bulkhead_cluster::{Cluster, Config};
use bulkhead_dataplane::fake::FakeKernel;
use bulkhead_dataplane::kernel::Kernel;
use bulkhead_engine::Engine;
use bulkhead_model::{EndpointSpec, NamespaceSpec, NetworkSpec};
use bulkhead_store::MemoryStore;
use bulkhead_testkit::cluster::{Etcd, Underlay};
use bulkhead_testkit::netns::{next_n, Host as Ns};

/// Runs `case` on a thread inside a fresh namespace on a fresh underlay,
/// with a fresh etcd (TLS if asked). `None` when not root (loud skip).
pub fn with_etcd(tls: bool, case: impl FnOnce(&mut Etcd) + Send + 'static) {
    let Some(ul) = Underlay::new() else { return };
    let ns = Ns::named(&format!("bht-cc{}-{}", std::process::id(), next_n()));
    ul.plug(ns.host_name());
    let path = ns.host().to_path_buf();
    let out = std::thread::spawn(move || {
        let f = std::fs::File::open(&path).expect("open netns");
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        // etcd is owned (and killed at exit) by this thread.
        let mut etcd = if tls {
            Etcd::new_tls(&ul)
        } else {
            Etcd::new(&ul)
        };
        case(&mut etcd);
        drop(etcd);
        drop(ul);
    })
    .join();
    drop(ns);
    if let Err(p) = out {
        std::panic::resume_unwind(p);
    }
}

/// One in-process node.
pub struct Node {
    pub name: String,
    pub engine: Arc<Engine>,
    pub kernel: Arc<FakeKernel>,
    pub cluster: Option<Cluster>,
    pub rt: tokio::runtime::Runtime,
    pub dir: tempfile::TempDir,
    pub store: Arc<MemoryStore>,
}

pub fn config(etcd: &Etcd, name: &str, ip: &str, dir: &std::path::Path) -> Config {
    let tls = etcd.tls();
    Config {
        endpoints: vec![etcd.url()],
        node: name.into(),
        underlay: ip.parse().expect("ip"),
        cacert: tls.map(|t| t.ca.clone()),
        cert: tls.map(|t| t.client_cert.clone()),
        key: tls.map(|t| t.client_key.clone()),
        node_ttl: Duration::from_secs(2),
        lost_node_grace: None,
        state_dir: dir.to_path_buf(),
    }
}

impl Node {
    /// A node `name` with VTEP `ip`, joined to `etcd`.
    pub fn join(etcd: &Etcd, name: &str, ip: &str) -> Node {
        let mut node = Node::join_later(name);
        node.start(config(etcd, name, ip, node.dir.path()));
        node
    }

    /// A node not joined yet ([`Node::start`]).
    pub fn join_later(name: &str) -> Node {
        let kernel = Arc::new(FakeKernel::new());
        kernel.create_network_device("ul0", None).expect("uplink");
        let store = Arc::new(MemoryStore::new());
        let (engine, _) = Engine::open(
            kernel.clone(),
            store.clone(),
            bulkhead_engine::Config::default(),
        )
        .expect("engine");
        engine
            .create_namespace(NamespaceSpec {
                name: "x".into(),
                ..NamespaceSpec::default()
            })
            .expect("namespace");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("dir");
        Node {
            name: name.into(),
            engine: Arc::new(engine),
            kernel,
            cluster: None,
            rt,
            dir,
            store,
        }
    }

    /// Starts the control plane with `config`.
    pub fn start(&mut self, config: Config) {
        let engine = self.engine.clone();
        self.cluster = Some(
            self.rt
                .block_on(Cluster::start(config, engine))
                .expect("join"),
        );
    }

    /// A restart after a crash: a new engine on the same store and
    /// kernel, a new runtime, the same state dir; then [`Node::start`].
    pub fn reopen(&mut self) {
        let (engine, _) = Engine::open(
            self.kernel.clone(),
            self.store.clone(),
            bulkhead_engine::Config::default(),
        )
        .expect("engine");
        self.engine = Arc::new(engine);
        self.rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
    }

    /// Stops the node as a crash would: its cluster task and runtime go
    /// away without withdrawing anything (its lease is left to expire).
    pub fn crash(&mut self) {
        drop(self.cluster.take());
        let rt = std::mem::replace(
            &mut self.rt,
            tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("rt"),
        );
        rt.shutdown_timeout(Duration::from_secs(1));
    }

    pub fn cluster(&self) -> &Cluster {
        self.cluster.as_ref().expect("joined")
    }

    pub fn endpoint(&self, name: &str, network: &str) -> IpAddr {
        self.engine
            .create_endpoint(EndpointSpec {
                name: name.into(),
                network: network.into(),
                namespace: "x".into(),
                ..Default::default()
            })
            .unwrap_or_else(|e| panic!("{}: endpoint {name}: {e}", self.name))
            .ip_address
            .addr
    }

    /// The remote addresses programmed on the fake kernel.
    pub fn remote_ips(&self) -> Vec<IpAddr> {
        self.kernel.remotes().iter().map(|r| r.ip).collect()
    }
}

pub fn overlay(name: &str, subnet: &str, vni: u32) -> NetworkSpec {
    NetworkSpec {
        name: name.into(),
        driver: "overlay".into(),
        subnets: vec![subnet.into()],
        uplink: Some("ul0".into()),
        vni: Some(vni.to_string()),
        ..Default::default()
    }
}

/// Polls `cond` every 20 ms for up to `secs`; panics with `what` after.
pub fn wait(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < until, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
