//! What GET dumps of tables, chains, rules, sets and elements return.
//!
//! Contract: each `*Info` is decoded from one kernel `NEW*` message of a dump;
//! unknown attributes are skipped so newer kernels do not break us, and a
//! missing mandatory attribute makes the message be skipped rather than
//! invent a value. Rule expressions are kept raw ([`RawExpr`]) with decoders
//! for what callers read back (counters).

use super::chain::{ChainType, Hook, Policy};
use super::nfnl::nfgen;
use super::set::Element;
use super::table::Family;
use super::uapi::*;
use super::verdict::{decode_value, ElemData};
use crate::netlink::wire::{be32_of, be64_of, str_of, Attrs};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    pub family: Family,
    pub name: String,
    pub handle: u64,
    pub flags: u32,
    /// Number of chains, sets and other objects in the table.
    pub use_count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainInfo {
    pub family: Family,
    pub table: String,
    pub name: String,
    pub handle: u64,
    /// Hook, priority, policy and type of a base chain.
    pub base: Option<(Hook, i32, Policy, Option<ChainType>)>,
    /// Number of rules in the chain plus references to it.
    pub use_count: u32,
}

/// An expression as the kernel reports it: its name and `NFTA_EXPR_DATA`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawExpr {
    pub name: String,
    pub data: Vec<u8>,
}

