//! A cluster host: a kit daemon's throwaway host namespace plugged into
//! the underlay, its bulkheadd started with the cluster flags; and
//! [`Cluster`], an underlay + etcd + N hosts in one value.

use std::net::Ipv4Addr;
use std::ops::{Deref, DerefMut};

use super::{Etcd, Underlay};
use crate::daemon::Daemon;

/// One host of a test cluster; derefs to its [`Daemon`] (CLI driver,
/// `kill9`, `spawn` = restart on the same state dir, `stop`, `log`).
#[derive(Debug)]
pub struct Host {
    /// The node name (`--node`).
    pub node: String,
    /// Its underlay address (`--underlay-address`, on [`super::UNDERLAY_DEV`]).
    pub addr: Ipv4Addr,
    daemon: Daemon,
}

impl Host {
    /// A host `node` on `ul`, its daemon not started yet ([`Host::start`]).
    /// Call after [`Underlay::new`] (which checks for root).
    pub fn new(ul: &Underlay, node: &str) -> Host {
        let daemon = Daemon::prepare(&[]).expect("cluster hosts need root");
        let addr = ul.plug(&daemon.host);
        Host {
            node: node.to_owned(),
            addr,
            daemon,
        }
    }

    /// The cluster flags for `etcd`: `--etcd … --node NAME
    /// --underlay-address IP` (+ TLS files).
    pub fn cluster_args(&self, etcd: &Etcd) -> Vec<String> {
        let mut v = etcd.daemon_args();
        v.extend([
            "--node".to_owned(),
            self.node.clone(),
            "--underlay-address".to_owned(),
            self.addr.to_string(),
        ]);
        v
    }

    /// Starts bulkheadd with the cluster flags for `etcd` and `extra`
    /// (kept for every later `spawn`), and waits for its socket.
    pub fn start(&mut self, etcd: &Etcd, extra: &[&str]) {
        let mut args = self.cluster_args(etcd);
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        self.daemon.extra_args = args;
        self.daemon.spawn();
    }

    /// The host namespace's name (`ip -n`, [`Etcd::ctl`]).
    pub fn ns_name(&self) -> &str {
        &self.daemon.host
    }
}

impl Deref for Host {
    type Target = Daemon;
    fn deref(&self) -> &Daemon {
        &self.daemon
    }
}

impl DerefMut for Host {
    fn deref_mut(&mut self) -> &mut Daemon {
        &mut self.daemon
    }
}

/// An underlay, an etcd and `n` hosts (`node-a`, `node-b`, …), every
/// daemon started. Drop order: daemons, etcd, then the underlay.
#[derive(Debug)]
pub struct Cluster {
    pub hosts: Vec<Host>,
    pub etcd: Etcd,
    pub underlay: Underlay,
}

impl Cluster {
    /// `None` when not root (loud skip; panics under `CI=true`). With
    /// `tls`, etcd requires client certificates and the daemons get theirs.
    #[track_caller]
    pub fn start(n: usize, tls: bool, extra: &[&str]) -> Option<Cluster> {
        let underlay = Underlay::new()?;
        let etcd = if tls {
            Etcd::new_tls(&underlay)
        } else {
            Etcd::new(&underlay)
        };
        let mut hosts: Vec<Host> = (b'a'..)
            .take(n)
            .map(|c| Host::new(&underlay, &format!("node-{}", char::from(c))))
            .collect();
        for h in &mut hosts {
            h.start(&etcd, extra);
        }
        Some(Cluster {
            hosts,
            etcd,
            underlay,
        })
    }
}
