//! The attack suite (spec §9, `docs/security.md`): a hostile tenant is root
//! in its own namespace and sends whatever it likes. Every attack here is
//! first shown to succeed against a deliberately weakened setup (a plain
//! veth or bridge, or bulkhead's table with the one defending rule removed),
//! so the test can fail, and then shown stopped by bulkhead on every driver
//! it applies to — with real frames sent from inside namespaces.
//!
//! One module per attack surface; each owns its helpers beyond `common`.

#[path = "../common/mod.rs"]
mod common;

mod adoption;
mod l2;
mod ports;
mod tamper;
