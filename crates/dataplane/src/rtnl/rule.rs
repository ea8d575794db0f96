//! Policy routing rules (`ip rule`): which routing table a packet uses, by
//! source prefix, input interface and packet-mark bits.
//!
//! Contract: a [`RoutingRule`] is added with `NLM_F_EXCL` (an identical rule
//! is "File exists") and deleted by the same selector; the action is always
//! "look up table N".

use std::net::IpAddr;

use super::wire::{self, Writer};
use super::Batch;

/// `ip rule add [from SRC/LEN] [iif DEV] [fwmark BITS/BITS] lookup TABLE
/// priority PRIO`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingRule {
    pub priority: u32,
    pub table: u32,
    /// IPv4 when true, else IPv6.
    pub v4: bool,
    pub src: Option<(IpAddr, u8)>,
    pub iif: Option<String>,
    /// Matches packets whose mark has all these bits set (`fwmark B/B`).
    pub fwmark: Option<u32>,
}

const FR_ACT_TO_TBL: u8 = 1;

impl RoutingRule {
    fn describe(&self) -> String {
        let from = self
            .src
            .map_or("all".into(), |(ip, len)| format!("{ip}/{len}"));
        let iif = self
            .iif
            .as_ref()
            .map(|d| format!(" iif {d}"))
            .unwrap_or_default();
        let mark = self
            .fwmark
            .map(|b| format!(" fwmark {b:#x}/{b:#x}"))
            .unwrap_or_default();
        format!(
            "from {from}{iif}{mark} lookup {} priority {}",
            self.table, self.priority
        )
    }

    fn msg(&self, ty: u16, flags: u16) -> Writer {
        let mut h = [0u8; 12];
        h[0] = if self.v4 {
            wire::AF_INET
        } else {
            wire::AF_INET6
        };
        h[2] = self.src.map_or(0, |(_, len)| len);
        h[4] = u8::try_from(self.table).unwrap_or(0);
        h[7] = FR_ACT_TO_TBL;
        let mut m = wire::request(ty, flags);
        m.raw(&h);
        if let Some((ip, _)) = self.src {
            match ip {
                IpAddr::V4(a) => m.bytes(wire::FRA_SRC, &a.octets()),
                IpAddr::V6(a) => m.bytes(wire::FRA_SRC, &a.octets()),
            };
        }
        if let Some(dev) = &self.iif {
            m.str(wire::FRA_IIFNAME, dev);
        }
        if let Some(bits) = self.fwmark {
            m.u32(wire::FRA_FWMARK, bits).u32(wire::FRA_FWMASK, bits);
        }
        m.u32(wire::FRA_PRIORITY, self.priority)
            .u32(wire::FRA_TABLE, self.table);
        m
    }
}

impl Batch {
    pub fn add_rule(&mut self, rule: &RoutingRule) -> &mut Self {
        let flags = wire::NLM_F_ACK | wire::NLM_F_CREATE | wire::NLM_F_EXCL;
        let m = rule.msg(wire::RTM_NEWRULE, flags);
        self.push("add rule", rule.describe(), m)
    }

    pub fn delete_rule(&mut self, rule: &RoutingRule) -> &mut Self {
        let m = rule.msg(wire::RTM_DELRULE, wire::NLM_F_ACK);
        self.push("delete rule", rule.describe(), m)
    }
}
