//! Renders IR to `nft` syntax for people and golden files. Deterministic:
//! sets and maps first, then chains, each by name; one element per line.
//! Ranges that are exact prefixes print as CIDRs.

use std::fmt::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::ir::{
    from_be, Action, ChainKind, ChainPolicy, CtStates, Field, Match, NfProto, Rule, Set, SetKind,
    Table, Verdict,
};

pub fn render(table: &Table) -> String {
    let mut out = format!("table {} {} {{\n", table.family.as_str(), table.name);
    for set in table.sets.values() {
        render_set(&mut out, set);
    }
    for chain in table.chains.values() {
        let _ = writeln!(out, "\tchain {} {{", chain.name);
        if let Some(b) = &chain.base {
            let kind = if b.kind == ChainKind::Nat {
                "nat"
            } else {
                "filter"
            };
            let policy = if b.policy == ChainPolicy::Accept {
                "accept"
            } else {
                "drop"
            };
            let dev = b
                .device
                .as_ref()
                .map(|d| format!(" device \"{d}\""))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "\t\ttype {kind} hook {}{dev} priority {}; policy {policy};",
                b.hook.as_str(),
                b.priority
            );
        }
        for rule in &chain.rules {
            let _ = writeln!(out, "\t\t{}", render_rule(rule));
        }
        out.push_str("\t}\n");
    }
    out.push_str("}\n");
    out
}

fn render_set(out: &mut String, set: &Set) {
    let map = set.kind == SetKind::VerdictMap;
    let ty: Vec<&str> = set.key.iter().map(|f| f.nft_type()).collect();
    let _ = writeln!(out, "\t{} {} {{", if map { "map" } else { "set" }, set.name);
    let _ = writeln!(
        out,
        "\t\ttype {}{}",
        ty.join(" . "),
        if map { " : verdict" } else { "" }
    );
    if set.interval {
        let _ = writeln!(out, "\t\tflags interval");
    }
    if set.counter {
        let _ = writeln!(out, "\t\tcounter");
    }
    if !set.elements.is_empty() {
        out.push_str("\t\telements = {\n");
        for (key, v) in &set.elements {
            let parts: Vec<String> = set
                .key
                .iter()
                .zip(key.iter())
                .map(|(f, (lo, hi))| range(*f, lo, hi))
                .collect();
            let v = v
                .as_ref()
                .map(|v| format!(" : {}", verdict(v)))
                .unwrap_or_default();
            // The counter owner is bookkeeping, not kernel state: an nft comment.
            let owner = set
                .owners
                .get(key)
                .map(|o| format!(" # {o}"))
                .unwrap_or_default();
            let _ = writeln!(out, "\t\t\t{}{v},{owner}", parts.join(" . "));
        }
        out.push_str("\t\t}\n");
    }
    out.push_str("\t}\n");
}

fn proto(p: u8) -> String {
    if p == 136 {
        return "udplite".into();
    }
    bulkhead_model::Protocol::Number(p).to_string()
}

fn value(f: Field, b: &[u8]) -> String {
    match f {
        Field::IifName | Field::OifName => {
            format!("\"{}\"", String::from_utf8_lossy(b).trim_end_matches('\0'))
        }
        Field::L4Proto => proto(b[0]),
        Field::Saddr4 | Field::Daddr4 | Field::ArpSpa => {
            Ipv4Addr::from(from_be(b) as u32).to_string()
        }
        Field::Saddr6 | Field::Daddr6 | Field::NdTarget => Ipv6Addr::from(from_be(b)).to_string(),
        Field::Sport | Field::Dport => from_be(b).to_string(),
        Field::EtherSaddr | Field::ArpSha => b
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<Vec<_>>()
            .join(":"),
        Field::Mark => format!("0x{:08x}", from_be(b)),
    }
}

fn range(f: Field, lo: &[u8], hi: &[u8]) -> String {
    if lo == hi {
        return value(f, lo);
    }
    if matches!(
        f,
        Field::Saddr4 | Field::Daddr4 | Field::Saddr6 | Field::Daddr6
    ) {
        let bits = lo.len() as u32 * 8;
        let (l, h) = (from_be(lo), from_be(hi));
        let host = h ^ l;
        if l & host == 0 && host.checked_add(1).is_none_or(|n| n.is_power_of_two()) {
            return format!("{}/{}", value(f, lo), bits - host.count_ones());
        }
    }
    if f == Field::L4Proto {
        return format!("{}-{}", lo[0], hi[0]);
    }
    format!("{}-{}", value(f, lo), value(f, hi))
}

fn verdict(v: &Verdict) -> String {
    match v {
        Verdict::Accept => "accept".into(),
        Verdict::Drop => "drop".into(),
        Verdict::Continue => "continue".into(),
        Verdict::Return => "return".into(),
        Verdict::Jump(c) => format!("jump {c}"),
        Verdict::Goto(c) => format!("goto {c}"),
    }
}

