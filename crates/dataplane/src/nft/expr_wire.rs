//! The `NFTA_EXPR_*` encoding of [`Expr`]: one `NFTA_LIST_ELEM { NAME,
//! DATA { ... } }` per expression.
//!
//! Contract: every integer attribute is written in the byte order the
//! kernel's policy for it demands (big endian, `NLA_BE32`/`NLA_BE64`);
//! register values (`Cmp`, `Bitwise`, `Immediate` data) are written as the
//! raw bytes the caller gave, since they are compared against registers as
//! they are (see [`super::expr`]).

use super::expr::Expr;
use super::nfnl::NfWriter;
use super::register::Reg;
use super::uapi::*;
use crate::netlink::wire::Writer;

impl Expr {
    /// Writes `NFTA_LIST_ELEM { NAME, DATA }`.
    pub(crate) fn encode(&self, w: &mut Writer) {
        let elem = w.nest_start(NFTA_LIST_ELEM);
        w.str(NFTA_EXPR_NAME, self.name());
        if !matches!(self, Expr::Counter) {
            let data = w.nest_start(NFTA_EXPR_DATA);
            self.encode_data(w);
            w.nest_end(data);
        }
        w.nest_end(elem);
    }

    fn encode_data(&self, w: &mut Writer) {
        match self {
            Expr::Meta { key, dreg } => {
                w.be32(NFTA_META_KEY, *key as u32);
                w.be32(NFTA_META_DREG, dreg.raw());
            }
            Expr::MetaSet { key, sreg } => {
                w.be32(NFTA_META_KEY, *key as u32);
                w.be32(NFTA_META_SREG, sreg.raw());
            }
            Expr::Payload {
                base,
                offset,
                len,
                dreg,
            } => {
                w.be32(NFTA_PAYLOAD_DREG, dreg.raw());
                w.be32(NFTA_PAYLOAD_BASE, *base as u32);
                w.be32(NFTA_PAYLOAD_OFFSET, *offset);
                w.be32(NFTA_PAYLOAD_LEN, *len);
            }
            Expr::Cmp { sreg, op, data } => {
                w.be32(NFTA_CMP_SREG, sreg.raw());
                w.be32(NFTA_CMP_OP, *op as u32);
                w.data_value(NFTA_CMP_DATA, data);
            }
            Expr::Bitwise {
                sreg,
                dreg,
                mask,
                xor,
            } => {
                w.be32(NFTA_BITWISE_SREG, sreg.raw());
                w.be32(NFTA_BITWISE_DREG, dreg.raw());
                w.be32(NFTA_BITWISE_LEN, mask.len() as u32);
                w.data_value(NFTA_BITWISE_MASK, mask);
                w.data_value(NFTA_BITWISE_XOR, xor);
            }
            Expr::Range { sreg, op, from, to } => {
                w.be32(NFTA_RANGE_SREG, sreg.raw());
                w.be32(NFTA_RANGE_OP, *op as u32);
                w.data_value(NFTA_RANGE_FROM_DATA, from);
                w.data_value(NFTA_RANGE_TO_DATA, to);
            }
            Expr::Lookup {
                set,
                set_id,
                sreg,
                dreg,
                invert,
            } => {
                w.str(NFTA_LOOKUP_SET, set);
                if let Some(id) = set_id {
                    w.be32(NFTA_LOOKUP_SET_ID, *id);
                }
                w.be32(NFTA_LOOKUP_SREG, sreg.raw());
                if let Some(d) = dreg {
                    w.be32(NFTA_LOOKUP_DREG, d.raw());
                }
                if *invert {
                    w.be32(NFTA_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
                }
            }
            Expr::Immediate { dreg, data } => {
                w.be32(NFTA_IMMEDIATE_DREG, dreg.raw());
                w.data_value(NFTA_IMMEDIATE_DATA, data);
            }
            Expr::Verdict(v) => {
                w.be32(NFTA_IMMEDIATE_DREG, Reg::VERDICT.raw());
                v.encode(w, NFTA_IMMEDIATE_DATA);
            }
            Expr::Counter => {}
            Expr::Ct {
                key,
                dreg,
                direction,
            } => {
                w.be32(NFTA_CT_KEY, *key as u32);
                w.be32(NFTA_CT_DREG, dreg.raw());
                if let Some(d) = direction {
                    w.u8(NFTA_CT_DIRECTION, *d as u8);
                }
            }
            Expr::CtSet { key, sreg } => {
                w.be32(NFTA_CT_KEY, *key as u32);
                w.be32(NFTA_CT_SREG, sreg.raw());
            }
            Expr::Nat {
                kind,
                family,
                addr,
                proto,
                flags,
            } => {
                w.be32(NFTA_NAT_TYPE, *kind as u32);
                w.be32(NFTA_NAT_FAMILY, *family as u32);
                if let Some(r) = addr {
                    w.be32(NFTA_NAT_REG_ADDR_MIN, r.min.raw());
                    w.be32(NFTA_NAT_REG_ADDR_MAX, r.max.raw());
                }
                if let Some(r) = proto {
                    w.be32(NFTA_NAT_REG_PROTO_MIN, r.min.raw());
                    w.be32(NFTA_NAT_REG_PROTO_MAX, r.max.raw());
                }
                if flags.bits() != 0 {
                    w.be32(NFTA_NAT_FLAGS, flags.bits());
                }
            }
            Expr::Masquerade { proto, flags } => {
                if flags.bits() != 0 {
                    w.be32(NFTA_MASQ_FLAGS, flags.bits());
                }
                if let Some(r) = proto {
                    w.be32(NFTA_MASQ_REG_PROTO_MIN, r.min.raw());
                    w.be32(NFTA_MASQ_REG_PROTO_MAX, r.max.raw());
                }
            }
            Expr::Redirect { proto, flags } => {
                if let Some(r) = proto {
                    w.be32(NFTA_REDIR_REG_PROTO_MIN, r.min.raw());
                    w.be32(NFTA_REDIR_REG_PROTO_MAX, r.max.raw());
                }
                if flags.bits() != 0 {
                    w.be32(NFTA_REDIR_FLAGS, flags.bits());
                }
            }
            Expr::Fib {
                flags,
                result,
                dreg,
            } => {
                w.be32(NFTA_FIB_DREG, dreg.raw());
                w.be32(NFTA_FIB_RESULT, *result as u32);
                w.be32(NFTA_FIB_FLAGS, flags.bits());
            }
            Expr::Reject { kind, code } => {
                w.be32(NFTA_REJECT_TYPE, *kind as u32);
                w.u8(NFTA_REJECT_ICMP_CODE, *code);
            }
            Expr::Limit { rate, burst } => {
                w.be64(NFTA_LIMIT_RATE, *rate);
                w.be64(NFTA_LIMIT_UNIT, 1);
                w.be32(NFTA_LIMIT_BURST, *burst);
                w.be32(NFTA_LIMIT_TYPE, NFT_LIMIT_PKTS);
                w.be32(NFTA_LIMIT_FLAGS, 0);
            }
            Expr::Log { group, prefix } => {
                w.bytes(NFTA_LOG_GROUP, &group.to_be_bytes());
                w.str(NFTA_LOG_PREFIX, prefix);
            }
        }
    }
}
