//! Fields: the one `meta`/`payload` load each IR field is, the nft
//! datatype its set keys carry, and the register layout of a concatenated
//! key.
//!
//! Contract: a field loads with exactly one expression into any register;
//! a key of several fields loads into consecutive 32-bit registers from
//! `NFT_REG32_00` ([`ConcatLayout`]), the layout the kernel's set lookup
//! reads.

use bulkhead_policy::ir::Field;

use super::LowerError;
use crate::nft::{ConcatLayout, Expr, KeyType, MetaKey, PayloadBase, Reg};

/// The expression that loads `f` into `dreg`.
pub fn field_load(f: Field, dreg: Reg) -> Expr {
    let meta = |key| Expr::Meta { key, dreg };
    let payload = |base, offset, len| Expr::Payload {
        base,
        offset,
        len,
        dreg,
    };
    match f {
        Field::IifName => meta(MetaKey::IifName),
        Field::OifName => meta(MetaKey::OifName),
        Field::L4Proto => meta(MetaKey::L4Proto),
        Field::Mark => meta(MetaKey::Mark),
        Field::Saddr4 => payload(PayloadBase::Network, 12, 4),
        Field::Daddr4 => payload(PayloadBase::Network, 16, 4),
        Field::Saddr6 => payload(PayloadBase::Network, 8, 16),
        Field::Daddr6 => payload(PayloadBase::Network, 24, 16),
        Field::Sport => payload(PayloadBase::Transport, 0, 2),
        Field::Dport => payload(PayloadBase::Transport, 2, 2),
        Field::EtherSaddr => payload(PayloadBase::LinkLayer, 6, 6),
        Field::ArpSha => payload(PayloadBase::Network, 8, 6),
        Field::ArpSpa => payload(PayloadBase::Network, 14, 4),
        Field::NdTarget => payload(PayloadBase::Transport, 8, 16),
    }
}

/// nft's datatype of a field (what `nft list` prints the keys as).
pub(crate) fn key_type(f: Field) -> KeyType {
    match f {
        Field::IifName | Field::OifName => KeyType::IfName,
        Field::L4Proto => KeyType::InetProto,
        Field::Saddr4 | Field::Daddr4 | Field::ArpSpa => KeyType::Ipv4Addr,
        Field::Saddr6 | Field::Daddr6 | Field::NdTarget => KeyType::Ipv6Addr,
        Field::Sport | Field::Dport => KeyType::InetService,
        Field::EtherSaddr | Field::ArpSha => KeyType::EtherAddr,
        Field::Mark => KeyType::Mark,
    }
}

/// Loads every key field into consecutive 32-bit registers from
/// `NFT_REG32_00`; returns the loads and the lookup's source register.
pub(crate) fn key_loads(key: &[Field]) -> Result<(Vec<Expr>, Reg), LowerError> {
    let lens: Vec<u32> = key.iter().map(|f| f.len() as u32).collect();
    let layout = ConcatLayout::new(0, &lens)?;
    let loads = key
        .iter()
        .enumerate()
        .map(|(i, f)| field_load(*f, layout.reg(i)))
        .collect();
    Ok((loads, layout.reg(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arp_and_nd_target_fields_are_payload_loads() {
        let load = |f| field_load(f, Reg::R1);
        let at = |base, offset, len| Expr::Payload {
            base,
            offset,
            len,
            dreg: Reg::R1,
        };
        assert_eq!(load(Field::ArpSha), at(PayloadBase::Network, 8, 6));
        assert_eq!(load(Field::ArpSpa), at(PayloadBase::Network, 14, 4));
        assert_eq!(load(Field::NdTarget), at(PayloadBase::Transport, 8, 16));
        // concatenated set keys: 6-byte MACs take two registers each
        let key = [
            Field::IifName,
            Field::EtherSaddr,
            Field::ArpSha,
            Field::ArpSpa,
        ];
        let (loads, sreg) = key_loads(&key).unwrap();
        assert_eq!(loads.len(), 4);
        assert_eq!(sreg, Reg::r32(0).unwrap());
    }
}
