//! Rules: matches, counters and comments, around the field loads
//! ([`super::field`]) and the action ([`super::action`]).
//!
//! Contract: a rule lowers to its matches in order (each a self-contained
//! load → [bitwise] → cmp/lookup sequence starting at register 1, so matches
//! never depend on each other's registers), then `counter` if asked, then
//! the action. Anonymous sets a match needs are returned with the rule and
//! must be added before it in the same batch ([`super::add_lowered_rule`]).
//! Host-order kernel words (ct state/status, fib type) are compared in host
//! byte order, as nft does; packet fields in network order.

use bulkhead_policy::ir::{self, Field, Match};

use super::field::{field_load, key_loads, key_type};
use super::{action, AnonIds, LowerError};
use crate::nft::{
    CmpOp, CtKey, Element, Expr, FibFlags, FibResult, KeyType, MetaKey, PayloadBase, RangeOp, Reg,
    Set, SetFlags, SetKey,
};

/// `IPS_DST_NAT` of the conntrack status word.
const IPS_DST_NAT: u32 = 1 << 5;
/// `RTN_LOCAL`, the fib address type of a local address.
const RTN_LOCAL: u32 = 2;
/// nft's `NFTNL_UDATA_RULE_COMMENT` TLV type.
const UDATA_RULE_COMMENT: u8 = 0;
/// nft's comment limit (`NFTNL_UDATA_COMMENT_MAXLEN`), NUL included.
const COMMENT_MAX: usize = 128;

/// A rule ready for the batch, with the anonymous sets it references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoweredRule {
    pub anon_sets: Vec<(Set, Vec<Element>)>,
    pub rule: crate::nft::Rule,
}

/// nft's comment userdata: TLV `{type 0, len, "text\0"}`, truncated to
/// nft's limit on a character boundary.
pub fn comment_userdata(comment: &str) -> Vec<u8> {
    let mut end = comment.len().min(COMMENT_MAX - 1);
    while !comment.is_char_boundary(end) {
        end -= 1;
    }
    let text = &comment.as_bytes()[..end];
    let mut out = Vec::with_capacity(text.len() + 3);
    out.push(UDATA_RULE_COMMENT);
    out.push((text.len() + 1) as u8);
    out.extend_from_slice(text);
    out.push(0);
    out
}

fn masked_cmp_neq0(load: Expr, bits: u32) -> [Expr; 3] {
    [
        load,
        Expr::Bitwise {
            sreg: Reg::R1,
            dreg: Reg::R1,
            mask: bits.to_ne_bytes().to_vec(),
            xor: vec![0; 4],
        },
        Expr::Cmp {
            sreg: Reg::R1,
            op: CmpOp::Neq,
            data: vec![0; 4],
        },
    ]
}

fn eq_or_neq(negate: bool) -> CmpOp {
    if negate {
        CmpOp::Neq
    } else {
        CmpOp::Eq
    }
}

struct RuleBuilder<'a> {
    exprs: Vec<Expr>,
    anon_sets: Vec<(Set, Vec<Element>)>,
    ids: &'a mut AnonIds,
}

