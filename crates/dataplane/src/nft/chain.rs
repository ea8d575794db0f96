//! Chains: regular chains (jump targets) and base chains (attached to a hook).
//!
//! Contract: a [`Chain`] with `base: None` is a regular chain; with a
//! [`BaseChain`] it is attached to its hook at its priority with its policy
//! when the batch commits. Netdev-family base chains must name a device.

use super::table::Family;
use super::uapi::*;
use crate::netlink::wire::Writer;

/// The hook a base chain attaches to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hook {
    Prerouting,
    Input,
    Forward,
    Output,
    Postrouting,
    /// Netdev family only.
    Ingress,
    /// Netdev family only.
    Egress,
}

impl Hook {
    /// The hook number the kernel expects (`NF_INET_*` or `NF_NETDEV_*`).
    pub fn number(self) -> u32 {
        match self {
            Hook::Prerouting | Hook::Ingress => 0,
            Hook::Input | Hook::Egress => 1,
            Hook::Forward => 2,
            Hook::Output => 3,
            Hook::Postrouting => 4,
        }
    }

    pub fn from_number(family: Family, n: u32) -> Option<Hook> {
        Some(match (family == Family::Netdev, n) {
            (true, 0) => Hook::Ingress,
            (true, 1) => Hook::Egress,
            (false, 0) => Hook::Prerouting,
            (false, 1) => Hook::Input,
            (false, 2) => Hook::Forward,
            (false, 3) => Hook::Output,
            (false, 4) => Hook::Postrouting,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChainType {
    Filter,
    Nat,
    Route,
}

impl ChainType {
    pub fn name(self) -> &'static str {
        match self {
            ChainType::Filter => "filter",
            ChainType::Nat => "nat",
            ChainType::Route => "route",
        }
    }
}

/// What a base chain does with a packet no rule decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Policy {
    Accept,
    Drop,
}

/// The hook attachment of a base chain.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BaseChain {
    pub chain_type: ChainType,
    pub hook: Hook,
    pub priority: i32,
    pub policy: Policy,
    /// The interface of a netdev ingress/egress chain.
    pub device: Option<String>,
}

/// A chain to create.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Chain {
    pub name: String,
    pub base: Option<BaseChain>,
}

impl Chain {
    /// A regular chain, reachable only by jump/goto.
    pub fn regular(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            base: None,
        }
    }

    /// A base chain without a device (all families but netdev).
    pub fn base(
        name: impl Into<String>,
        chain_type: ChainType,
        hook: Hook,
        priority: i32,
        policy: Policy,
    ) -> Self {
        Self {
            name: name.into(),
            base: Some(BaseChain {
                chain_type,
                hook,
                priority,
                policy,
                device: None,
            }),
        }
    }

    /// Sets the device of a netdev base chain.
    pub fn on_device(mut self, device: impl Into<String>) -> Self {
        if let Some(b) = self.base.as_mut() {
            b.device = Some(device.into());
        }
        self
    }

    pub(crate) fn encode(&self, w: &mut Writer, table: &str) {
        w.str(NFTA_CHAIN_TABLE, table);
        w.str(NFTA_CHAIN_NAME, &self.name);
        if let Some(b) = &self.base {
            let hook = w.nest_start(NFTA_CHAIN_HOOK);
            w.be32(NFTA_HOOK_HOOKNUM, b.hook.number());
            w.be32(NFTA_HOOK_PRIORITY, b.priority as u32);
            if let Some(dev) = &b.device {
                w.str(NFTA_HOOK_DEV, dev);
            }
            w.nest_end(hook);
            let policy = match b.policy {
                Policy::Accept => NF_ACCEPT,
                Policy::Drop => NF_DROP,
            };
            w.be32(NFTA_CHAIN_POLICY, policy as u32);
            w.str(NFTA_CHAIN_TYPE, b.chain_type.name());
        }
    }
}
