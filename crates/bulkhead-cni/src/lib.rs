//! bulkhead-cni: a CNI 1.1.0 plugin that attaches containers to bulkhead
//! networks by asking bulkheadd.
//!
//! The runtime runs the binary with `CNI_*` variables ([`env`]) and a network
//! configuration on stdin ([`config`]); [`plugin::run`] checks both, performs
//! the command through a [`backend::Backend`] and returns what to print: a
//! result ([`result`]), a VERSION answer ([`version`]) or an error
//! ([`error`]). [`daemon`] is the backend over bulkheadd's API; [`fake`] is a
//! file-backed stand-in used by the tests. The contract is `docs/cni.md`.

pub mod backend;
pub mod config;
pub mod daemon;
pub mod env;
pub mod error;
pub mod fake;
mod fields;
pub mod plugin;
pub mod result;
pub mod version;

pub use error::{CniError, Code};
pub use plugin::{run, Outcome};
