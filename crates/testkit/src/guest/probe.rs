//! `bulkhead_guest::probe` for tests: the same probes (re-exported), run
//! through [`on`], where a probe that cannot be run (the guest does not
//! answer, a socket cannot be opened) panics with the guest's console.

pub use bulkhead_guest::probe::*;

use super::Guest;

/// Runs `probe` on `g`; its answer, or a panic naming the error with the
/// console of `g`.
#[track_caller]
pub fn on<T>(
    g: &mut Guest,
    probe: impl FnOnce(&mut bulkhead_guest::Guest) -> bulkhead_guest::Result<T>,
) -> T {
    let r = probe(&mut g.0);
    g.must(r)
}
