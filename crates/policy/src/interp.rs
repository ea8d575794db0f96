//! An interpreter of the IR, for tests: given a table, a hook and a packet
//! with its interfaces, it returns what the kernel would do.
//!
//! Semantics follow nf_tables: base chains of the hook run in priority order
//! (then by name); `accept` ends a base chain and passes the packet to the
//! next one, `drop` ends everything; falling off a base chain (or `return`
//! from it) applies its policy; `jump` returns to the caller when the callee
//! ends without a verdict, `goto` does not; a verdict map without a matching
//! element goes on with the next rule; NAT actions count as `accept`.
//! Element lookups compare big-endian bytes, field by field.

use std::net::IpAddr;

use crate::ir::{ifname_bytes, Action, ChainPolicy, CtStates, Field, Hook, Match, Table, Verdict};
use crate::packet::{CtState, Packet};

/// A packet as a hook sees it (absolute source/destination).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub protocol: u8,
    pub src_port: u16,
    pub dst_port: u16,
    pub icmp_type: Option<u8>,
    pub ct: CtState,
    pub iif: Option<String>,
    pub oif: Option<String>,
    pub ether_saddr: Option<[u8; 6]>,
    pub mark: u32,
    pub dnat: bool,
    pub daddr_local: bool,
    /// An ARP frame: its sender hardware and protocol addresses (`src`
    /// then holds the sender address too). IP fields do not load for it.
    pub arp: Option<([u8; 6], std::net::Ipv4Addr)>,
    /// The target address of a neighbour solicitation or advertisement.
    pub nd_target: Option<std::net::Ipv6Addr>,
}

impl Context {
    pub fn from_packet(p: &Packet) -> Self {
        let (src_port, dst_port) = p.ports();
        Self {
            src: p.src,
            dst: p.dst,
            protocol: p.protocol,
            src_port,
            dst_port,
            icmp_type: p.icmp_type,
            ct: p.ct,
            iif: None,
            oif: None,
            ether_saddr: None,
            mark: 0,
            dnat: false,
            daddr_local: false,
            arp: None,
            nd_target: None,
        }
    }
}

/// The final verdict of a hook: `Accept` or `Drop`.
pub fn run(table: &Table, hook: Hook, ctx: &Context) -> Verdict {
    let mut bases: Vec<_> = table
        .chains
        .values()
        .filter_map(|c| c.base.as_ref().map(|b| (b, c)))
        .collect();
    bases.retain(|(b, _)| b.hook == hook);
    bases.sort_by_key(|(b, c)| (b.priority, c.name.clone()));
    for (base, chain) in bases {
        match run_chain(table, &chain.name, ctx, 0, 0) {
            Some(Verdict::Drop) => return Verdict::Drop,
            Some(_) => {}
            None if base.policy == ChainPolicy::Drop => return Verdict::Drop,
            None => {}
        }
    }
    Verdict::Accept
}

/// Runs a chain: `Some(accept|drop)` for a terminal verdict, `None` if the
/// chain ended (or returned) without one. `depth` counts jumps (the
/// kernel's stack), `hops` gotos (a guard against loops).
fn run_chain(
    table: &Table,
    name: &str,
    ctx: &Context,
    depth: usize,
    hops: usize,
) -> Option<Verdict> {
    assert!(depth < 16, "jump loop at chain {name}");
    assert!(hops < 1024, "goto loop at chain {name}");
    let chain = table
        .chains
        .get(name)
        .unwrap_or_else(|| panic!("no chain {name}"));
    for rule in &chain.rules {
        if !rule.matches.iter().all(|m| matches(table, m, ctx)) {
            continue;
        }
        let verdict = match &rule.action {
            Action::Verdict(v) => v.clone(),
            Action::Vmap { key, map } => match lookup(table, key, map, ctx) {
                Some(Some(v)) => v,
                _ => continue,
            },
            Action::Dnat { .. } | Action::Snat { .. } | Action::Masquerade => Verdict::Accept,
            // Logging (sampled or not) never changes where the packet goes;
            // a mark only steers routing after the hook.
            Action::Log(_) | Action::SetMarkBits(_) => continue,
        };
        match verdict {
            Verdict::Accept | Verdict::Drop => return Some(verdict),
            Verdict::Continue => {}
            Verdict::Return => return None,
            Verdict::Jump(c) => {
                if let Some(v) = run_chain(table, &c, ctx, depth + 1, hops + 1) {
                    return Some(v);
                }
            }
            Verdict::Goto(c) => return run_chain(table, &c, ctx, depth, hops + 1),
        }
    }
    None
}

