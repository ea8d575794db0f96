//! A typed nftables IR: tables, chains, rules, sets and verdict maps.
//!
//! Contract: the IR says *what* the kernel should hold, in terms that lower
//! mechanically onto nf_tables expressions. Every [`Match`] maps to a fixed,
//! small expression sequence (documented on each variant), every [`Field`]
//! to one `meta`/`payload`/`ct` load of [`Field::len`] bytes, and every set
//! element key to per-field inclusive ranges of big-endian bytes of exactly
//! that length. All collections are ordered (`BTreeMap`, `Vec` in program
//! order), so equal inputs give equal IR and equal renderings.
//!
//! The IR is lean where a large ACL multiplies it: a rule is one shared
//! object ([`Rule`]), and its matches and comment, chain names and counter
//! owners are shared too (`Arc`), so the copies of one ACL rule in many
//! region chains (one reference count each), a chain's name (its own, the
//! table's key, the verdicts entering it) and the elements entering one
//! chain are reference counts, not allocations; set element keys hold
//! their bytes inline ([`Key`]).

mod key;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use smallvec::SmallVec;

pub use key::{Key, KeyBytes};

/// nf_tables table families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    Inet,
    Ip,
    Ip6,
    Netdev,
    Bridge,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Inet => "inet",
            Family::Ip => "ip",
            Family::Ip6 => "ip6",
            Family::Netdev => "netdev",
            Family::Bridge => "bridge",
        }
    }
}

/// A table: the unit of ownership (bulkhead's tables are its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub family: Family,
    pub name: String,
    /// By name; the key is the chain's own name (one shared string).
    pub chains: BTreeMap<Arc<str>, Chain>,
    pub sets: BTreeMap<String, Set>,
}

impl Table {
    pub fn new(family: Family, name: impl Into<String>) -> Self {
        Self {
            family,
            name: name.into(),
            chains: BTreeMap::new(),
            sets: BTreeMap::new(),
        }
    }

    pub fn add_chain(&mut self, chain: Chain) {
        self.chains.insert(chain.name.clone(), chain);
    }

    pub fn add_set(&mut self, set: Set) {
        self.sets.insert(set.name.clone(), set);
    }

    /// Number of rules over all chains (for tests and benchmarks).
    pub fn rule_count(&self) -> usize {
        self.chains.values().map(|c| c.rules.len()).sum()
    }
}

/// Netfilter hooks a base chain can attach to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Hook {
    Prerouting,
    Input,
    Forward,
    Output,
    Postrouting,
    Ingress,
}

impl Hook {
    pub fn as_str(self) -> &'static str {
        match self {
            Hook::Prerouting => "prerouting",
            Hook::Input => "input",
            Hook::Forward => "forward",
            Hook::Output => "output",
            Hook::Postrouting => "postrouting",
            Hook::Ingress => "ingress",
        }
    }
}

/// What a base chain does with a packet that no rule decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChainPolicy {
    Accept,
    Drop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChainKind {
    Filter,
    Nat,
}

/// The hook attachment of a base chain.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BaseChain {
    pub hook: Hook,
    pub priority: i32,
    pub policy: ChainPolicy,
    pub kind: ChainKind,
    /// Only for `netdev` ingress chains.
    pub device: Option<String>,
}

/// A chain. Its name is shared with the table's key and with the verdicts
/// entering it (region chains: thousands of them at 10k rules). The hook
/// of a base chain is boxed: a regular chain (all but a handful) is then
/// 48 bytes, not 72, in the table's map and in every pass over it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub name: Arc<str>,
    pub base: Option<Box<BaseChain>>,
    pub rules: Vec<Rule>,
}

impl Chain {
    pub fn regular(name: impl Into<Arc<str>>) -> Self {
        Self {
            name: name.into(),
            base: None,
            rules: Vec::new(),
        }
    }

    pub fn base(name: impl Into<Arc<str>>, hook: Hook, priority: i32, kind: ChainKind) -> Self {
        let base = BaseChain {
            hook,
            priority,
            policy: ChainPolicy::Accept,
            kind,
            device: None,
        };
        Self {
            name: name.into(),
            base: Some(Box::new(base)),
            rules: Vec::new(),
        }
    }
}

/// One rule: all matches must hold, then `counter` (if set), then the action
/// ([`RuleBody`], read through `Deref`). The rule is one shared object:
/// cloning it (the same ACL rule in many region chains: tens of thousands
/// of copies at 10k rules) is one reference count, moving it is one
/// pointer, and comparing two copies of one rule is a pointer comparison.
/// Changing a shared rule ([`Rule::body_mut`]) copies it first.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Rule(Arc<RuleBody>);

