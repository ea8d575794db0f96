//! bulkhead's end-to-end test kit (tier T2), shared by the engine, daemon and
//! CNI tests; a dev-dependency only, never linked into a product binary.
//!
//! - [`cmd`]: `ip`/`nft` runners for set-up and inspection, and the path of a
//!   workspace binary next to the test.
//! - [`netns`]: throwaway namespaces with names unique to the test
//!   (`bht<pid><kind><n>-` pin prefixes), the throwaway "host" namespace
//!   ([`netns::Host`], optionally with an "outside" peer behind an uplink),
//!   runtime-style namespaces, and link queries.
//! - [`lan`]: a simulated LAN behind a host's uplink, and an underlay
//!   joining two hosts.
//! - [`probe`]: real packets between namespaces, built on
//!   `bulkhead_dataplane::probe` (the one home of the packet builders).
//! - [`capture`]: every frame of a namespace, for L2 assertions.
//! - [`guest`]: real QEMU guests (TCG) on a vm endpoint's TAP, driven
//!   over their serial console.
//! - [`cluster`]: an underlay, a real etcd (plain or TLS, stopped and
//!   started for outages) and hosts running bulkheadd with the cluster flags.
//! - [`daemon`]: `bulkheadd` started in its own throwaway host namespace,
//!   driven through the `bulkhead` CLI or the API client; [`plugin`] runs
//!   the `bulkhead-cni` plugin against it.
//!
//! Safety contract: everything here is made inside namespaces the test
//! creates, and is removed by guards on drop — also when the test panics.
//! Nothing touches the machine's own namespace, links, routes, sysctls or
//! firewall, and probes only address namespaces the test made.

pub mod capture;
pub mod cli;
pub mod cluster;
pub mod cmd;
pub mod daemon;
pub mod dhcp;
pub mod guest;
pub mod lan;
pub mod netns;
pub mod plugin;
pub mod probe;
pub mod tap;

pub use bulkhead_dataplane::testing::require_root;