fn ip_bytes(ip: IpAddr, v4: bool) -> Option<Vec<u8>> {
    match ip {
        IpAddr::V4(a) if v4 => Some(a.octets().to_vec()),
        IpAddr::V6(a) if !v4 => Some(a.octets().to_vec()),
        _ => None,
    }
}

/// The bytes a field loads, or `None` if the packet has no such field.
pub fn field_value(f: Field, ctx: &Context) -> Option<Vec<u8>> {
    let ip = ctx.arp.is_none();
    match f {
        Field::ArpSha => ctx.arp.map(|(mac, _)| mac.to_vec()),
        Field::ArpSpa => ctx.arp.map(|(_, a)| a.octets().to_vec()),
        Field::NdTarget => ctx.nd_target.map(|a| a.octets().to_vec()),
        Field::L4Proto
        | Field::Saddr4
        | Field::Daddr4
        | Field::Saddr6
        | Field::Daddr6
        | Field::Sport
        | Field::Dport
            if !ip =>
        {
            None
        }
        Field::IifName => ctx.iif.as_deref().map(ifname_bytes),
        Field::OifName => ctx.oif.as_deref().map(ifname_bytes),
        Field::L4Proto => Some(vec![ctx.protocol]),
        Field::Saddr4 => ip_bytes(ctx.src, true),
        Field::Daddr4 => ip_bytes(ctx.dst, true),
        Field::Saddr6 => ip_bytes(ctx.src, false),
        Field::Daddr6 => ip_bytes(ctx.dst, false),
        Field::Sport => Some(ctx.src_port.to_be_bytes().to_vec()),
        Field::Dport => Some(ctx.dst_port.to_be_bytes().to_vec()),
        Field::EtherSaddr => ctx.ether_saddr.map(|m| m.to_vec()),
        Field::Mark => Some(ctx.mark.to_be_bytes().to_vec()),
    }
}

/// `None`: no element; `Some(v)`: the element's verdict (None for plain sets).
fn lookup(table: &Table, key: &[Field], set: &str, ctx: &Context) -> Option<Option<Verdict>> {
    let set = table
        .sets
        .get(set)
        .unwrap_or_else(|| panic!("no set {set}"));
    let values: Vec<Vec<u8>> = key
        .iter()
        .map(|f| field_value(*f, ctx))
        .collect::<Option<_>>()?;
    set.elements
        .iter()
        .find(|(k, _)| {
            k.iter()
                .zip(&values)
                .all(|((lo, hi), v)| &**lo <= v.as_slice() && v.as_slice() <= &**hi)
        })
        .map(|(_, v)| v.clone())
}

fn matches(table: &Table, m: &Match, ctx: &Context) -> bool {
    match m {
        Match::CtState(s) => {
            let bit = match ctx.ct {
                CtState::New => CtStates::NEW,
                CtState::Established => CtStates::ESTABLISHED,
                CtState::Related => CtStates::RELATED,
                CtState::Invalid => CtStates::INVALID,
            };
            s.intersects(bit)
        }
        Match::CtStatusDnat => ctx.dnat,
        Match::IifName { name, negate } => (ctx.iif.as_deref() == Some(name)) != *negate,
        Match::OifName { name, negate } => (ctx.oif.as_deref() == Some(name)) != *negate,
        Match::L4Proto { .. } | Match::Icmpv6Type(_) | Match::NfProto(_) if ctx.arp.is_some() => {
            false
        }
        Match::NfProto(p) => ctx.src.is_ipv4() == (*p == crate::ir::NfProto::Ipv4),
        Match::L4Proto { protos, negate } => protos.contains(&ctx.protocol) != *negate,
        Match::Icmpv6Type(types) => ctx.icmp_type.is_some_and(|t| types.contains(&t)),
        Match::Prefix { field, addr, len } => field_value(*field, ctx).is_some_and(|v| {
            v.iter().zip(addr).enumerate().all(|(i, (a, b))| {
                let bits = (usize::from(*len).saturating_sub(i * 8)).min(8) as u32;
                let mask = if bits == 0 { 0 } else { 0xffu8 << (8 - bits) };
                a & mask == b & mask
            })
        }),
        Match::Ranges { field, ranges } => field_value(*field, ctx).is_some_and(|v| {
            let v = crate::ir::from_be(&v);
            ranges.iter().any(|&(lo, hi)| lo <= v && v <= hi)
        }),
        Match::Lookup { key, set, negate } => lookup(table, key, set, ctx).is_some() != *negate,
        Match::FibDaddrLocal => ctx.daddr_local,
        Match::EtherType(t) => {
            *t == match (ctx.arp, ctx.src.is_ipv4()) {
                (Some(_), _) => 0x0806,
                (None, true) => 0x0800,
                (None, false) => 0x86dd,
            }
        }
    }
}
