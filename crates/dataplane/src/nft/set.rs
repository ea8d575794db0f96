//! Named sets and maps, their keys, and their elements.
//!
//! Contract: a [`Set`] describes everything `NEWSET` needs: key type and
//! length (with per-field lengths for concatenations, so the kernel can pick
//! the pipapo backend for concatenated ranges), flags, and for maps the data
//! type (verdict or value). `MAP` and `CONCAT` are derived from the key and
//! data, never forgotten. An [`Element`] is one kernel element; intervals in
//! a single-field interval set are two elements (start, and end+1 flagged
//! `INTERVAL_END`), which [`Element::interval`] builds; concatenated ranges
//! are one element with `key_end`, built by [`Element::range`].

use super::flags::SetFlags;
use super::nfnl::NfWriter;
use super::register::{ConcatLayout, LayoutError};
use super::uapi::*;
use super::verdict::{ElemData, Verdict};
use crate::netlink::wire::Writer;

/// nft's datatype of a key field. The kernel stores the type id only for
/// userspace (`nft list` shows keys with it); lengths are what it checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    Ipv4Addr,
    Ipv6Addr,
    EtherAddr,
    /// IP protocol number (1 byte).
    InetProto,
    /// A TCP/UDP port (2 bytes, network order).
    InetService,
    Mark,
    /// An interface name (16 bytes, NUL padded).
    IfName,
    /// An integer of the given byte length.
    Integer(u32),
}

impl KeyType {
    /// nft's datatype number (`enum datatypes` in nft's datatype.h).
    pub fn id(self) -> u32 {
        match self {
            KeyType::Integer(_) => 4,
            KeyType::Ipv4Addr => 7,
            KeyType::Ipv6Addr => 8,
            KeyType::EtherAddr => 9,
            KeyType::InetProto => 12,
            KeyType::InetService => 13,
            KeyType::Mark => 19,
            KeyType::IfName => 41,
        }
    }

    /// Bytes of the field as loaded into a register.
    pub fn size(self) -> u32 {
        match self {
            KeyType::Ipv4Addr | KeyType::Mark => 4,
            KeyType::Ipv6Addr | KeyType::IfName => 16,
            KeyType::EtherAddr => 6,
            KeyType::InetProto => 1,
            KeyType::InetService => 2,
            KeyType::Integer(n) => n,
        }
    }
}

/// A set's key: one field, or a concatenation of fields.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SetKey {
    fields: Vec<KeyType>,
}

impl SetKey {
    pub fn single(t: KeyType) -> Self {
        Self { fields: vec![t] }
    }

    /// A concatenation; fails when it would not fit the registers.
    pub fn concat(fields: &[KeyType]) -> Result<Self, LayoutError> {
        ConcatLayout::new(0, &fields.iter().map(|f| f.size()).collect::<Vec<_>>())?;
        Ok(Self {
            fields: fields.to_vec(),
        })
    }

    pub fn fields(&self) -> &[KeyType] {
        &self.fields
    }

    /// The register layout when loading from `NFT_REG32_00`.
    pub fn layout(&self) -> ConcatLayout {
        let lens: Vec<u32> = self.fields.iter().map(|f| f.size()).collect();
        ConcatLayout::new(0, &lens).expect("checked when the key was made")
    }

    /// nft's concat type id: 6 bits per field, first field most significant.
    pub fn type_id(&self) -> u32 {
        match self.fields.as_slice() {
            [one] => one.id(),
            many => many.iter().fold(0, |acc, f| (acc << 6) | f.id()),
        }
    }

    /// Key length in bytes; concatenated fields are padded to 4 bytes each.
    pub fn key_len(&self) -> u32 {
        match self.fields.as_slice() {
            [one] => one.size(),
            _ => self.layout().key_len(),
        }
    }

    pub fn is_concat(&self) -> bool {
        self.fields.len() > 1
    }
}

/// What a map stores per element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SetData {
    Verdict,
    Value(KeyType),
}

