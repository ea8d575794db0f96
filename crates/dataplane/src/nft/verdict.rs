//! Verdicts: what a rule, a verdict-map element or a chain policy decides.
//!
//! Contract: a [`Verdict`] encodes to the kernel's nested `NFTA_DATA_VERDICT`
//! (code plus, for jump/goto, the target chain's name) and decodes back from
//! it; unknown codes decode to `None` rather than guessing.

use super::nfnl::NfWriter;
use super::uapi::*;
use crate::netlink::wire::{be32_of, str_of, Attrs, Writer};

/// A verdict. Jump and goto name a regular chain of the same table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Verdict {
    Accept,
    Drop,
    Continue,
    Return,
    Jump(String),
    Goto(String),
}

impl Verdict {
    fn code(&self) -> i32 {
        match self {
            Verdict::Accept => NF_ACCEPT,
            Verdict::Drop => NF_DROP,
            Verdict::Continue => NFT_CONTINUE,
            Verdict::Return => NFT_RETURN,
            Verdict::Jump(_) => NFT_JUMP,
            Verdict::Goto(_) => NFT_GOTO,
        }
    }

    /// Writes `ty { NFTA_DATA_VERDICT { CODE, CHAIN? } }`.
    pub(crate) fn encode(&self, w: &mut Writer, ty: u16) {
        let data = w.nest_start(ty);
        let v = w.nest_start(NFTA_DATA_VERDICT);
        w.be32(NFTA_VERDICT_CODE, self.code() as u32);
        if let Verdict::Jump(chain) | Verdict::Goto(chain) = self {
            w.str(NFTA_VERDICT_CHAIN, chain);
        }
        w.nest_end(v);
        w.nest_end(data);
    }

    /// Decodes the payload of an `nft_data` attribute holding a verdict.
    pub(crate) fn decode(data: &[u8]) -> Option<Verdict> {
        let (_, v) = Attrs(data).find(|(ty, _)| *ty == NFTA_DATA_VERDICT)?;
        let mut code = None;
        let mut chain = String::new();
        for (ty, p) in Attrs(v) {
            match ty {
                NFTA_VERDICT_CODE => code = be32_of(p).map(|c| c as i32),
                NFTA_VERDICT_CHAIN => chain = str_of(p),
                _ => {}
            }
        }
        Some(match code? {
            NF_ACCEPT => Verdict::Accept,
            NF_DROP => Verdict::Drop,
            NFT_CONTINUE => Verdict::Continue,
            NFT_RETURN => Verdict::Return,
            NFT_JUMP => Verdict::Jump(chain),
            NFT_GOTO => Verdict::Goto(chain),
            _ => return None,
        })
    }
}

/// Data stored with a map element.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ElemData {
    Verdict(Verdict),
    Value(Vec<u8>),
}

impl ElemData {
    pub(crate) fn encode(&self, w: &mut Writer, ty: u16) {
        match self {
            ElemData::Verdict(v) => v.encode(w, ty),
            ElemData::Value(v) => w.data_value(ty, v),
        }
    }

    pub(crate) fn decode(data: &[u8]) -> Option<ElemData> {
        match Attrs(data).next()? {
            (NFTA_DATA_VALUE, v) => Some(ElemData::Value(v.to_vec())),
            (NFTA_DATA_VERDICT, _) => Verdict::decode(data).map(ElemData::Verdict),
            _ => None,
        }
    }
}

/// The payload of an `nft_data` value attribute.
pub(crate) fn decode_value(data: &[u8]) -> Option<Vec<u8>> {
    Attrs(data)
        .find(|(ty, _)| *ty == NFTA_DATA_VALUE)
        .map(|(_, v)| v.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_round_trip() {
        for v in [
            Verdict::Accept,
            Verdict::Drop,
            Verdict::Continue,
            Verdict::Return,
            Verdict::Jump("ep1".into()),
            Verdict::Goto("ep2".into()),
        ] {
            let mut w = Writer::default();
            v.encode(&mut w, NFTA_SET_ELEM_DATA);
            let (_, inner) = Attrs(&w.buf).next().unwrap();
            assert_eq!(Verdict::decode(inner), Some(v.clone()));
            assert_eq!(ElemData::decode(inner), Some(ElemData::Verdict(v)));
        }
    }
}
