//! Retired switch ports, destroyed while the host is quiet.
//!
//! Destroying a network device holds `rtnl_lock`, the lock every link,
//! address and route change on the machine takes, through RCU grace
//! periods. Destroyed as soon as it is retired, a deleted endpoint's port
//! made the next create wait for that lock: when endpoints are cycled
//! (delete, create, delete…) every create waited ~10 ms for the previous
//! delete's destruction. So retired ports are collected and destroyed
//! together (one round of grace periods for all of them) once the host's
//! rtnetlink has been idle for [`QUIET`], and at the latest after
//! [`MAX_WAIT`] or at [`MAX_BATCH`] ports, so that steady churn neither
//! waits on each destruction nor keeps ports forever.
//!
//! Contract: a name given to [`Sweeper::retire`] is destroyed by the
//! sweeper's thread (absent is fine; failures are logged). [`Sweeper::busy`]
//! marks host activity. [`Sweeper::settle`] destroys at once every port
//! retired before the call and returns when they are gone. Dropping the
//! sweeper destroys what is pending and joins the thread. A retired port is
//! down and out of service ([`crate::kernel::Kernel::retire_port`]): only its
//! destruction is deferred.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Host rtnetlink idle for this long: the pending ports are destroyed.
pub const QUIET: Duration = Duration::from_millis(25);
/// A retired port waits at most this long for a quiet moment.
pub const MAX_WAIT: Duration = Duration::from_secs(1);
/// This many pending ports are destroyed without waiting for quiet (one
/// create in this many may wait behind a destruction under steady churn;
/// fewer would put those waits into the creates' 99th percentile).
pub const MAX_BATCH: usize = 256;

/// How the pending ports are destroyed (one call per round, all names).
pub type Destroy = Box<dyn FnMut(&[String]) + Send>;

#[derive(Debug, Default)]
struct State {
    pending: Vec<String>,
    /// When the oldest pending port was retired.
    since: Option<Instant>,
    /// Ports retired so far (the ticket of the last one).
    queued: u64,
    /// Ports destroyed so far (every ticket up to this one).
    swept: u64,
    /// The highest ticket someone waits for in [`Sweeper::settle`].
    wanted: u64,
    stop: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the thread (a port retired, a settle, a stop).
    wake: Condvar,
    /// Wakes the callers of `settle` (a round done).
    swept: Condvar,
    /// The last host activity, in nanoseconds after `epoch`.
    busy_at: AtomicU64,
    epoch: Instant,
    destroy: Mutex<Destroy>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Destroys `names` (a panic is logged, not spread).
    fn destroy(&self, names: &[String]) {
        let mut destroy = self.destroy.lock().unwrap_or_else(|p| p.into_inner());
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| destroy(names)));
        if result.is_err() {
            tracing::error!(ports = names.len(), "destroying retired ports panicked");
        }
    }

    fn idle_for(&self, now: Instant) -> Duration {
        let busy = self.epoch + Duration::from_nanos(self.busy_at.load(Ordering::Relaxed));
        now.saturating_duration_since(busy)
    }
}

/// The thread that destroys retired ports (see the module doc).
pub struct Sweeper {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Sweeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sweeper").finish_non_exhaustive()
    }
}

impl Sweeper {
    pub fn new(destroy: Destroy) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::default(),
            wake: Condvar::new(),
            swept: Condvar::new(),
            busy_at: AtomicU64::new(0),
            epoch: Instant::now(),
            destroy: Mutex::new(destroy),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("bulkhead-sweep".into())
            .spawn(move || run(&s))
            .map_err(|e| tracing::warn!(error = %e, "no port sweeper thread: retired ports are destroyed at once"))
            .ok();
        Self { shared, thread }
    }

    /// Marks the host busy now: pending ports wait for [`QUIET`] from here.
    pub fn busy(&self) {
        let nanos = self.shared.epoch.elapsed().as_nanos();
        self.shared
            .busy_at
            .store(u64::try_from(nanos).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Queues `name` for destruction (without a thread: destroys it now).
    pub fn retire(&self, name: &str) {
        if self.thread.is_none() {
            return self.shared.destroy(&[name.to_owned()]);
        }
        let mut s = self.shared.lock();
        s.pending.push(name.to_owned());
        s.queued += 1;
        s.since.get_or_insert_with(Instant::now);
        self.shared.wake.notify_one();
    }

    /// Destroys every port retired before this call, now, and returns when
    /// they are gone.
    pub fn settle(&self) {
        let mut s = self.shared.lock();
        let ticket = s.queued;
        s.wanted = s.wanted.max(ticket);
        self.shared.wake.notify_one();
        while s.swept < ticket {
            s = self.shared.swept.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Ports retired and not yet destroyed.
    #[cfg(test)]
    pub fn pending(&self) -> usize {
        self.shared.lock().pending.len()
    }
}

impl Drop for Sweeper {
    /// Destroys what is pending, then joins the thread.
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_one();
        if let Some(h) = self.thread.take() {
            let _ = h.join();
        }
    }
}

/// Waits until a round is due, then takes its names and ticket; `None`
/// once stopped with nothing pending.
fn next_round(shared: &Shared) -> Option<(Vec<String>, u64)> {
    let mut s = shared.lock();
    loop {
        if s.pending.is_empty() {
            if s.stop {
                return None;
            }
            s = shared.wake.wait(s).unwrap_or_else(|p| p.into_inner());
            continue;
        }
        let now = Instant::now();
        let age = s.since.map_or(Duration::ZERO, |t| now - t);
        let quiet_left = QUIET.saturating_sub(shared.idle_for(now));
        let age_left = MAX_WAIT.saturating_sub(age);
        let due = s.stop
            || s.wanted > s.swept
            || s.pending.len() >= MAX_BATCH
            || quiet_left.is_zero()
            || age_left.is_zero();
        if due {
            s.since = None;
            return Some((std::mem::take(&mut s.pending), s.queued));
        }
        let wait = quiet_left.min(age_left);
        s = shared
            .wake
            .wait_timeout(s, wait)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
}

fn run(shared: &Shared) {
    while let Some((names, ticket)) = next_round(shared) {
        shared.destroy(&names);
        shared.lock().swept = ticket;
        shared.swept.notify_all();
    }
}

#[cfg(test)]
#[path = "sweep_tests.rs"]
mod tests;
