//! Clusters on etcd (spec §10, issue 15 item 7), end to end with real
//! processes: per case a fresh etcd in its own namespace on a test
//! underlay bridge and three throwaway hosts each running a bulkheadd
//! (`bulkhead_testkit::cluster`). Cases are independent and libtest runs
//! them on parallel threads; inside a case, all-pairs probes run at once.
//!
//! - `reach`: endpoints on all three hosts reach each other over VXLAN
//!   (TCP, UDP, ICMP) from entries the watch programmed (no learning); the
//!   network is a cluster object; `endpoint ls --all-nodes`; `network rm`
//!   refused while another node has endpoints on it.
//! - `acl`: host- and switch-type rules hold across hosts; weakened (the
//!   point's drop deleted with `nft`) the same probe passes.
//! - `crash`: kill -9 of a bulkheadd keeps its endpoints reachable before
//!   and after it shows `lost`; restart → `ready`, everything back; `node rm`
//!   of a stopped node withdraws its endpoints everywhere.
//! - `outage`: etcd stopped and started again: traffic keeps flowing, an
//!   operation fails naming the etcd endpoints or succeeds and is
//!   published later; nothing duplicated, nothing lost. A node frozen
//!   across an etcd restart and a compaction catches up (lists again).
//! - `ipam`: concurrent creates on all nodes, and a restart, never hand
//!   out an address twice.
//! - `tls`: the cluster over TLS with client certificates; a node with a
//!   certificate of another CA never joins.

mod acl;
mod crash;
mod ipam;
mod outage;
mod reach;
mod tls;
mod world;