/// What a [`Rule`] holds. `comment` becomes the rule's userdata comment; it
/// carries the names that `trace` shows (e.g. `current:in:allow-common`).
/// `matches` and `comment` are shared as well: rules spelled out of one
/// ACL rule share its comment, and a rule's copies share its matches.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RuleBody {
    pub matches: Arc<[Match]>,
    pub counter: bool,
    pub action: Action,
    pub comment: Option<Arc<str>>,
}

impl Rule {
    pub fn new(matches: impl Into<Arc<[Match]>>, action: Action) -> Self {
        Self(Arc::new(RuleBody {
            matches: matches.into(),
            counter: false,
            action,
            comment: None,
        }))
    }

    pub fn verdict(matches: impl Into<Arc<[Match]>>, verdict: Verdict) -> Self {
        Self::new(matches, Action::Verdict(verdict))
    }

    pub fn with_comment(mut self, comment: impl Into<Arc<str>>) -> Self {
        self.body_mut().comment = Some(comment.into());
        self
    }

    /// The rule with a `counter` (read back by `acl ls --stats`, which
    /// attributes it by the rule's comment).
    pub fn counted(mut self) -> Self {
        self.body_mut().counter = true;
        self
    }

    /// The rule's body to change: this rule's own, copied first if other
    /// rules share it.
    pub fn body_mut(&mut self) -> &mut RuleBody {
        Arc::make_mut(&mut self.0)
    }
}

impl From<RuleBody> for Rule {
    fn from(body: RuleBody) -> Self {
        Self(Arc::new(body))
    }
}

impl std::ops::Deref for Rule {
    type Target = RuleBody;
    fn deref(&self) -> &RuleBody {
        &self.0
    }
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rule")
            .field("matches", &self.matches)
            .field("counter", &self.counter)
            .field("action", &self.action)
            .field("comment", &self.comment)
            .finish()
    }
}

/// Conntrack state bits, as the kernel numbers them (`NF_CT_STATE_*_BIT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CtStates(pub u32);

impl CtStates {
    pub const INVALID: CtStates = CtStates(1);
    pub const ESTABLISHED: CtStates = CtStates(2);
    pub const RELATED: CtStates = CtStates(4);
    pub const NEW: CtStates = CtStates(8);
    pub const UNTRACKED: CtStates = CtStates(64);

    pub fn union(self, other: CtStates) -> CtStates {
        CtStates(self.0 | other.0)
    }

