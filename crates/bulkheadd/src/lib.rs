//! bulkheadd as a library: the service behind the API, so the daemon binary,
//! the CLI's `demo` (an in-process service, [`embedded`]) and tests share
//! one wiring.

pub mod cluster_ops;
pub mod convert;
pub mod embedded;
pub mod events;
pub mod import;
pub mod listen;
pub mod metrics;
pub mod run;
pub mod service;
pub mod web;

pub use run::{run, Options};
pub use service::{dispatch, Daemon};
