//! bulkhead's dataplane: the only crate that talks to the kernel.
//!
//! Everything here is in-process netlink (rtnetlink for links, addresses and
//! routes; nf_tables and ctnetlink for rules and connection tracking; NFLOG
//! and the nf_tables monitor for events), all on one netlink core
//! (`netlink`: wire format, namespace-bound socket, ack collection), plus
//! the namespace plumbing that lets a netlink socket live inside another
//! network namespace. No operation spawns a process.

pub mod conntrack;
pub mod counters;
pub mod dhcp;
pub mod events;
pub mod fake;
pub mod host;
pub mod kernel;
pub mod lower;
pub(crate) mod netlink;
pub mod netns;
pub mod nft;
pub mod probe;
pub mod reaper;
pub mod rtnl;
mod sys;
pub mod sysctl;
pub mod testing;
