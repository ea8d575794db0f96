//! bulkhead's policy core, pure: no I/O, no unsafe.
//!
//! From validated model values ([`bulkhead_model`]) it derives which
//! enforcement points exist ([`matrix`]), the default port ACLs
//! ([`profile`]), the verdict for any packet ([`reference`], linear and
//! obviously right; [`Classifier`], fast), and the nftables ruleset that
//! enforces it ([`compile`] into the typed [`ir`]), with an interpreter of
//! that IR ([`interp`]), a minimal diff between two rulesets ([`diff`]) and a
//! renderer to `nft` syntax ([`render`]). Property tests hold the pieces to
//! one meaning: interpreted IR == classifier == reference.

#![forbid(unsafe_code)]

pub mod boxes;
pub mod classifier;
pub mod compile;
pub mod diff;
pub mod endpoint;
pub mod error;
pub mod interp;
pub mod ir;
pub mod matrix;
pub mod packet;
pub mod profile;
pub mod reference;
pub mod regions;
pub mod render;
pub mod segment;

pub use classifier::Classifier;
pub use compile::{compile_endpoint_firewall, compile_switch, FirewallEndpoint, SwitchPortPolicy};
pub use endpoint::{EndpointFacts, EndpointPolicy, Policy};
pub use error::PolicyError;
pub use matrix::{check_rule, enforcement_points, EnforcementPoint};
pub use packet::{CtState, Decider, Decision, Packet, Verdict};
pub use reference::evaluate;
pub use regions::{classify, Classification, ProtoClass, MAX_REGIONS};
pub use segment::{segment, Segments, MAX_SEGMENTS};