fn list(items: Vec<String>) -> String {
    if items.len() == 1 {
        items[0].clone()
    } else {
        format!("{{ {} }}", items.join(", "))
    }
}

fn keys(key: &[Field]) -> String {
    key.iter()
        .map(|f| f.nft_expr())
        .collect::<Vec<_>>()
        .join(" . ")
}

fn render_match(m: &Match) -> String {
    let neg = |n: bool| if n { "!= " } else { "" };
    match m {
        Match::CtState(s) => {
            let names = [
                (CtStates::INVALID, "invalid"),
                (CtStates::ESTABLISHED, "established"),
                (CtStates::RELATED, "related"),
                (CtStates::NEW, "new"),
                (CtStates::UNTRACKED, "untracked"),
            ];
            let v: Vec<&str> = names
                .iter()
                .filter(|(b, _)| s.intersects(*b))
                .map(|(_, n)| *n)
                .collect();
            format!("ct state {}", v.join(","))
        }
        Match::CtStatusDnat => "ct status dnat".into(),
        Match::IifName { name, negate } => format!("iifname {}\"{name}\"", neg(*negate)),
        Match::OifName { name, negate } => format!("oifname {}\"{name}\"", neg(*negate)),
        Match::NfProto(p) => format!(
            "meta nfproto {}",
            if *p == NfProto::Ipv4 { "ipv4" } else { "ipv6" }
        ),
        Match::L4Proto { protos, negate } => {
            format!(
                "meta l4proto {}{}",
                neg(*negate),
                list(protos.iter().map(|p| proto(*p)).collect())
            )
        }
        Match::Icmpv6Type(types) => {
            let name = |t: &u8| match t {
                133 => "nd-router-solicit".to_string(),
                134 => "nd-router-advert".into(),
                135 => "nd-neighbor-solicit".into(),
                136 => "nd-neighbor-advert".into(),
                137 => "nd-redirect".into(),
                t => t.to_string(),
            };
            format!("icmpv6 type {}", list(types.iter().map(name).collect()))
        }
        Match::Prefix { field, addr, len } => {
            let hi = from_be(addr)
                | (u128::MAX >> (128 - addr.len() * 8))
                    .checked_shr(u32::from(*len))
                    .unwrap_or(0);
            let hi = crate::ir::be_bytes(hi, addr.len());
            format!(
                "{} {}",
                field.nft_expr(),
                if usize::from(*len) == addr.len() * 8 {
                    value(*field, addr)
                } else {
                    range(*field, addr, &hi)
                }
            )
        }
        Match::Ranges { field, ranges } => {
            let n = field.len();
            let items = ranges
                .iter()
                .map(|&(lo, hi)| {
                    range(
                        *field,
                        &crate::ir::be_bytes(lo, n),
                        &crate::ir::be_bytes(hi, n),
                    )
                })
                .collect();
            format!("{} {}", field.nft_expr(), list(items))
        }
        Match::Lookup { key, set, negate } => format!("{} {}@{set}", keys(key), neg(*negate)),
        Match::FibDaddrLocal => "fib daddr type local".into(),
        Match::EtherType(t) => match t {
            0x0800 => "meta protocol ip".into(),
            0x86dd => "meta protocol ip6".into(),
            0x0806 => "meta protocol arp".into(),
            t => format!("meta protocol 0x{t:04x}"),
        },
    }
}

fn render_rule(rule: &Rule) -> String {
    let mut parts: Vec<String> = rule.matches.iter().map(render_match).collect();
    if rule.counter {
        parts.push("counter".into());
    }
    parts.push(match &rule.action {
        Action::Verdict(v) => verdict(v),
        Action::Vmap { key, map } => format!("{} vmap @{map}", keys(key)),
        Action::Dnat { addr, port } => {
            let fam = if addr.is_ipv4() { "ip" } else { "ip6" };
            let a = if addr.is_ipv4() {
                addr.to_string()
            } else {
                format!("[{addr}]")
            };
            format!(
                "dnat {fam} to {a}{}",
                port.map(|p| format!(":{p}")).unwrap_or_default()
            )
        }
        Action::Snat { addr } => format!(
            "snat {} to {addr}",
            if addr.is_ipv4() { "ip" } else { "ip6" }
        ),
        Action::Masquerade => "masquerade".into(),
        Action::SetMarkBits(b) => format!("meta mark set meta mark | {b:#010x}"),
        Action::Log(l) => format!(
            "limit rate {}/second burst {} packets log prefix \"{}\" group {}",
            l.rate, l.burst, l.prefix, l.group
        ),
    });
    if let Some(c) = &rule.comment {
        parts.push(format!("comment \"{c}\""));
    }
    parts.join(" ")
}
