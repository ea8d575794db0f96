//! The service in-process, for `bulkhead demo`: the same engine and API
//! service as the daemon ([`crate::service::Daemon`] behind
//! [`bulkhead_api::Server`]), but inside a throwaway host namespace with a
//! temporary store and socket, so a client can take the whole tour on a
//! machine without touching its network or a running bulkheadd.
//!
//! Contract: [`Embedded::start`] returns once the socket accepts requests;
//! dropping the [`Embedded`] stops serving, then removes every namespace pin
//! with its prefix, the state directory and the host namespace (which takes
//! every link in it along) — whatever state the client left. The client
//! talks to it only through the API; [`Embedded::probe`] is the one other
//! thing it offers: a real packet between two of its namespaces, on a clean
//! connection-tracking slate, so the demo can show what the kernel did;
//! and [`Embedded::add_uplink`], the stub uplink an L2 network needs.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use bulkhead_api::{Server, ServerConfig};
use bulkhead_dataplane::conntrack::Conntrack;
use bulkhead_dataplane::host::HostKernel;
use bulkhead_dataplane::netns::{self, NetnsGuard};
pub use bulkhead_dataplane::probe::ProbeKind;
use bulkhead_dataplane::rtnl::{Batch, Rtnl, VethSpec};
use bulkhead_engine::{Config, Engine};
use bulkhead_store::RedbStore;
use tokio::sync::oneshot;

use crate::service::Daemon;

/// A running in-process service; stopped and removed on drop.
#[derive(Debug)]
pub struct Embedded {
    prefix: String,
    state: PathBuf,
    socket: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<Result<(), String>>>,
    // Last: the host namespace goes after the service and the pins.
    host: NetnsGuard,
}

impl Embedded {
    /// Creates the host namespace `host` and the store in `state` (a
    /// directory the service owns and removes), opens the engine with the
    /// namespace pin prefix `prefix`, and serves the API on a socket in
    /// `state`. Errors name the step that failed.
    pub fn start(host: &str, state: &Path, prefix: &str) -> Result<Embedded, String> {
        let host = NetnsGuard::create(host).map_err(|e| format!("create host namespace: {e}"))?;
        // From here on, a failure drops `me`, which removes what was made.
        let mut me = Embedded {
            prefix: prefix.to_owned(),
            state: state.to_owned(),
            socket: state.join("bulkhead.sock"),
            stop: None,
            server: None,
            host,
        };
        let kernel =
            HostKernel::open(Some(me.host.path())).map_err(|e| format!("open kernel: {e}"))?;
        let store = RedbStore::open(state).map_err(|e| format!("open store: {e}"))?;
        let config = Config {
            netns_prefix: prefix.to_owned(),
        };
        let (engine, _) = Engine::open(Arc::new(kernel), Arc::new(store), config)
            .map_err(|e| format!("start engine: {e}"))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("start runtime: {e}"))?;
        let server = {
            let _entered = runtime.enter();
            Server::bind_with(&me.socket, ServerConfig::default())
                .map_err(|e| format!("bind {}: {e}", me.socket.display()))?
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let service = Arc::new(Daemon::new(Arc::new(engine)));
        me.server = Some(std::thread::spawn(move || {
            runtime
                .block_on(server.serve(service, async {
                    let _ = stopped.await;
                }))
                .map_err(|e| e.to_string())
        }));
        me.stop = Some(stop);
        Ok(me)
    }

    /// The API socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The throwaway host namespace's pin.
    pub fn host(&self) -> &Path {
        self.host.path()
    }

    /// Makes the veth pair `name` / `peer` in the host namespace, both up,
    /// in one netlink transaction: an uplink for an L2 network (l2bridge,
    /// l2tunnel, transparent) whose far end is a stub LAN with nothing on
    /// it, as the demo needs (the throwaway namespace has no real uplink,
    /// and this kernel has no dummy driver).
    pub fn add_uplink(&self, name: &str, peer: &str) -> Result<(), String> {
        let mut batch = Batch::new();
        batch
            .create_veth(&VethSpec {
                name,
                peer_name: peer,
                up: true,
                ..VethSpec::default()
            })
            .map_err(|e| format!("uplink {name}: {e}"))?
            .set_up(peer);
        Rtnl::in_netns(self.host.path())
            .and_then(|mut rtnl| rtnl.execute(&batch))
            .map_err(|e| format!("uplink {name}: {e}"))
    }

    /// Sends one `kind` probe from the namespace `from` (whose endpoint has
    /// `from_ip`) to `to` in the namespace `at`; whether it arrived. Each
    /// probe is an unsolicited packet: what earlier probes left in
    /// connection tracking is forgotten first, or a reply-direction probe
    /// would ride on it.
    pub fn probe(
        &self,
        from: &Path,
        from_ip: Ipv4Addr,
        at: &Path,
        to: Ipv4Addr,
        kind: ProbeKind,
    ) -> Result<bool, String> {
        for ns in [from, at] {
            Conntrack::open(Some(ns))
                .and_then(|mut c| c.delete_by_addr(IpAddr::V4(from_ip)))
                .map_err(|e| format!("forget connections: {e}"))?;
        }
        bulkhead_dataplane::probe::arrives(from, at, to, kind).map_err(|e| format!("probe: {e}"))
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.join();
        }
        for name in netns::list(&self.prefix).unwrap_or_default() {
            let _ = netns::delete(&name);
        }
        let _ = std::fs::remove_dir_all(&self.state);
    }
}
