//! The fast evaluator: an endpoint's custom rules classified once per
//! (enforcement point, direction, family, protocol class) into the same
//! segments the compiler turns into verdict maps ([`crate::segment`]); each
//! verdict walks those segments in order, a few binary searches each —
//! O(segments × log n), with at most [`MAX_SEGMENTS`] segments. It shares the
//! frame (conntrack, neighbour discovery, defaults) with the reference
//! evaluator and must agree with it on every packet.

use bulkhead_model::Direction;

use crate::endpoint::EndpointPolicy;
use crate::error::PolicyError;
use crate::matrix::EnforcementPoint;
use crate::packet::{Decision, Packet};
use crate::reference::decide;
use crate::regions::{Dim, ProtoClass};
#[cfg(doc)]
use crate::segment::MAX_SEGMENTS;
use crate::segment::{segment, Segments};

/// Classified custom rules of one endpoint.
#[derive(Debug, Clone)]
pub struct Classifier {
    policy: EndpointPolicy,
    maps: Vec<Segments>,
}

const POINTS: [EnforcementPoint; 2] =
    [EnforcementPoint::HostFirewall, EnforcementPoint::SwitchPort];
const DIRECTIONS: [Direction; 2] = [Direction::In, Direction::Out];
const CLASSES: [ProtoClass; 2] = [ProtoClass::Ported, ProtoClass::Portless];

fn slot(point: EnforcementPoint, direction: Direction, v4: bool, class: ProtoClass) -> usize {
    let p = usize::from(point == EnforcementPoint::SwitchPort);
    let d = usize::from(direction == Direction::Out);
    let c = usize::from(class == ProtoClass::Portless);
    ((p * 2 + d) * 2 + usize::from(!v4)) * 2 + c
}

/// A stable name for one classified list, used in errors and map names.
pub fn acl_name(
    point: EnforcementPoint,
    direction: Direction,
    v4: bool,
    class: ProtoClass,
) -> String {
    let p = if point == EnforcementPoint::HostFirewall {
        "host"
    } else {
        "switch"
    };
    let f = if v4 { "v4" } else { "v6" };
    format!("{p}_{direction}_{f}_{}", class.as_str())
}

impl Classifier {
    pub fn new(policy: &EndpointPolicy) -> Result<Self, PolicyError> {
        let mut maps = Vec::with_capacity(16);
        for point in POINTS {
            for direction in DIRECTIONS {
                let rules = policy.ordered_rules(point, direction);
                for v4 in [true, false] {
                    for class in CLASSES {
                        debug_assert_eq!(maps.len(), slot(point, direction, v4, class));
                        let name = acl_name(point, direction, v4, class);
                        maps.push(segment(&rules, direction, v4, class, &name)?);
                    }
                }
            }
        }
        Ok(Self {
            policy: policy.clone(),
            maps,
        })
    }

    pub fn policy(&self) -> &EndpointPolicy {
        &self.policy
    }

    /// The segments of one list (what its verdict maps hold).
    pub fn segments(
        &self,
        point: EnforcementPoint,
        direction: Direction,
        v4: bool,
        class: ProtoClass,
    ) -> &Segments {
        &self.maps[slot(point, direction, v4, class)]
    }

    /// The verdict at `point`, identical to [`crate::reference::evaluate`].
    pub fn evaluate(&self, point: EnforcementPoint, packet: &Packet) -> Decision {
        decide(&self.policy, point, packet, |p| {
            let s = self.segments(point, p.direction, p.is_v4(), ProtoClass::of(p.protocol));
            s.lookup(&point_values(p)).cloned()
        })
    }
}

/// A packet's coordinates per [`Dim`] (in packet terms: saddr, daddr, ...).
pub fn point_values(p: &Packet) -> [u128; 5] {
    let ip = |a: std::net::IpAddr| match a {
        std::net::IpAddr::V4(a) => u128::from(u32::from(a)),
        std::net::IpAddr::V6(a) => u128::from(a),
    };
    let (sport, dport) = p.ports();
    let mut v = [0u128; 5];
    v[Dim::Proto as usize] = u128::from(p.protocol);
    v[Dim::Saddr as usize] = ip(p.src);
    v[Dim::Daddr as usize] = ip(p.dst);
    v[Dim::Sport as usize] = u128::from(sport);
    v[Dim::Dport as usize] = u128::from(dport);
    v
}
