//! The watcher: one thread that reads, without spawning anything, what the
//! kernel reports from every namespace bulkhead programs, and turns it into
//! events ([`crate::events`]) — and, for tampering, into a repair.
//!
//! Sockets: the host namespace gets an NFLOG socket (switch-port drops);
//! each process namespace with a host firewall gets one NFLOG socket and
//! one nf_tables monitor ([`bulkhead_dataplane::events`]), opened inside it
//! once, when the watcher first sees the namespace, and kept until the
//! namespace loses its firewall (two fds per namespace; the alternative,
//! entering namespaces in turn to look, would miss drops and could not
//! restore within a second). The set is synced with the engine at once
//! when the engine says a namespace gained a firewall (`wake.rs`), and
//! every [`SYNC_EVERY`] in any case; a drop in a new namespace goes
//! unlogged only before the watcher's thread has run that sync (opening
//! two sockets there: well under a millisecond on an idle host, longer
//! when the CPUs are busy). All sockets are polled together.
//!
//! Contract:
//! - A logged drop becomes a `drop` event naming the endpoint (by address:
//!   the destination for `in`, the source for `out`, among the endpoints of
//!   the logging namespace, or of the host for the switch port) and the
//!   deciding rule, found by running the policy's reference evaluator
//!   ([`bulkhead_policy::evaluate`]) on the logged headers.
//! - A commit in a watched namespace, by any process but this one, that
//!   touches bulkhead's table is tampering: a `tamper` event is recorded,
//!   the table is put back as last programmed (one replace transaction,
//!   under the engine lock) and a `restore` event says so. bulkhead's own
//!   commits carry the id of one of its threads and are ignored. Lost reports (the monitor's
//!   buffer overflowed) make the watcher compare the table's chains with
//!   what was programmed and restore on any difference.
//! - The thread holds only a weak reference to the engine and ends when
//!   the [`Watcher`] is dropped (or the engine is gone).

use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bulkhead_dataplane::events::{MonitorEvent, NflogSocket, NftMonitor};
use bulkhead_model::Id;
use bulkhead_policy::compile::{LOG_BURST, LOG_GROUP, LOG_RATE};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::Engine;

/// How often the set of watched namespaces is brought up to date when no
/// wake-up says so (a namespace that lost its firewall, or an engine with
/// no wake-up). A sync is a short walk of the engine's firewall list under
/// its lock.
pub const SYNC_EVERY: Duration = Duration::from_millis(50);

/// What the watcher does.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// Read drop logs into `drop` events.
    pub drops: bool,
    /// Restore host firewalls that someone else changed.
    pub tamper: bool,
    /// The host namespace (the switch port's drops), as given to the
    /// engine's kernel; `None`: the caller's (bulkheadd runs in it).
    pub host: Option<PathBuf>,
}

impl Default for WatchOptions {
    fn default() -> Self {
        Self {
            drops: true,
            tamper: true,
            host: None,
        }
    }
}

/// A running watcher; dropping it stops and joins the thread.
#[derive(Debug)]
pub struct Watcher {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[derive(Debug)]
struct Watched {
    name: String,
    nflog: Option<NflogSocket>,
    monitor: Option<NftMonitor>,
    budget: Budget,
}

impl Engine {
    /// Starts the watcher thread (see the module doc).
    pub fn watch(self: &Arc<Self>, options: WatchOptions) -> std::io::Result<Watcher> {
        let stop = Arc::new(AtomicBool::new(false));
        let host = if options.drops {
            match NflogSocket::open(options.host.as_deref(), LOG_GROUP) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(group = LOG_GROUP, error = %e, "no switch-port drop events: NFLOG group unavailable in the host namespace");
                    None
                }
            }
        } else {
            None
        };
        // The namespaces present now are watched before this returns, so a
        // change made right after it is seen.
        let mut watched = BTreeMap::new();
        sync(self, &mut watched, &options);
        let (weak, flag) = (Arc::downgrade(self), stop.clone());
        let wake = self.watcher_wake();
        let thread = std::thread::Builder::new()
            .name("bulkhead-watch".into())
            .spawn(move || run(weak, flag, options, (host, wake), watched))?;
        Ok(Watcher {
            stop,
            thread: Some(thread),
        })
    }
}