/// A named set or map.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Set {
    pub name: String,
    /// Batch-local id (`NFTA_SET_ID`), so rules and elements in the same
    /// batch can reference the set; the batch picks one when `None`.
    pub id: Option<u32>,
    pub key: SetKey,
    pub data: Option<SetData>,
    /// `CONSTANT`, `INTERVAL`, `TIMEOUT`…; `MAP` and `CONCAT` are added.
    pub flags: SetFlags,
    /// Expected number of elements (`NFTA_SET_DESC_SIZE`), a sizing hint.
    pub size: Option<u32>,
    pub timeout_ms: Option<u64>,
    /// Every element carries its own `counter` (`NFTA_SET_EXPR`: the
    /// kernel copies the set's expression into each element it adds).
    pub counter: bool,
}

impl Set {
    pub fn new(name: impl Into<String>, key: SetKey) -> Self {
        Self {
            name: name.into(),
            id: None,
            key,
            data: None,
            flags: SetFlags::EMPTY,
            size: None,
            timeout_ms: None,
            counter: false,
        }
    }

    /// A verdict map keyed by `key`.
    pub fn vmap(name: impl Into<String>, key: SetKey) -> Self {
        Self {
            data: Some(SetData::Verdict),
            ..Self::new(name, key)
        }
    }

    pub fn with_flags(mut self, flags: SetFlags) -> Self {
        self.flags = self.flags | flags;
        self
    }

    /// Each element counts the packets and bytes that hit it.
    pub fn with_counter(mut self) -> Self {
        self.counter = true;
        self
    }

    pub fn with_id(mut self, id: u32) -> Self {
        self.id = Some(id);
        self
    }

    /// The flags sent to the kernel.
    pub fn effective_flags(&self) -> SetFlags {
        let mut f = self.flags;
        if self.data.is_some() {
            f = f | SetFlags::MAP;
        }
        // Kernels since 6.4 reject a concat description without CONCAT
        // (EINVAL), interval or not; nft sets it for every concatenation.
        if self.key.is_concat() {
            f = f | SetFlags::CONCAT;
        }
        f
    }

    pub(crate) fn encode(&self, w: &mut Writer, table: &str, id: u32) {
        w.str(NFTA_SET_TABLE, table);
        w.str(NFTA_SET_NAME, &self.name);
        w.be32(NFTA_SET_FLAGS, self.effective_flags().bits());
        w.be32(NFTA_SET_KEY_TYPE, self.key.type_id());
        w.be32(NFTA_SET_KEY_LEN, self.key.key_len());
        match self.data {
            Some(SetData::Verdict) => {
                w.be32(NFTA_SET_DATA_TYPE, NFT_DATA_VERDICT);
            }
            Some(SetData::Value(t)) => {
                w.be32(NFTA_SET_DATA_TYPE, t.id());
                w.be32(NFTA_SET_DATA_LEN, t.size());
            }
            None => {}
        }
        w.be32(NFTA_SET_ID, id);
        if let Some(t) = self.timeout_ms {
            w.be64(NFTA_SET_TIMEOUT, t);
        }
        if self.counter {
            let expr = w.nest_start(NFTA_SET_EXPR);
            w.str(NFTA_EXPR_NAME, "counter");
            w.nest_end(expr);
        }
        if self.size.is_some() || self.key.is_concat() {
            let desc = w.nest_start(NFTA_SET_DESC);
            if let Some(size) = self.size {
                w.be32(NFTA_SET_DESC_SIZE, size);
            }
            if self.key.is_concat() {
                let concat = w.nest_start(NFTA_SET_DESC_CONCAT);
                for f in &self.key.fields {
                    let elem = w.nest_start(NFTA_LIST_ELEM);
                    w.be32(NFTA_SET_FIELD_LEN, f.size());
                    w.nest_end(elem);
                }
                w.nest_end(concat);
            }
            w.nest_end(desc);
        }
    }
}

/// One set element as the kernel stores it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Element {
    pub key: Vec<u8>,
    /// Inclusive end of a concatenated range (pipapo sets).
    pub key_end: Option<Vec<u8>>,
    pub data: Option<ElemData>,
    /// Closes an interval in a single-field interval set (rbtree).
    pub interval_end: bool,
    pub timeout_ms: Option<u64>,
    /// `(packets, bytes)` of the element's counter, as a dump reports it
    /// (never sent: the set's expression gives new elements theirs).
    pub counter: Option<(u64, u64)>,
}

