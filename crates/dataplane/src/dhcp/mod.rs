//! DHCPv4 for `vm` endpoints, in-process (see `docs/adr/0007-dhcp.md`).
//!
//! Contract: [`DhcpServers::serve`] starts, for one TAP switch port, a
//! server that answers only its endpoint's MAC, only on that TAP, with only
//! that endpoint's [`DhcpLease`]; [`DhcpServers::stop`] ends it;
//! [`DhcpServers::serve_only`] makes the running set exactly the given one
//! (reconcile). Each server is one thread with one `AF_PACKET` socket bound
//! to the TAP's ifindex: the guest's frames reach it before any netfilter
//! hook (the port guard then drops the unbound client broadcast, so it never
//! floods the switch), and its replies are written to that TAP only, which
//! hands them to the guest alone. Nothing listens on a UDP port and no
//! other interface's frame is ever read.

pub mod reply;
mod serve;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// What a vm endpoint's guest is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpLease {
    /// The TAP switch port the guest is on.
    pub port: String,
    pub mac: [u8; 6],
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Option<Ipv4Addr>,
    /// Name servers; none are sent when empty.
    pub dns: Vec<Ipv4Addr>,
    pub lease_secs: u32,
}

/// The lease time bulkhead gives: the address is the endpoint's for its
/// whole life, so the lease only bounds how long a guest of a deleted
/// endpoint (whose TAP is gone anyway) would keep it.
pub const LEASE_SECS: u32 = 3600;

impl DhcpLease {
    /// The server identifier: the gateway, which the guest can reach (its
    /// renewals arrive on the TAP whatever their destination); the
    /// subnet's first address when the network has none.
    pub fn server_id(&self) -> Ipv4Addr {
        self.gateway.unwrap_or_else(|| {
            let net = u32::from(self.address) & u32::from(reply::mask(self.prefix));
            Ipv4Addr::from(net.wrapping_add(1))
        })
    }
}

#[derive(Debug)]
struct Running {
    lease: DhcpLease,
    stop: Arc<AtomicBool>,
}

/// The running servers, one per TAP port, all in the namespace `netns`
/// (the host's; `None`: the caller's).
#[derive(Debug, Default)]
pub struct DhcpServers {
    netns: Option<PathBuf>,
    running: Mutex<HashMap<String, Running>>,
}

impl DhcpServers {
    pub fn new(netns: Option<PathBuf>) -> Self {
        Self {
            netns,
            running: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Running>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts (or restarts, on the TAP as it is now) the server of
    /// `lease.port`. Fails if the TAP does not exist.
    pub fn serve(&self, lease: &DhcpLease) -> std::io::Result<()> {
        let stop = Arc::new(AtomicBool::new(false));
        serve::start(self.netns.as_deref(), lease.clone(), stop.clone())?;
        let old = self.lock().insert(
            lease.port.clone(),
            Running {
                lease: lease.clone(),
                stop,
            },
        );
        if let Some(old) = old {
            old.stop.store(true, Ordering::Release);
        }
        Ok(())
    }

    /// Stops the server of `port`, if any (its thread exits within
    /// [`serve::POLL`]; it answers nothing after this returns).
    pub fn stop(&self, port: &str) {
        if let Some(old) = self.lock().remove(port) {
            old.stop.store(true, Ordering::Release);
        }
    }

    /// Makes the running servers exactly `leases`, each on its TAP as it is
    /// now (reconcile may have re-created it). Errors name the port.
    pub fn serve_only(&self, leases: &[DhcpLease]) -> Vec<String> {
        let ports: Vec<String> = self.lock().keys().cloned().collect();
        for port in ports {
            if !leases.iter().any(|l| l.port == port) {
                self.stop(&port);
            }
        }
        leases
            .iter()
            .filter_map(|l| {
                self.serve(l)
                    .err()
                    .map(|e| format!("dhcp on {}: {e}", l.port))
            })
            .collect()
    }

    /// The leases being served, by port (status and tests).
    pub fn leases(&self) -> Vec<DhcpLease> {
        let mut v: Vec<DhcpLease> = self.lock().values().map(|r| r.lease.clone()).collect();
        v.sort_by(|a, b| a.port.cmp(&b.port));
        v
    }
}

impl Drop for DhcpServers {
    fn drop(&mut self) {
        for r in self.lock().values() {
            r.stop.store(true, Ordering::Release);
        }
    }
}
