//! Rule boxes: the classification space's dimensions ([`Dim`]) and protocol
//! classes ([`ProtoClass`]), what one ACL rule covers in (l4proto × saddr ×
//! daddr × sport × dport) for one direction, address family and protocol
//! class, the domains of those dimensions, and a fast hasher for the
//! classifier's tables.
//!
//! Invariants: a box has one entry per dimension in [`Dim::ALL`] order
//! (`None` = unconstrained); address intervals are sorted, merged and of the
//! requested family only; a rule that cannot match the family or class has no
//! box. In packet terms: `in` maps remote → saddr, local → daddr, `out` the
//! reverse.

use std::hash::{BuildHasherDefault, Hasher};

use bulkhead_model::{AclRule, Cidr, Direction, Protocol};

use crate::ir::Field;
use crate::packet::{is_ported, PORTED_PROTOCOLS};

/// A classification dimension, in key order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dim {
    Proto,
    Saddr,
    Daddr,
    Sport,
    Dport,
}

impl Dim {
    pub const ALL: [Dim; 5] = [Dim::Proto, Dim::Saddr, Dim::Daddr, Dim::Sport, Dim::Dport];

    /// The nftables field a dimension loads.
    pub fn field(self, v4: bool) -> Field {
        match (self, v4) {
            (Dim::Proto, _) => Field::L4Proto,
            (Dim::Saddr, true) => Field::Saddr4,
            (Dim::Saddr, false) => Field::Saddr6,
            (Dim::Daddr, true) => Field::Daddr4,
            (Dim::Daddr, false) => Field::Daddr6,
            (Dim::Sport, _) => Field::Sport,
            (Dim::Dport, _) => Field::Dport,
        }
    }
}

/// Protocols with ports vs the rest: they get separate maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProtoClass {
    Ported,
    Portless,
}

impl ProtoClass {
    pub fn of(protocol: u8) -> Self {
        if is_ported(protocol) {
            ProtoClass::Ported
        } else {
            ProtoClass::Portless
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProtoClass::Ported => "ported",
            ProtoClass::Portless => "portless",
        }
    }
}

/// Inclusive intervals of one dimension.
pub type Intervals = Vec<(u128, u128)>;

/// A rule's box: intervals per [`Dim`] (indexed by `Dim as usize`).
pub type RuleBox = [Option<Intervals>; 5];

/// Whether a box covers its whole class (every later rule is shadowed).
pub fn is_full(b: &RuleBox) -> bool {
    b.iter().all(Option::is_none)
}

fn cidr_range(c: &Cidr) -> (u128, u128) {
    let v = |ip: std::net::IpAddr| match ip {
        std::net::IpAddr::V4(a) => u128::from(u32::from(a)),
        std::net::IpAddr::V6(a) => u128::from(a),
    };
    (v(c.network()), v(c.last()))
}

/// `v` sorted, overlapping and adjacent intervals joined (in place).
fn merged(mut v: Intervals) -> Intervals {
    if v.len() < 2 {
        return v;
    }
    v.sort_unstable();
    let mut n = 0;
    for i in 0..v.len() {
        let (lo, hi) = v[i];
        let joins = n > 0 && (v[n - 1].1 == u128::MAX || lo <= v[n - 1].1 + 1);
        if joins {
            v[n - 1].1 = v[n - 1].1.max(hi);
        } else {
            v[n] = (lo, hi);
            n += 1;
        }
    }
    v.truncate(n);
    v
}

/// Whether `rule` can match packets of this family and class at all (what
/// [`rule_box`] returns a box for), read from the rule itself: its address
/// lists know their families without reading their blocks.
pub fn applies(rule: &AclRule, v4: bool, class: ProtoClass) -> bool {
    let class_ok = match class {
        ProtoClass::Ported => rule.protocol == Protocol::Any || rule.protocol.has_ports(),
        ProtoClass::Portless => !rule.has_ports() && !rule.protocol.has_ports(),
    };
    class_ok && rule.remote_addresses.admits_family(v4) && rule.local_addresses.admits_family(v4)
}

/// The box a rule covers, or `None` if the rule cannot match this
/// family/class at all ([`applies`]).
pub fn rule_box(
    rule: &AclRule,
    direction: Direction,
    v4: bool,
    class: ProtoClass,
) -> Option<RuleBox> {
    if !applies(rule, v4, class) {
        return None;
    }
    let addrs = |l: &bulkhead_model::AddressList| -> Option<Intervals> {
        if l.is_any() {
            return None;
        }
        let mut v: Intervals = Vec::with_capacity(l.count_of(v4));
        v.extend(
            (l.items().iter())
                .filter(|c| c.is_ipv4() == v4)
                .map(cidr_range),
        );
        Some(merged(v))
    };
    let ports = |l: &bulkhead_model::PortList| -> Option<Intervals> {
        (!l.is_any()).then(|| {
            let mut v: Intervals = Vec::with_capacity(l.ranges().len());
            v.extend(
                l.ranges()
                    .iter()
                    .map(|r| (u128::from(r.start), u128::from(r.end))),
            );
            merged(v)
        })
    };
    let (remote, local) = (addrs(&rule.remote_addresses), addrs(&rule.local_addresses));
    let (rport, lport) = (ports(&rule.remote_ports), ports(&rule.local_ports));
    let proto = rule
        .protocol
        .number()
        .map(|n| vec![(u128::from(n), u128::from(n))]);
    Some(match direction {
        Direction::In => [proto, remote, local, rport, lport],
        Direction::Out => [proto, local, remote, lport, rport],
    })
}

/// The values a dimension can take in a class (sorted, disjoint).
pub fn domain(dim: Dim, v4: bool, class: ProtoClass) -> Intervals {
    match dim {
        Dim::Proto => {
            let ported: Intervals = PORTED_PROTOCOLS
                .iter()
                .map(|&p| (u128::from(p), u128::from(p)))
                .collect();
            match class {
                ProtoClass::Ported => ported,
                ProtoClass::Portless => {
                    let mut out = Vec::new();
                    let mut next = 0u128;
                    for (p, _) in ported {
                        out.push((next, p - 1));
                        next = p + 1;
                    }
                    out.push((next, 255));
                    out
                }
            }
        }
        Dim::Saddr | Dim::Daddr if v4 => vec![(0, u128::from(u32::MAX))],
        Dim::Saddr | Dim::Daddr => vec![(0, u128::MAX)],
        Dim::Sport | Dim::Dport => vec![(0, 65535)],
    }
}

/// A multiply-rotate hasher (FxHash-like): the classifier hashes many small
/// integer keys, where SipHash dominates the cost. Not DoS-resistant; the
/// inputs are the host's own validated rules.
#[derive(Debug, Default, Clone, Copy)]
pub struct FastHasher(u64);

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Little-endian words, the last one zero-padded.
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut b = [0u8; 8];
            b.copy_from_slice(word);
            self.write_u64(u64::from_le_bytes(b));
        }
        let tail = words.remainder();
        if !tail.is_empty() {
            let mut b = [0u8; 8];
            b[..tail.len()].copy_from_slice(tail);
            self.write_u64(u64::from_le_bytes(b));
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }
    fn write_u8(&mut self, v: u8) {
        self.write_u64(u64::from(v));
    }
    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
    fn write_u128(&mut self, v: u128) {
        self.write_u64(v as u64);
        self.write_u64((v >> 64) as u64);
    }
}

/// `HashMap`/`HashSet` builder with [`FastHasher`].
pub type FastBuild = BuildHasherDefault<FastHasher>;