    pub fn intersects(self, other: CtStates) -> bool {
        self.0 & other.0 != 0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NfProto {
    Ipv4,
    Ipv6,
}

/// A match. Lowering (registers omitted):
///
/// | variant | expressions |
/// |---|---|
/// | `CtState(s)` | `ct state` → `bitwise & s` → `cmp neq 0` |
/// | `CtStatusDnat` | `ct status` → `bitwise & IPS_DST_NAT` → `cmp neq 0` |
/// | `IifName{name,negate}` | `meta iifname` → `cmp eq/neq name\0…` (16 bytes) |
/// | `OifName{..}` | `meta oifname` → `cmp eq/neq` |
/// | `NfProto(p)` | `meta nfproto` → `cmp eq 2/10` |
/// | `L4Proto{protos,negate}` | one proto: `meta l4proto` → `cmp eq/neq`; several: `meta l4proto` → `lookup` anonymous set (inverted if negate) |
/// | `Icmpv6Type(types)` | `payload transport +0 len 1` → `lookup` anonymous set (callers put `L4Proto icmpv6` first) |
/// | `Prefix{field,addr,len}` | load `field` → `bitwise & mask(len)` → `cmp eq addr` |
/// | `Ranges{field,ranges}` | one value: load `field` → `cmp eq`; one range: load → `range eq lo hi`; several: load → `lookup` anonymous interval set |
/// | `Lookup{key,set,negate}` | load each key field into consecutive registers → `lookup set` (inverted if negate) |
/// | `FibDaddrLocal` | `fib daddr type` → `cmp eq RTN_LOCAL` |
/// | `EtherType(t)` | `meta protocol` → `cmp eq t` (big-endian; for the bridge and netdev families, where `nfproto` does not tell IPv4 from IPv6, and for ARP, 0x0806) |
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Match {
    CtState(CtStates),
    CtStatusDnat,
    IifName {
        name: String,
        negate: bool,
    },
    OifName {
        name: String,
        negate: bool,
    },
    NfProto(NfProto),
    L4Proto {
        protos: ProtoList,
        negate: bool,
    },
    Icmpv6Type(Vec<u8>),
    Prefix {
        field: Field,
        addr: Vec<u8>,
        len: u8,
    },
    /// The field's value (big-endian, as a number) lies in one of the
    /// inclusive `ranges` (sorted, disjoint, non-empty, within the field).
    Ranges {
        field: Field,
        ranges: RangeList,
    },
    Lookup {
        key: Vec<Field>,
        set: String,
        negate: bool,
    },
    FibDaddrLocal,
    /// `meta protocol` (the frame's ethertype) equals this value.
    EtherType(u16),
}

/// The ranges of a [`Match::Ranges`]: one held inline (what most matches
/// hold, and every rule a region chain spells out), more on the heap. It
/// reads, compares and hashes as the slice of its ranges.
pub type RangeList = SmallVec<[(u128, u128); 1]>;

/// The protocols of a [`Match::L4Proto`]: a few held inline, more on the
/// heap; it reads, compares and hashes as the slice of its numbers.
pub type ProtoList = SmallVec<[u8; 8]>;

/// A terminal or control-flow verdict. Chain names are shared: the
/// elements entering one region chain, and every block's `goto` of the
/// drop chain, hold one name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    Accept,
    Drop,
    Continue,
    Return,
    Jump(Arc<str>),
    Goto(Arc<str>),
}

/// What a rule does once its matches hold.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Action {
    Verdict(Verdict),
    /// Load `key` → `lookup map` with a verdict dreg; no element → next rule.
    Vmap {
        key: Vec<Field>,
        map: String,
    },
    /// `nat dnat` to `addr` (and `port`), family from the address.
    Dnat {
        addr: IpAddr,
        port: Option<u16>,
    },
    /// `nat snat` to `addr`.
    Snat {
        addr: IpAddr,
    },
    Masquerade,
    /// `meta mark set meta mark & ~bits | bits`: sets the packet mark's
    /// `bits` (keeping the others, which other software on the host may
    /// own), then goes on with the next rule. Never decides a verdict.
    SetMarkBits(u32),
    /// `limit rate RATE/second burst BURST packets log prefix "PREFIX"
    /// group GROUP`: hands (a sample of) the packet to NFLOG group `group`,
    /// then goes on with the next rule. The limit lives in the kernel, so a
    /// flood is thinned before it reaches any reader; over the rate the
    /// packet is simply not logged. Never decides a verdict.
    Log(LogSpec),
}

/// What [`Action::Log`] sends where, and how often at most.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LogSpec {
    pub group: u16,
    pub prefix: String,
    /// Packets per second (refilled continuously) and the bucket size.
    pub rate: u32,
    pub burst: u32,
}

/// Packet fields a rule or set key can load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    /// `meta iifname`, 16 bytes, NUL padded.
    IifName,
    /// `meta oifname`, 16 bytes.
    OifName,
    /// `meta l4proto`, 1 byte.
    L4Proto,
    /// `payload network +12 len 4`.
    Saddr4,
    /// `payload network +16 len 4`.
    Daddr4,
    /// `payload network +8 len 16`.
    Saddr6,
    /// `payload network +24 len 16`.
    Daddr6,
    /// `payload transport +0 len 2` (tcp, udp, sctp, udp-lite).
    Sport,
    /// `payload transport +2 len 2`.
    Dport,
    /// `payload link +6 len 6`.
    EtherSaddr,
    /// `meta mark`, 4 bytes.
    Mark,
    /// `arp saddr ether`: `payload network +8 len 6` (the ARP sender
    /// hardware address of an Ethernet/IPv4 ARP packet; receivers drop ARP
    /// whose address lengths are not 6 and 4, so the offset holds).
    ArpSha,
    /// `arp saddr ip`: `payload network +14 len 4` (the ARP sender address).
    ArpSpa,
    /// `icmpv6 taddr`: `payload transport +8 len 16`, the target address of
    /// a neighbour solicitation or advertisement (and of a redirect).
    NdTarget,
}

impl Field {
    /// The field's length in bytes (set keys use exactly this many bytes;
    /// the lowering pads each concatenated field to 4 bytes).
    #[allow(clippy::len_without_is_empty)] // a byte length, not a collection
    pub fn len(self) -> usize {
        match self {
            Field::IifName | Field::OifName => 16,
            Field::L4Proto => 1,
            Field::Saddr4 | Field::Daddr4 | Field::Mark => 4,
            Field::Saddr6 | Field::Daddr6 => 16,
            Field::Sport | Field::Dport => 2,
            Field::EtherSaddr | Field::ArpSha => 6,
            Field::ArpSpa => 4,
            Field::NdTarget => 16,
        }
    }

