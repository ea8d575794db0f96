//! Rule expressions, typed (their `NFTA_EXPR_*` encoding is in
//! `expr_wire.rs`).
//!
//! Contract: each [`Expr`] variant maps to one kernel expression. Values
//! compared against registers (`Cmp`, `Bitwise`, `Immediate`, set keys) are
//! raw bytes exactly as the register holds them: packet fields in network
//! order, meta/ct integers (mark, ct state, ifindex) in host order. The
//! kernel validates lengths and register ranges; a mistake here surfaces as
//! a [`super::NftError`] naming the rule.

use super::flags::{FibFlags, NatFlags};
use super::register::Reg;
use super::table::Family;
use super::verdict::Verdict;

/// `NFT_META_*` keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum MetaKey {
    Len = 0,
    /// Ethertype, be16.
    Protocol = 1,
    /// Packet mark, host-order u32.
    Mark = 3,
    /// Input ifindex, host-order u32.
    Iif = 4,
    Oif = 5,
    /// Input interface name, 16 bytes NUL padded.
    IifName = 6,
    OifName = 7,
    IifType = 8,
    OifType = 9,
    /// `NFPROTO_*`, u8.
    NfProto = 15,
    /// IP protocol number, u8.
    L4Proto = 16,
    BriIifName = 17,
    BriOifName = 18,
    /// `PACKET_*`, u8.
    PktType = 19,
    IifGroup = 21,
    OifGroup = 22,
}

/// `NFT_CT_*` keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum CtKey {
    /// [`super::CtState`] bits, host-order u32.
    State = 0,
    /// `IP_CT_DIR_*`, u8.
    Direction = 1,
    /// `IPS_*` bits, host-order u32.
    Status = 2,
    Mark = 3,
    Expiration = 5,
    L3Protocol = 7,
    Protocol = 10,
    ProtoSrc = 11,
    ProtoDst = 12,
    Zone = 17,
    SrcIp = 19,
    DstIp = 20,
    SrcIp6 = 21,
    DstIp6 = 22,
    Id = 23,
}

/// Which side of a connection a `ct` key is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CtDirection {
    Original = 0,
    Reply = 1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Eq = 0,
    Neq = 1,
    Lt = 2,
    Lte = 3,
    Gt = 4,
    Gte = 5,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RangeOp {
    Eq = 0,
    Neq = 1,
}

/// Where a payload offset counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadBase {
    LinkLayer = 0,
    Network = 1,
    Transport = 2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NatKind {
    Snat = 0,
    Dnat = 1,
}

/// What a `fib` lookup returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FibResult {
    Oif = 1,
    OifName = 2,
    /// `RTN_*` address type, host-order u32 (`RTN_LOCAL` = 2).
    AddrType = 3,
}

/// What a `reject` sends back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectKind {
    /// ICMP (ip/ip6 tables) unreachable with the given code.
    IcmpUnreach = 0,
    TcpReset = 1,
    /// Family-independent ICMPx code (inet tables): 0 no-route,
    /// 1 port-unreachable, 2 host-unreachable, 3 admin-prohibited.
    IcmpxUnreach = 2,
}

/// A pair of registers holding a minimum and a maximum (often the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RegRange {
    pub min: Reg,
    pub max: Reg,
}

/// One rule expression.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Expr {
    Meta {
        key: MetaKey,
        dreg: Reg,
    },
    MetaSet {
        key: MetaKey,
        sreg: Reg,
    },
    Payload {
        base: PayloadBase,
        offset: u32,
        len: u32,
        dreg: Reg,
    },
    Cmp {
        sreg: Reg,
        op: CmpOp,
        data: Vec<u8>,
    },
    /// `dreg = (sreg & mask) ^ xor`; mask and xor have the operand's length.
    Bitwise {
        sreg: Reg,
        dreg: Reg,
        mask: Vec<u8>,
        xor: Vec<u8>,
    },
    Range {
        sreg: Reg,
        op: RangeOp,
        from: Vec<u8>,
        to: Vec<u8>,
    },
    /// Set membership (no `dreg`) or map lookup (`dreg`, [`Reg::VERDICT`]
    /// for a verdict map). `set_id` names a set created in the same batch.
    Lookup {
        set: String,
        set_id: Option<u32>,
        sreg: Reg,
        dreg: Option<Reg>,
        invert: bool,
    },
    Immediate {
        dreg: Reg,
        data: Vec<u8>,
    },
    Verdict(Verdict),
    Counter,
    Ct {
        key: CtKey,
        dreg: Reg,
        direction: Option<CtDirection>,
    },
    CtSet {
        key: CtKey,
        sreg: Reg,
    },
    Nat {
        kind: NatKind,
        family: Family,
        addr: Option<RegRange>,
        proto: Option<RegRange>,
        flags: NatFlags,
    },
    Masquerade {
        proto: Option<RegRange>,
        flags: NatFlags,
    },
    Redirect {
        proto: Option<RegRange>,
        flags: NatFlags,
    },
    Fib {
        flags: FibFlags,
        result: FibResult,
        dreg: Reg,
    },
    Reject {
        kind: RejectKind,
        code: u8,
    },
    /// Packet-rate token bucket: `rate` packets per second, `burst` more
    /// at once; over the rate the rule stops here (NFT_BREAK).
    Limit {
        rate: u64,
        burst: u32,
    },
    /// NFLOG: hands the packet to `group` of the namespace's nfnetlink_log
    /// with `prefix`; the rule goes on.
    Log {
        group: u16,
        prefix: String,
    },
}

impl Expr {
    /// The kernel's name for this expression type.
    pub fn name(&self) -> &'static str {
        match self {
            Expr::Meta { .. } | Expr::MetaSet { .. } => "meta",
            Expr::Payload { .. } => "payload",
            Expr::Cmp { .. } => "cmp",
            Expr::Bitwise { .. } => "bitwise",
            Expr::Range { .. } => "range",
            Expr::Lookup { .. } => "lookup",
            Expr::Immediate { .. } | Expr::Verdict(_) => "immediate",
            Expr::Counter => "counter",
            Expr::Ct { .. } | Expr::CtSet { .. } => "ct",
            Expr::Nat { .. } => "nat",
            Expr::Masquerade { .. } => "masq",
            Expr::Redirect { .. } => "redir",
            Expr::Fib { .. } => "fib",
            Expr::Reject { .. } => "reject",
            Expr::Limit { .. } => "limit",
            Expr::Log { .. } => "log",
        }
    }

    /// `cmp eq` against `data`.
    pub fn cmp_eq(sreg: Reg, data: impl Into<Vec<u8>>) -> Expr {
        Expr::Cmp {
            sreg,
            op: CmpOp::Eq,
            data: data.into(),
        }
    }
}
