//! An in-process nf_tables client: typed objects and expressions, encoded by
//! our own netlink encoder (no `nft` process, no libnftnl), committed as one
//! atomic transaction per [`Batch`] over an [`NftSocket`].
//!
//! Contract: nothing here spawns a process or reads the whole ruleset to
//! change it; every change is a batch the kernel applies entirely or not at
//! all, and a failure names the message the kernel refused ([`NftError`]).
//! Callers build [`Table`], [`Chain`], [`Rule`] (a list of [`Expr`]), [`Set`]
//! and [`Element`] values; the encoding rules (byte order, register layout,
//! interval elements) live in this module and nowhere else.
//!
//! ```no_run
//! use bulkhead_dataplane::nft::*;
//! let t = Table::new(Family::Inet, "bulkhead");
//! let mut b = Batch::new();
//! b.add_table(&t)
//!     .add_chain(&t, &Chain::base("input", ChainType::Filter, Hook::Input, 0, Policy::Accept))
//!     .add_rule(&t, &Rule::new("input", vec![
//!         Expr::Meta { key: MetaKey::L4Proto, dreg: Reg::R1 },
//!         Expr::cmp_eq(Reg::R1, [6u8]),
//!         Expr::Payload { base: PayloadBase::Transport, offset: 2, len: 2, dreg: Reg::R1 },
//!         Expr::cmp_eq(Reg::R1, 22u16.to_be_bytes()),
//!         Expr::Verdict(Verdict::Drop),
//!     ]));
//! NftSocket::open(None)?.commit(b)?;
//! # Ok::<(), Error>(())
//! ```

mod batch;
mod chain;
mod dump;
mod error;
mod expr;
mod expr_wire;
mod flags;
pub(crate) mod nfnl;
mod register;
mod rule;
mod set;
mod socket;
mod table;
pub(crate) mod uapi;
mod verdict;

pub use batch::{Batch, SetRef};
pub use chain::{BaseChain, Chain, ChainType, Hook, Policy};
pub use dump::{userdata_comment, ChainInfo, RawExpr, RuleInfo, SetInfo, TableInfo};
pub use error::{Error, NftError};
pub use expr::{
    CmpOp, CtDirection, CtKey, Expr, FibResult, MetaKey, NatKind, PayloadBase, RangeOp, RegRange,
    RejectKind,
};
pub use flags::{CtState, FibFlags, NatFlags, SetFlags};
pub use register::{ConcatLayout, LayoutError, Reg};
pub use rule::Rule;
pub use set::{ifname_key, successor, Element, KeyType, Set, SetData, SetKey};
pub use socket::NftSocket;
pub use table::{Family, Table};
pub use verdict::{ElemData, Verdict};