    /// The nft type name used in set declarations.
    pub fn nft_type(self) -> &'static str {
        match self {
            Field::IifName | Field::OifName => "ifname",
            Field::L4Proto => "inet_proto",
            Field::Saddr4 | Field::Daddr4 => "ipv4_addr",
            Field::Saddr6 | Field::Daddr6 => "ipv6_addr",
            Field::Sport | Field::Dport => "inet_service",
            Field::EtherSaddr | Field::ArpSha => "ether_addr",
            Field::ArpSpa => "ipv4_addr",
            Field::NdTarget => "ipv6_addr",
            Field::Mark => "mark",
        }
    }

    /// The nft expression that loads the field.
    pub fn nft_expr(self) -> &'static str {
        match self {
            Field::IifName => "iifname",
            Field::OifName => "oifname",
            Field::L4Proto => "meta l4proto",
            Field::Saddr4 => "ip saddr",
            Field::Daddr4 => "ip daddr",
            Field::Saddr6 => "ip6 saddr",
            Field::Daddr6 => "ip6 daddr",
            Field::Sport => "th sport",
            Field::Dport => "th dport",
            Field::EtherSaddr => "ether saddr",
            Field::Mark => "meta mark",
            Field::ArpSha => "arp saddr ether",
            Field::ArpSpa => "arp saddr ip",
            Field::NdTarget => "icmpv6 taddr",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SetKind {
    Set,
    VerdictMap,
}

/// A named set or verdict map. Elements of an interval set never overlap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Set {
    pub name: String,
    pub key: Vec<Field>,
    pub interval: bool,
    pub kind: SetKind,
    /// `None` for plain sets, `Some(verdict)` for verdict maps.
    pub elements: BTreeMap<Key, Option<Verdict>>,
    /// Every element carries a `counter` (the set's `NFTA_SET_EXPR`; the
    /// kernel gives each element its own, packets and bytes).
    pub counter: bool,
    /// The rule each counted element stands for (see [`counter_owner`]),
    /// for elements whose verdict decides; elements entering a region
    /// chain have none (that chain's rules count). Bookkeeping for reading
    /// counters back: never sent to the kernel.
    pub owners: BTreeMap<Key, Arc<str>>,
}

impl Set {
    pub fn new(name: impl Into<String>, key: Vec<Field>, interval: bool, kind: SetKind) -> Self {
        Self {
            name: name.into(),
            key,
            interval,
            kind,
            elements: BTreeMap::new(),
            counter: false,
            owners: BTreeMap::new(),
        }
    }

    /// The declaration without elements (what `diff` compares for recreation).
    pub fn same_declaration(&self, other: &Set) -> bool {
        self.key == other.key
            && self.interval == other.interval
            && self.kind == other.kind
            && self.counter == other.counter
    }
}

/// The name a custom ACL rule's counters go by: the comment of its region
/// chain rules and the owner of its map elements. Default rules go by
/// their profile names (`current:in:allow-common`, `stateful`, …), which
/// never start with `acl:`.
pub fn counter_owner(rule_id: &str) -> Arc<str> {
    const PREFIX: &[u8] = b"acl:";
    let mut buf = [0u8; 64];
    match buf.get_mut(..PREFIX.len() + rule_id.len()) {
        // Short ids (all in practice): one allocation, the `Arc`'s.
        Some(name) => {
            name[..PREFIX.len()].copy_from_slice(PREFIX);
            name[PREFIX.len()..].copy_from_slice(rule_id.as_bytes());
            Arc::from(std::str::from_utf8(name).unwrap_or_default())
        }
        None => format!("acl:{rule_id}").into(),
    }
}

/// Big-endian bytes of a value for a field of `len` bytes (`len` ≤ 16).
pub fn be_bytes(value: u128, len: usize) -> Vec<u8> {
    value.to_be_bytes()[16 - len..].to_vec()
}

/// The value of big-endian bytes (at most 16).
pub fn from_be(bytes: &[u8]) -> u128 {
    bytes
        .iter()
        .fold(0u128, |acc, b| (acc << 8) | u128::from(*b))
}

/// An interface name as the 16-byte, NUL-padded key the kernel compares.
pub fn ifname_bytes(name: &str) -> Vec<u8> {
    let mut b = name.as_bytes().to_vec();
    b.resize(16, 0);
    b
}