impl Element {
    pub fn new(key: impl Into<Vec<u8>>) -> Self {
        Self {
            key: key.into(),
            key_end: None,
            data: None,
            interval_end: false,
            timeout_ms: None,
            counter: None,
        }
    }

    pub fn with_verdict(mut self, v: Verdict) -> Self {
        self.data = Some(ElemData::Verdict(v));
        self
    }

    pub fn with_value(mut self, v: impl Into<Vec<u8>>) -> Self {
        self.data = Some(ElemData::Value(v.into()));
        self
    }

    /// The elements of `[start, end]` (inclusive, big-endian keys of equal
    /// length) in a single-field interval set: the start carries the data;
    /// the end element is `end + 1` flagged `INTERVAL_END`, left out when
    /// `end` is the largest key (the interval is then open-ended).
    pub fn interval(start: &[u8], end: &[u8], data: Option<ElemData>) -> Vec<Element> {
        let mut first = Element::new(start);
        first.data = data;
        let mut out = vec![first];
        if let Some(next) = successor(end) {
            out.push(Element {
                interval_end: true,
                ..Element::new(next)
            });
        }
        out
    }

    /// A concatenated range `[start, end]` (both full padded keys) for a
    /// concat + interval set.
    pub fn range(start: Vec<u8>, end: Vec<u8>, data: Option<ElemData>) -> Element {
        Element {
            key: start,
            key_end: Some(end),
            data,
            interval_end: false,
            timeout_ms: None,
            counter: None,
        }
    }

    pub(crate) fn encode(&self, w: &mut Writer, with_data: bool) {
        let elem = w.nest_start(NFTA_LIST_ELEM);
        w.data_value(NFTA_SET_ELEM_KEY, &self.key);
        if let Some(end) = &self.key_end {
            w.data_value(NFTA_SET_ELEM_KEY_END, end);
        }
        if self.interval_end {
            w.be32(NFTA_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
        }
        if with_data {
            if let Some(d) = &self.data {
                d.encode(w, NFTA_SET_ELEM_DATA);
            }
            if let Some(t) = self.timeout_ms {
                w.be64(NFTA_SET_ELEM_TIMEOUT, t);
            }
        }
        w.nest_end(elem);
    }
}

/// `v + 1` as a big-endian number of the same width; `None` on overflow.
pub fn successor(v: &[u8]) -> Option<Vec<u8>> {
    let mut out = v.to_vec();
    for b in out.iter_mut().rev() {
        if *b == 0xff {
            *b = 0;
        } else {
            *b += 1;
            return Some(out);
        }
    }
    None
}

/// An interface name as a 16-byte, NUL-padded key (`iifname`/`oifname`).
pub fn ifname_key(name: &str) -> [u8; 16] {
    let mut k = [0u8; 16];
    let n = name.len().min(15);
    k[..n].copy_from_slice(&name.as_bytes()[..n]);
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_close_with_successor() {
        let e = Element::interval(&1000u16.to_be_bytes(), &2000u16.to_be_bytes(), None);
        assert_eq!(e.len(), 2);
        assert_eq!(e[1].key, 2001u16.to_be_bytes());
        assert!(e[1].interval_end);
        assert_eq!(Element::interval(&[0, 1], &[0xff, 0xff], None).len(), 1);
        assert_eq!(successor(&[0x00, 0xff]), Some(vec![1, 0]));
    }

    #[test]
    fn concat_key_type_and_flags() {
        let key = SetKey::concat(&[KeyType::Ipv4Addr, KeyType::InetService]).unwrap();
        assert_eq!(key.type_id(), (7 << 6) | 13);
        assert_eq!(key.key_len(), 8);
        let s = Set::vmap("m", key).with_flags(SetFlags::INTERVAL);
        let f = s.effective_flags();
        assert!(f.contains(SetFlags::MAP | SetFlags::CONCAT | SetFlags::INTERVAL));
        assert_eq!(ifname_key("eth0")[..5], *b"eth0\0");
    }
}
