//! Namespaces made ahead of their create: a small pool of fresh network
//! namespaces, each with loopback up, strict TCP tracking and its sockets
//! open, that [`crate::kernel::Kernel::create_netns`] pins under the
//! asked name instead of making one then and there.
//!
//! Why: making a namespace is most of a namespace create's time (the
//! kernel's `copy_net_ns` runs every subsystem's per-namespace set-up,
//! ~0.5 ms here), and none of it depends on the name. A pool thread makes
//! them while the daemon is otherwise idle; the create pins one (a bind
//! mount) and the thread makes the next.
//!
//! Contract:
//! - A pooled namespace is unpinned and unseen: only this process holds it
//!   (its file and sockets). It is as fresh as one made at the create:
//!   nothing runs in it and nobody else can reach it; a new namespace's
//!   settings come from the kernel's defaults and the initial namespace,
//!   not from the thread that made it.
//! - [`Warm::take`] never waits: an empty pool means the caller makes its
//!   own, as without a pool.
//! - The pool keeps at most `size` namespaces. Dropping it stops the
//!   thread and drops the unused ones (the kernel frees them).
//! - A failure to make one is logged and retried after a pause, so a host
//!   that refuses new namespaces costs one attempt per pause, not a spin.
//! - The pool makes the next one once no create has asked it for one for
//!   [`REFILL_AFTER`], never beside a create: a namespace create is usually
//!   followed at once by an endpoint create in it, and making a namespace
//!   meanwhile (~0.5 ms of CPU, and `rtnl_lock` for its loopback) slowed
//!   both down. Under creates closer together than that the pool drains
//!   and each create makes its own, as without a pool: never slower.

use std::fs::File;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::owned::NsSockets;
use crate::kernel::Result;

/// A made namespace, not pinned yet, with its sockets.
#[derive(Debug)]
pub(super) struct Made {
    pub ns: File,
    pub sockets: NsSockets,
}

/// How a namespace is made (in the pool thread).
pub(super) type Maker = fn() -> Result<Made>;

/// The pause after a failed attempt.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The pause between a take and the next refill (an endpoint create takes
/// 1–2 ms).
const REFILL_AFTER: Duration = Duration::from_millis(3);

#[derive(Debug, Default)]
struct State {
    ready: Vec<Made>,
    /// When a create last asked for a namespace.
    taken_at: Option<Instant>,
    stop: bool,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    /// Signalled when a namespace is taken and when the pool stops.
    changed: Condvar,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The pool and its thread.
#[derive(Debug)]
pub(super) struct Warm {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Warm {
    /// Starts a pool of `size` namespaces, made by `make` on a thread of
    /// its own.
    pub fn start(size: usize, make: Maker) -> std::io::Result<Warm> {
        let shared = Arc::new(Shared::default());
        let thread = std::thread::Builder::new()
            .name("bulkhead-warm-netns".into())
            .spawn({
                let shared = Arc::clone(&shared);
                move || fill(&shared, size, make)
            })?;
        Ok(Warm {
            shared,
            thread: Some(thread),
        })
    }

    /// A made namespace, if one is ready. Either way the refill waits
    /// [`REFILL_AFTER`] from now.
    pub fn take(&self) -> Option<Made> {
        let made = {
            let mut state = self.shared.state();
            state.taken_at = Some(Instant::now());
            state.ready.pop()
        };
        if made.is_some() {
            self.shared.changed.notify_all();
        }
        made
    }

    /// How many are ready now.
    pub fn ready(&self) -> usize {
        self.shared.state().ready.len()
    }
}

impl Drop for Warm {
    fn drop(&mut self) {
        self.shared.state().stop = true;
        self.shared.changed.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The pool thread: keeps `size` namespaces ready until told to stop.
fn fill(shared: &Shared, size: usize, make: Maker) {
    loop {
        {
            let mut state = shared.state();
            while !state.stop && state.ready.len() >= size {
                state = shared
                    .changed
                    .wait(state)
                    .unwrap_or_else(|p| p.into_inner());
            }
            if state.stop {
                return;
            }
            let since = state.taken_at.map_or(REFILL_AFTER, |t| t.elapsed());
            if since < REFILL_AFTER {
                let _ = shared.changed.wait_timeout(state, REFILL_AFTER - since);
                continue;
            }
        }
        match make() {
            Ok(made) => shared.state().ready.push(made),
            Err(e) => {
                tracing::warn!(error = %e, "cannot make a namespace ahead of its create; trying again");
                let state = shared.state();
                if !state.stop {
                    let _ = shared.changed.wait_timeout(state, RETRY_AFTER);
                }
            }
        }
    }
}
