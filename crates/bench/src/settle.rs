//! Waiting for the kernel to finish destroying network namespaces.
//!
//! A table or row that deletes hundreds of namespaces leaves the kernel
//! freeing them in the background for seconds after it ends (`cleanup_net`
//! takes `rtnl_lock` and waits for RCU grace periods per batch); anything
//! timed meanwhile measures that clean-up too. [`namespaces`] waits until
//! the number of live `net_namespace` objects (`/proc/slabinfo`) has not
//! fallen for [`STEADY`], at most `max`.

use std::time::{Duration, Instant};

/// No fall in the count for this long: the clean-up is over.
pub const STEADY: Duration = Duration::from_secs(1);

/// Live network namespaces as the kernel's allocator counts them, if it
/// says (`None`: no `/proc/slabinfo`, or the cache is merged into another).
fn live() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/slabinfo").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("net_namespace "))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
}

/// Waits for the kernel's namespace clean-up (see the module doc); without
/// a count, sleeps `fallback`. Returns the namespaces freed meanwhile and
/// the time waited.
pub fn namespaces(max: Duration, fallback: Duration) -> (usize, Duration) {
    let started = Instant::now();
    let Some(first) = live() else {
        std::thread::sleep(fallback);
        return (0, started.elapsed());
    };
    let (mut low, mut since) = (first, Instant::now());
    while since.elapsed() < STEADY && started.elapsed() < max {
        std::thread::sleep(Duration::from_millis(100));
        let now = live().unwrap_or(low);
        if now < low {
            (low, since) = (now, Instant::now());
        }
    }
    (first.saturating_sub(low), started.elapsed())
}