impl RuleBuilder<'_> {
    /// `load` into R1, then membership in an anonymous constant set of
    /// one-byte values (or one cmp when there is a single value).
    fn one_of(&mut self, load: Expr, ty: KeyType, values: &[u8], negate: bool) {
        self.exprs.push(load);
        if let [one] = values {
            self.exprs.push(Expr::Cmp {
                sreg: Reg::R1,
                op: eq_or_neq(negate),
                data: vec![*one],
            });
            return;
        }
        let id = self.ids.next_id();
        let set = Set::new("__set%d", SetKey::single(ty))
            .with_flags(SetFlags::ANONYMOUS | SetFlags::CONSTANT)
            .with_id(id);
        let mut sorted = values.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let elems = sorted.iter().map(|v| Element::new(vec![*v])).collect();
        self.anon_sets.push((set, elems));
        self.exprs.push(Expr::Lookup {
            set: "__set%d".into(),
            set_id: Some(id),
            sreg: Reg::R1,
            dreg: None,
            invert: negate,
        });
    }

    /// `load` of `f` into R1, then one `cmp eq` (a single value), one
    /// `range eq` (a single range) or a lookup in an anonymous constant
    /// interval set (several ranges, encoded like a named interval set).
    fn ranges(&mut self, f: Field, ranges: &[(u128, u128)]) -> Result<(), LowerError> {
        let n = f.len();
        let max = if n >= 16 {
            u128::MAX
        } else {
            (1u128 << (8 * n)) - 1
        };
        if ranges.is_empty() {
            return Err(LowerError::EmptyMatch("ranges"));
        }
        if ranges
            .windows(2)
            .any(|w| w[1].0 <= w[0].1 || w[0].1.checked_add(1).is_none())
            || ranges.iter().any(|&(lo, hi)| lo > hi || hi > max)
        {
            return Err(LowerError::BadElements {
                set: format!("ranges of {f:?}"),
                reason: format!("not sorted, disjoint ranges within the field: {ranges:?}"),
            });
        }
        self.exprs.push(field_load(f, Reg::R1));
        if let [(lo, hi)] = ranges {
            if lo == hi {
                self.exprs.push(Expr::cmp_eq(Reg::R1, ir::be_bytes(*lo, n)));
            } else {
                self.exprs.push(Expr::Range {
                    sreg: Reg::R1,
                    op: RangeOp::Eq,
                    from: ir::be_bytes(*lo, n),
                    to: ir::be_bytes(*hi, n),
                });
            }
            return Ok(());
        }
        let mut decl = ir::Set::new("__set%d", vec![f], true, ir::SetKind::Set);
        for &(lo, hi) in ranges {
            decl.elements.insert(
                ir::Key::one(ir::KeyBytes::be(lo, n), ir::KeyBytes::be(hi, n)),
                None,
            );
        }
        let elems = super::set::encode(&decl, decl.elements.iter())?;
        let id = self.ids.next_id();
        let set = Set::new("__set%d", SetKey::single(key_type(f)))
            .with_flags(SetFlags::ANONYMOUS | SetFlags::CONSTANT | SetFlags::INTERVAL)
            .with_id(id);
        self.anon_sets.push((set, elems));
        self.exprs.push(Expr::Lookup {
            set: "__set%d".into(),
            set_id: Some(id),
            sreg: Reg::R1,
            dreg: None,
            invert: false,
        });
        Ok(())
    }

    fn lower_match(&mut self, m: &Match) -> Result<(), LowerError> {
        let ct = |key| Expr::Ct {
            key,
            dreg: Reg::R1,
            direction: None,
        };
        match m {
            Match::CtState(s) => self.exprs.extend(masked_cmp_neq0(ct(CtKey::State), s.0)),
            Match::CtStatusDnat => self
                .exprs
                .extend(masked_cmp_neq0(ct(CtKey::Status), IPS_DST_NAT)),
            Match::IifName { name, negate } | Match::OifName { name, negate } => {
                let f = match m {
                    Match::IifName { .. } => Field::IifName,
                    _ => Field::OifName,
                };
                self.exprs.push(field_load(f, Reg::R1));
                self.exprs.push(Expr::Cmp {
                    sreg: Reg::R1,
                    op: eq_or_neq(*negate),
                    data: ir::ifname_bytes(name),
                });
            }
            Match::EtherType(t) => {
                self.exprs.push(Expr::Meta {
                    key: MetaKey::Protocol,
                    dreg: Reg::R1,
                });
                self.exprs.push(Expr::cmp_eq(Reg::R1, t.to_be_bytes()));
            }
            Match::NfProto(p) => {
                let v = match p {
                    ir::NfProto::Ipv4 => libc::NFPROTO_IPV4,
                    ir::NfProto::Ipv6 => libc::NFPROTO_IPV6,
                };
                self.exprs.push(Expr::Meta {
                    key: MetaKey::NfProto,
                    dreg: Reg::R1,
                });
                self.exprs.push(Expr::cmp_eq(Reg::R1, [v as u8]));
            }
            Match::L4Proto { protos, negate } => {
                if protos.is_empty() {
                    return Err(LowerError::EmptyMatch("l4proto"));
                }
                let load = field_load(Field::L4Proto, Reg::R1);
                self.one_of(load, KeyType::InetProto, protos, *negate);
            }
            Match::Icmpv6Type(types) => {
                if types.is_empty() {
                    return Err(LowerError::EmptyMatch("icmpv6 type"));
                }
                let load = Expr::Payload {
                    base: PayloadBase::Transport,
                    offset: 0,
                    len: 1,
                    dreg: Reg::R1,
                };
                self.one_of(load, KeyType::Integer(1), types, false);
            }
            Match::Prefix { field, addr, len } => {
                let n = field.len();
                if addr.len() != n || usize::from(*len) > n * 8 {
                    return Err(LowerError::BadPrefix {
                        field: *field,
                        got: addr.len(),
                        len: *len,
                    });
                }
                let mask: Vec<u8> = (0..n)
                    .map(|i| {
                        let bits = (usize::from(*len)).saturating_sub(i * 8).min(8);
                        (0xffu16 << (8 - bits)) as u8
                    })
                    .collect();
                self.exprs.push(field_load(*field, Reg::R1));
                if usize::from(*len) < n * 8 {
                    self.exprs.push(Expr::Bitwise {
                        sreg: Reg::R1,
                        dreg: Reg::R1,
                        mask: mask.clone(),
                        xor: vec![0; n],
                    });
                }
                let masked = addr
                    .iter()
                    .zip(&mask)
                    .map(|(a, m)| a & m)
                    .collect::<Vec<_>>();
                self.exprs.push(Expr::cmp_eq(Reg::R1, masked));
            }
            Match::Ranges { field, ranges } => self.ranges(*field, ranges)?,
            Match::Lookup { key, set, negate } => {
                let (loads, sreg) = key_loads(key)?;
                self.exprs.extend(loads);
                self.exprs.push(Expr::Lookup {
                    set: set.clone(),
                    set_id: None,
                    sreg,
                    dreg: None,
                    invert: *negate,
                });
            }
            Match::FibDaddrLocal => {
                self.exprs.push(Expr::Fib {
                    flags: FibFlags::DADDR,
                    result: FibResult::AddrType,
                    dreg: Reg::R1,
                });
                self.exprs
                    .push(Expr::cmp_eq(Reg::R1, RTN_LOCAL.to_ne_bytes()));
            }
        }
        Ok(())
    }
}

