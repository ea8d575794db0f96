//! `trace`: the whole path of one packet through the host (spec §5, §12),
//! computed from the engine's state and the host's own addresses by the
//! pure path model of [`path`]. It names every step (source binding, the
//! source's points, NAT, the network step, the destination's points,
//! delivery), the rule that decided at each, and the final verdict.
//!
//! Input: `from` is an endpoint name or an IP address (an endpoint's, the
//! host's, or anything else: "outside"); `source_ip` makes an endpoint send
//! with another source address (what a hostile tenant does: the switch port
//! drops it); `to` is an endpoint name, an IP address or `IP:PORT` (a host
//! address and port resolve the published port); `established` traces a
//! packet of a connection conntrack already tracks (a reply, or a later
//! packet). Bad input gets the usual one-line error naming the field.

mod binding;
mod network;
pub mod path;
#[cfg(test)]
mod path_tests;
#[cfg(test)]
mod query_tests;
mod resolve;
pub mod topology;

use std::net::IpAddr;

/// What to trace, as given (validated here): the model's raw spec.
pub use bulkhead_model::TraceSpec;
use bulkhead_model::{Direction, Protocol};
use bulkhead_policy::Verdict;
use serde::Serialize;

pub use path::{trace_path, Origin, PathTrace, Probe, Stage, Step, Target, Topology};

use crate::error::{EngineError, Result};
use crate::Engine;

/// The source port a trace assumes when none is given (an ephemeral one).
pub const DEFAULT_SOURCE_PORT: u16 = 49152;

/// One step on the path (see [`path::Step`]).
pub type TraceStep = Step;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TraceReport {
    pub from: IpAddr,
    pub to: IpAddr,
    pub protocol: Protocol,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_port: Option<u16>,
    pub port: Option<u16>,
    pub established: bool,
    pub steps: Vec<TraceStep>,
    pub verdict: Verdict,
    /// Where the packet ends (or would have ended).
    pub target: Target,
    /// Source and destination as the destination sees them (after NAT).
    pub delivered_from: IpAddr,
    pub delivered_to: IpAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_port: Option<u16>,
}

impl TraceReport {
    /// The step that decided: the blocking one, or the last enforcement
    /// point passed, or the last step.
    pub fn decider(&self) -> Option<&TraceStep> {
        self.steps
            .iter()
            .find(|s| s.verdict == Verdict::Block)
            .or_else(|| {
                self.steps
                    .iter()
                    .rev()
                    .find(|s| matches!(s.stage, Stage::SourcePoint | Stage::DestinationPoint))
            })
            .or(self.steps.last())
    }
}

/// A one-line label of a step, e.g. `switch bhp0123 in: rule-1`.
pub fn step_label(s: &TraceStep) -> String {
    match s.direction {
        Some(d) => format!("{} {} {}: {}", s.point, s.location, dir(d), s.rule),
        None => format!("{} {}: {}", s.point, s.location, s.rule),
    }
}

fn dir(d: Direction) -> &'static str {
    match d {
        Direction::In => "in",
        Direction::Out => "out",
    }
}

impl Engine {
    /// Traces one packet (see the module doc).
    pub fn trace(&self, q: &TraceSpec) -> Result<TraceReport> {
        let protocol = Protocol::parse("protocol", &q.protocol)?;
        let Some(number) = protocol.number() else {
            return Err(EngineError::Invalid(bulkhead_model::InvalidValue::new(
                "protocol",
                "any",
                "one protocol: a trace follows one packet",
            )));
        };
        // Read the host's addresses before taking the engine's lock: a
        // netlink dump, not an operation on bulkhead's state.
        let host = self.kernel.local_addresses().map_err(EngineError::kernel)?;
        let inner = self.lock();
        let topo = resolve::topology(&inner.state, &host)?;
        let probe = resolve::probe(&inner.state, &topo, q, number)?;
        drop(inner);
        let t = trace_path(&topo, probe);
        Ok(TraceReport {
            from: probe.src,
            to: probe.dst,
            protocol,
            source_port: probe.src_port,
            port: probe.dst_port,
            established: probe.established,
            steps: t.steps,
            verdict: t.verdict,
            target: t.target,
            delivered_from: t.final_src,
            delivered_to: t.final_dst,
            delivered_port: t.final_dst_port,
        })
    }
}
