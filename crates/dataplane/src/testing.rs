//! Helpers for tests that need the real kernel (tier T1 and up).
//!
//! Contract: [`require_root`] returns `true` when the process can change
//! namespaces (euid 0). Otherwise it prints a loud `SKIPPED (needs root)` line
//! to stderr and returns `false` so the test can return early — unless
//! `CI=true`, where it panics so a CI run can never pass by skipping.
//! [`unique_name`] makes names that cannot collide with another test, another
//! run, or anything on the machine: `bht-<tag>-<pid>-<n>`. The first
//! [`require_root`] of a root process also removes the namespaces that test
//! processes killed without unwinding left behind (`stale`).

use std::sync::atomic::{AtomicU32, Ordering};

mod stale;

/// Whether the caller may run a root-only test (see the module contract).
#[track_caller]
pub fn require_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        stale::sweep_once();
        return true;
    }
    let at = std::panic::Location::caller();
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("test at {at} needs root, and CI=true forbids skipping it");
    }
    // Straight to fd 2: libtest captures eprintln! of passing tests.
    let line = format!("!!!!! SKIPPED (needs root): test at {at} did not run !!!!!\n");
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
    false
}

/// A name unique to this process and call: `bht-<tag>-<pid>-<n>`.
pub fn unique_name(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("bht-{tag}-{}-{n}", std::process::id())
}
