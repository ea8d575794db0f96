//! Harness for the plugin against the real daemon (root only), on the
//! shared kit (`bulkhead-testkit`):
//!
//! - [`Daemon`]: `bulkheadd` in a throwaway "host" namespace (the kit's
//!   launcher: pins with a unique prefix, socket and store in a temporary
//!   directory); [`Daemon::cni`] runs the real `bulkhead-cni` binary with
//!   `CNI_*` variables and [`Daemon::conf`], a configuration for this
//!   daemon's socket.
//! - [`Netns`]: a namespace made the way a runtime makes one (`ip netns
//!   add`), deleted on drop unless already gone.
//! - [`arrives_soon`]: a probe expected to arrive, retried while fresh
//!   links come up.
//!
//! On drop (also on panic) everything made here is deleted. Nothing touches
//! the machine's own namespace, links, routes or firewall.
#![allow(unused_imports)]

pub use bulkhead_testkit::daemon::Daemon;
pub use bulkhead_testkit::netns::Netns;
pub use bulkhead_testkit::plugin::{result_ip, Run};
pub use bulkhead_testkit::probe::arrives_soon;
