//! Actions: the expressions that end a rule (verdict, verdict map, NAT,
//! masquerade, mark, rate-limited log).
//!
//! Contract: an action only appends to the rule's expressions and uses
//! registers 1 and 2 (or the concatenated key's registers for a verdict
//! map); it never adds a set, so it can follow any matches. Marks are
//! host-order integers in the register; NAT addresses and ports are loaded
//! as immediates in network order.

use bulkhead_policy::ir::Action;

use super::field::key_loads;
use super::{lower_verdict, LowerError};
use crate::nft::{Expr, MetaKey, NatFlags, NatKind, Reg, RegRange};

pub(super) fn lower_action(out: &mut Vec<Expr>, a: &Action) -> Result<(), LowerError> {
    match a {
        Action::Verdict(v) => out.push(Expr::Verdict(lower_verdict(v))),
        Action::Vmap { key, map } => {
            let (loads, sreg) = key_loads(key)?;
            out.extend(loads);
            out.push(Expr::Lookup {
                set: map.clone(),
                set_id: None,
                sreg,
                dreg: Some(Reg::VERDICT),
                invert: false,
            });
        }
        Action::Dnat { addr, port } => nat(out, NatKind::Dnat, *addr, *port),
        Action::Snat { addr } => nat(out, NatKind::Snat, *addr, None),
        Action::Masquerade => out.push(Expr::Masquerade {
            proto: None,
            flags: NatFlags::EMPTY,
        }),
        Action::SetMarkBits(bits) => {
            // Marks are host-order integers in the register.
            out.push(Expr::Meta {
                key: MetaKey::Mark,
                dreg: Reg::R1,
            });
            out.push(Expr::Bitwise {
                sreg: Reg::R1,
                dreg: Reg::R1,
                mask: (!bits).to_ne_bytes().to_vec(),
                xor: bits.to_ne_bytes().to_vec(),
            });
            out.push(Expr::MetaSet {
                key: MetaKey::Mark,
                sreg: Reg::R1,
            });
        }
        Action::Log(l) => {
            out.push(Expr::Limit {
                rate: u64::from(l.rate),
                burst: l.burst,
            });
            out.push(Expr::Log {
                group: l.group,
                prefix: l.prefix.clone(),
            });
        }
    }
    Ok(())
}

fn nat(out: &mut Vec<Expr>, kind: NatKind, addr: std::net::IpAddr, port: Option<u16>) {
    let (family, bytes) = match addr {
        std::net::IpAddr::V4(a) => (crate::nft::Family::Ip, a.octets().to_vec()),
        std::net::IpAddr::V6(a) => (crate::nft::Family::Ip6, a.octets().to_vec()),
    };
    let one = |r| Some(RegRange { min: r, max: r });
    out.push(Expr::Immediate {
        dreg: Reg::R1,
        data: bytes,
    });
    if let Some(p) = port {
        out.push(Expr::Immediate {
            dreg: Reg::R2,
            data: p.to_be_bytes().to_vec(),
        });
    }
    out.push(Expr::Nat {
        kind,
        family,
        addr: one(Reg::R1),
        proto: port.and(one(Reg::R2)),
        flags: NatFlags::EMPTY,
    });
}