fn run(
    engine: Weak<Engine>,
    stop: Arc<AtomicBool>,
    options: WatchOptions,
    (mut host, wake): (Option<NflogSocket>, Option<UnixStream>),
    mut watched: BTreeMap<Id, Watched>,
) {
    let mut synced = Instant::now();
    let mut host_budget = Budget::new();
    let mut woken = false;
    while !stop.load(Ordering::Relaxed) {
        if woken || synced.elapsed() >= SYNC_EVERY {
            let Some(e) = engine.upgrade() else { return };
            sync(&e, &mut watched, &options);
            synced = Instant::now();
        }
        // (namespace or None for the host, is a monitor), and whether it
        // is readable.
        let mut sources: Vec<(Option<Id>, bool)> = Vec::new();
        let ready: Vec<bool> = {
            let mut fds: Vec<PollFd<'_>> = Vec::new();
            // The engine's wake-up first (a namespace gained a firewall).
            if let Some(w) = &wake {
                fds.push(PollFd::new(w.as_fd(), PollFlags::POLLIN));
            }
            if let Some(h) = &host {
                sources.push((None, false));
                fds.push(PollFd::new(h.as_fd(), PollFlags::POLLIN));
            }
            for (id, w) in &watched {
                if let Some(s) = &w.nflog {
                    sources.push((Some(*id), false));
                    fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
                }
                if let Some(m) = &w.monitor {
                    sources.push((Some(*id), true));
                    fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
                }
            }
            let _ = poll(&mut fds, PollTimeout::from(50u16));
            fds.iter()
                .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
                .collect()
        };
        let ready = match &wake {
            Some(w) => {
                woken = ready.first().copied().unwrap_or(false);
                if woken {
                    crate::wake::drain(w);
                }
                &ready[1..]
            }
            None => &ready[..],
        };
        if !ready.contains(&true) {
            continue;
        }
        let Some(e) = engine.upgrade() else { return };
        for ((ns, is_monitor), _) in sources.iter().zip(ready).filter(|(_, r)| **r) {
            match (ns, is_monitor) {
                (None, _) => {
                    if let Some(h) = host.as_mut() {
                        read_drops(&e, None, h, &mut host_budget);
                    }
                }
                (Some(id), false) => {
                    if let Some(w) = watched.get_mut(id) {
                        if let Some(s) = w.nflog.as_mut() {
                            read_drops(&e, Some(*id), s, &mut w.budget);
                        }
                    }
                }
                (Some(id), true) => {
                    if let Some(w) = watched.get_mut(id) {
                        read_commits(&e, *id, w);
                    }
                }
            }
        }
    }
}

/// Opens sockets in namespaces that gained a firewall, closes those of
/// namespaces that lost theirs.
fn sync(engine: &Engine, watched: &mut BTreeMap<Id, Watched>, options: &WatchOptions) {
    let current: BTreeMap<Id, (String, PathBuf)> = engine.firewall_namespaces();
    watched.retain(|id, _| current.contains_key(id));
    for (id, (name, path)) in current {
        if watched.contains_key(&id) {
            continue;
        }
        fn open<T>(name: &str, what: &str, r: std::io::Result<T>) -> Option<T> {
            r.map_err(|e| tracing::warn!(namespace = %name, error = %e, "cannot watch {what}"))
                .ok()
        }
        let nflog = options
            .drops
            .then(|| open(&name, "drops", NflogSocket::open(Some(&path), LOG_GROUP)))
            .flatten();
        let monitor = options
            .tamper
            .then(|| open(&name, "the firewall", NftMonitor::open(Some(&path))))
            .flatten();
        watched.insert(
            id,
            Watched {
                name,
                nflog,
                monitor,
                budget: Budget::new(),
            },
        );
    }
}

/// Logged packets attributed per second and source namespace, at most:
/// twice what the kernel's limits let through both drop chains. A tenant
/// is root in its namespace and can log to our group from rules of its own
/// (or strip the limit until the tamper repair puts it back); beyond this
/// budget its logs are read and discarded without taking the engine lock.
pub const MAX_DROPS_PER_SEC: u32 = 4 * (LOG_RATE + LOG_BURST);

/// A per-second budget of attributed drop logs.
#[derive(Debug)]
struct Budget {
    window: Instant,
    used: u32,
    discarded: u64,
}

impl Budget {
    fn new() -> Self {
        Self {
            window: Instant::now(),
            used: 0,
            discarded: 0,
        }
    }

    fn allow(&mut self) -> bool {
        if self.window.elapsed() >= Duration::from_secs(1) {
            if self.discarded > 0 {
                tracing::warn!(
                    discarded = self.discarded,
                    "drop logs over budget discarded"
                );
            }
            (self.window, self.used, self.discarded) = (Instant::now(), 0, 0);
        }
        self.used += 1;
        if self.used > MAX_DROPS_PER_SEC {
            self.discarded += 1;
        }
        self.used <= MAX_DROPS_PER_SEC
    }
}

fn read_drops(engine: &Engine, ns: Option<Id>, socket: &mut NflogSocket, budget: &mut Budget) {
    match socket.read() {
        Ok(packets) => {
            for p in packets {
                if !budget.allow() {
                    continue;
                }
                if let Some(event) = engine.drop_event(ns, &p) {
                    engine.events().push(event);
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "reading drop logs failed"),
    }
}

fn read_commits(engine: &Engine, id: Id, w: &mut Watched) {
    let Some(monitor) = w.monitor.as_mut() else {
        return;
    };
    let events = match monitor.read() {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(namespace = %w.name, error = %e, "reading firewall changes failed");
            return;
        }
    };
    for event in events {
        match event {
            MonitorEvent::Commit(c) if !c.by_this_process() => {
                if let Some(what) = engine.tampered_with(&c) {
                    engine.restore_firewall(id, &what);
                }
            }
            MonitorEvent::Commit(_) => {}
            MonitorEvent::Overflow => engine.verify_firewall(id),
        }
    }
}