impl RawExpr {
    /// `(packets, bytes)` of a counter expression.
    pub fn counter(&self) -> Option<(u64, u64)> {
        if self.name != "counter" {
            return None;
        }
        let (mut packets, mut bytes) = (0, 0);
        for (ty, v) in Attrs(&self.data) {
            match ty {
                NFTA_COUNTER_PACKETS => packets = be64_of(v)?,
                NFTA_COUNTER_BYTES => bytes = be64_of(v)?,
                _ => {}
            }
        }
        Some((packets, bytes))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleInfo {
    pub family: Family,
    pub table: String,
    pub chain: String,
    pub handle: u64,
    pub exprs: Vec<RawExpr>,
    pub userdata: Option<Vec<u8>>,
}

impl RuleInfo {
    /// The first counter of the rule, `(packets, bytes)`.
    pub fn counter(&self) -> Option<(u64, u64)> {
        self.exprs.iter().find_map(RawExpr::counter)
    }

    /// The rule's comment, if its userdata holds one.
    pub fn comment(&self) -> Option<String> {
        self.userdata.as_deref().and_then(userdata_comment)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetInfo {
    pub family: Family,
    pub table: String,
    pub name: String,
    pub handle: u64,
    pub flags: u32,
    pub key_type: u32,
    pub key_len: u32,
    pub data_type: Option<u32>,
    pub data_len: Option<u32>,
}

pub(crate) fn table(payload: &[u8]) -> Option<TableInfo> {
    let (fam, attrs) = nfgen(payload)?;
    let mut t = TableInfo {
        family: Family::from_raw(fam)?,
        name: String::new(),
        handle: 0,
        flags: 0,
        use_count: 0,
    };
    for (ty, v) in attrs {
        match ty {
            NFTA_TABLE_NAME => t.name = str_of(v),
            NFTA_TABLE_HANDLE => t.handle = be64_of(v)?,
            NFTA_TABLE_FLAGS => t.flags = be32_of(v)?,
            NFTA_TABLE_USE => t.use_count = be32_of(v)?,
            _ => {}
        }
    }
    (!t.name.is_empty()).then_some(t)
}

pub(crate) fn chain(payload: &[u8]) -> Option<ChainInfo> {
    let (fam, attrs) = nfgen(payload)?;
    let family = Family::from_raw(fam)?;
    let mut c = ChainInfo {
        family,
        table: String::new(),
        name: String::new(),
        handle: 0,
        base: None,
        use_count: 0,
    };
    let (mut hook, mut prio, mut policy, mut kind) = (None, 0, Policy::Accept, None);
    for (ty, v) in attrs {
        match ty {
            NFTA_CHAIN_TABLE => c.table = str_of(v),
            NFTA_CHAIN_NAME => c.name = str_of(v),
            NFTA_CHAIN_HANDLE => c.handle = be64_of(v)?,
            NFTA_CHAIN_USE => c.use_count = be32_of(v)?,
            NFTA_CHAIN_POLICY if be32_of(v)? == NF_DROP as u32 => policy = Policy::Drop,
            NFTA_CHAIN_TYPE => {
                kind = match str_of(v).as_str() {
                    "filter" => Some(ChainType::Filter),
                    "nat" => Some(ChainType::Nat),
                    "route" => Some(ChainType::Route),
                    _ => None,
                }
            }
            NFTA_CHAIN_HOOK => {
                for (hty, hv) in Attrs(v) {
                    match hty {
                        NFTA_HOOK_HOOKNUM => hook = Hook::from_number(family, be32_of(hv)?),
                        NFTA_HOOK_PRIORITY => prio = be32_of(hv)? as i32,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    c.base = hook.map(|h| (h, prio, policy, kind));
    (!c.name.is_empty()).then_some(c)
}

pub(crate) fn rule(payload: &[u8]) -> Option<RuleInfo> {
    let (fam, attrs) = nfgen(payload)?;
    let mut r = RuleInfo {
        family: Family::from_raw(fam)?,
        table: String::new(),
        chain: String::new(),
        handle: 0,
        exprs: Vec::new(),
        userdata: None,
    };
    for (ty, v) in attrs {
        match ty {
            NFTA_RULE_TABLE => r.table = str_of(v),
            NFTA_RULE_CHAIN => r.chain = str_of(v),
            NFTA_RULE_HANDLE => r.handle = be64_of(v)?,
            NFTA_RULE_USERDATA => r.userdata = Some(v.to_vec()),
            NFTA_RULE_EXPRESSIONS => r.exprs.extend(Attrs(v).map(|(_, e)| raw_expr(e))),
            _ => {}
        }
    }
    Some(r)
}

/// One expression's name and data (the attributes of `NFTA_LIST_ELEM`,
/// `NFTA_SET_ELEM_EXPR`).
fn raw_expr(attrs: &[u8]) -> RawExpr {
    let mut x = RawExpr {
        name: String::new(),
        data: Vec::new(),
    };
    for (ety, ev) in Attrs(attrs) {
        match ety {
            NFTA_EXPR_NAME => x.name = str_of(ev),
            NFTA_EXPR_DATA => x.data = ev.to_vec(),
            _ => {}
        }
    }
    x
}

/// The comment of a rule's userdata (`NFTNL_UDATA_RULE_COMMENT`, the TLV
/// nft and the lowering write), if any.
pub fn userdata_comment(userdata: &[u8]) -> Option<String> {
    let mut rest = userdata;
    while rest.len() >= 2 {
        let (ty, len) = (rest[0], rest[1] as usize);
        let value = rest.get(2..2 + len)?;
        if ty == 0 {
            let text = value.split(|&b| b == 0).next().unwrap_or_default();
            return Some(String::from_utf8_lossy(text).into_owned());
        }
        rest = &rest[2 + len..];
    }
    None
}

pub(crate) fn set(payload: &[u8]) -> Option<SetInfo> {
    let (fam, attrs) = nfgen(payload)?;
    let mut s = SetInfo {
        family: Family::from_raw(fam)?,
        table: String::new(),
        name: String::new(),
        handle: 0,
        flags: 0,
        key_type: 0,
        key_len: 0,
        data_type: None,
        data_len: None,
    };
    for (ty, v) in attrs {
        match ty {
            NFTA_SET_TABLE => s.table = str_of(v),
            NFTA_SET_NAME => s.name = str_of(v),
            16 /* NFTA_SET_HANDLE */ => s.handle = be64_of(v)?,
            NFTA_SET_FLAGS => s.flags = be32_of(v)?,
            NFTA_SET_KEY_TYPE => s.key_type = be32_of(v)?,
            NFTA_SET_KEY_LEN => s.key_len = be32_of(v)?,
            NFTA_SET_DATA_TYPE => s.data_type = be32_of(v),
            NFTA_SET_DATA_LEN => s.data_len = be32_of(v),
            _ => {}
        }
    }
    Some(s)
}

/// The elements of one `NEWSETELEM` dump message.
pub(crate) fn elements(payload: &[u8], out: &mut Vec<Element>) {
    let Some((_, attrs)) = nfgen(payload) else {
        return;
    };
    for (ty, list) in attrs {
        if ty != NFTA_SET_ELEM_LIST_ELEMENTS {
            continue;
        }
        for (_, elem) in Attrs(list) {
            let mut e = Element::new(Vec::new());
            for (ety, v) in Attrs(elem) {
                match ety {
                    NFTA_SET_ELEM_KEY => e.key = decode_value(v).unwrap_or_default(),
                    NFTA_SET_ELEM_KEY_END => e.key_end = decode_value(v),
                    NFTA_SET_ELEM_DATA => e.data = ElemData::decode(v),
                    NFTA_SET_ELEM_FLAGS => {
                        e.interval_end = be32_of(v).unwrap_or(0) & NFT_SET_ELEM_INTERVAL_END != 0
                    }
                    NFTA_SET_ELEM_EXPR => e.counter = raw_expr(v).counter(),
                    NFTA_SET_ELEM_EXPRESSIONS => {
                        e.counter = Attrs(v).find_map(|(_, x)| raw_expr(x).counter())
                    }
                    _ => {}
                }
            }
            out.push(e);
        }
    }
}
