//! Harness for end-to-end tests of the real binaries (tier T2): the kit's
//! daemon launcher (`bulkhead_testkit::daemon`: `bulkheadd` inside a
//! throwaway "host" namespace, pins with the unique prefix `bht<pid>d<n>-`,
//! store and socket in a temporary directory, everything removed on drop),
//! driven by the real `bulkhead` CLI (`bulkhead_testkit::cli`).
//!
//! The CLI binary is taken from the test's target directory: `cargo test
//! --workspace` builds it; alone, run `cargo test -p bulkhead -p bulkheadd`.
#![allow(dead_code, unused_imports)]

pub use bulkhead_testkit::cli::endpoint;
pub use bulkhead_testkit::cmd::ip;
pub use bulkhead_testkit::daemon::Daemon;

/// The `bulkhead` CLI binary next to this test's target directory.
pub fn cli_bin() -> std::path::PathBuf {
    bulkhead_testkit::cmd::sibling_bin("bulkhead")
}