/// Lowers one rule of `chain`; anonymous set ids come from `ids`.
pub fn lower_rule(
    chain: &str,
    rule: &ir::Rule,
    ids: &mut AnonIds,
) -> Result<LoweredRule, LowerError> {
    let mut b = RuleBuilder {
        exprs: Vec::new(),
        anon_sets: Vec::new(),
        ids,
    };
    for m in rule.matches.iter() {
        b.lower_match(m)?;
    }
    if rule.counter {
        b.exprs.push(Expr::Counter);
    }
    action::lower_action(&mut b.exprs, &rule.action)?;
    let mut r = crate::nft::Rule::new(chain, b.exprs);
    if let Some(c) = &rule.comment {
        r = r.with_userdata(comment_userdata(c));
    }
    Ok(LoweredRule {
        anon_sets: b.anon_sets,
        rule: r,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_lower_to_cmp_range_or_an_anonymous_interval_set() {
        let r = |ranges: Vec<(u128, u128)>| {
            let rule = ir::Rule::verdict(
                vec![Match::Ranges {
                    field: Field::Dport,
                    ranges: ranges.into(),
                }],
                ir::Verdict::Accept,
            );
            lower_rule("c", &rule, &mut AnonIds::default()).unwrap()
        };
        let one = r(vec![(80, 80)]);
        assert!(one.rule.exprs.contains(&Expr::cmp_eq(Reg::R1, [0, 80])));
        let range = r(vec![(1000, 2000)]);
        assert!(range.rule.exprs.iter().any(
            |e| matches!(e, Expr::Range { from, to, .. } if from == &[3, 232] && to == &[7, 208])
        ));
        let several = r(vec![(22, 22), (80, 90), (65535, 65535)]);
        assert_eq!(several.anon_sets.len(), 1);
        // starts and end markers; the last range ends at the top (no marker)
        assert_eq!(several.anon_sets[0].1.len(), 5);
        let bad = ir::Rule::verdict(
            vec![Match::Ranges {
                field: Field::Dport,
                ranges: ir::RangeList::from_slice(&[(5, 70000)]),
            }],
            ir::Verdict::Accept,
        );
        assert!(lower_rule("c", &bad, &mut AnonIds::default()).is_err());
    }

    #[test]
    fn comment_is_nft_tlv() {
        assert_eq!(comment_userdata("ab"), vec![0, 3, b'a', b'b', 0]);
        assert_eq!(comment_userdata(&"x".repeat(300)).len(), 2 + 128);
    }

    #[test]
    fn prefix_masks_and_several_protocols_use_an_anonymous_set() {
        let rule = ir::Rule::verdict(
            vec![
                Match::Prefix {
                    field: Field::Saddr4,
                    addr: vec![10, 1, 2, 3],
                    len: 12,
                },
                Match::L4Proto {
                    protos: ir::ProtoList::from_slice(&[17, 6]),
                    negate: true,
                },
            ],
            ir::Verdict::Drop,
        );
        let l = lower_rule("c", &rule, &mut AnonIds::default()).unwrap();
        assert!(l.rule.exprs.contains(&Expr::cmp_eq(Reg::R1, [10, 0, 0, 0])));
        assert!(l.rule.exprs.iter().any(|e| matches!(e,
            Expr::Bitwise { mask, .. } if mask == &[255, 240, 0, 0])));
        assert_eq!(l.anon_sets.len(), 1);
        assert_eq!(l.anon_sets[0].1.len(), 2);
        assert!(matches!(
            l.rule.exprs[4],
            Expr::Lookup {
                invert: true,
                set_id: Some(1),
                ..
            }
        ));
    }
}
