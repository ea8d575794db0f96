//! `bulkhead-bench counters`: what per-rule counters cost the data path —
//! the packet rate through an N-rule ACL compiled as bulkhead programs it
//! (every map with element counters, every deciding rule counted) against
//! the very same table with every counter stripped, alternating in one run.
//!
//! World: the `acl` bench's (a nat network, client `a`, server `b` with
//! the bench's `counter drop` table after the host firewall, so every
//! packet of the one flood flow is new and classified). The engine installs
//! the ACL; the bench then compiles the same host firewall (same facts,
//! same rules) and replaces `b`'s table with one holding both variants: the
//! counted chains and maps, and a copy with every counter stripped and
//! every name suffixed `_x` (a measuring device: the engine's view of the
//! kernel is not used afterwards). Which one packets take is one element
//! of `endpoints_in`, so switching costs a small commit, not a 10k-rule
//! replace, and short measurements can alternate closely: each round
//! measures both, in alternating order. Printed: medians over `--rounds`
//! and the median of the per-round ratios (the machine's load drifts).

use bulkhead_dataplane::lower::{lower_ops, lower_table_replace};
use bulkhead_dataplane::nft::{Batch, NftSocket};
use bulkhead_model::NetworkSpec;
use bulkhead_model::{AclMode, AclProfile, Driver, Isolation};
use bulkhead_policy::diff::diff;
use bulkhead_policy::ir::{Action, Chain, Match, Set, Table, Verdict};
use bulkhead_policy::{compile_endpoint_firewall, EndpointFacts, EndpointPolicy, FirewallEndpoint};

use crate::acl::{endpoint, load_bench_table, packet_rate, rules, Ns};
use crate::world::{median, StoreKind, World};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// ACL size.
    #[arg(long, default_value_t = 10_000)]
    pub rules: usize,
    /// Seconds per packet-rate measurement.
    #[arg(long, default_value_t = 2.0)]
    pub seconds: f64,
    /// Rounds of (counted, stripped) measurements.
    #[arg(long, default_value_t = 9)]
    pub rounds: usize,
    /// Seed of the rule generator (the `acl` bench's rules).
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

/// `t` without any counter: no set expression, no rule `counter`.
fn stripped(t: &Table) -> Table {
    let mut t = t.clone();
    for s in t.sets.values_mut() {
        s.counter = false;
    }
    for c in t.chains.values_mut() {
        for r in &mut c.rules {
            r.body_mut().counter = false;
        }
    }
    t
}

/// Suffix of the stripped copy's chains and sets in the combined table.
const BARE: &str = "_x";

/// `t`'s regular chains and its sets other than the dispatch maps, renamed
/// with [`BARE`] (and every reference to them).
fn renamed(t: &Table) -> (Vec<Chain>, Vec<Set>) {
    let chain = |c: &str| format!("{c}{BARE}");
    let verdict = |v: &Verdict| match v {
        Verdict::Jump(c) => Verdict::Jump(chain(c).into()),
        Verdict::Goto(c) => Verdict::Goto(chain(c).into()),
        v => v.clone(),
    };
    let chains = t
        .chains
        .values()
        .filter(|c| c.base.is_none())
        .map(|c| {
            let mut c = c.clone();
            c.name = chain(&c.name).into();
            for r in &mut c.rules {
                let mut matches = r.matches.to_vec();
                for m in &mut matches {
                    if let Match::Lookup { set, .. } = m {
                        *set = chain(set);
                    }
                }
                let action = match &r.action {
                    Action::Verdict(v) => Action::Verdict(verdict(v)),
                    Action::Vmap { key, map } => Action::Vmap {
                        key: key.clone(),
                        map: chain(map),
                    },
                    a => a.clone(),
                };
                let body = r.body_mut();
                body.matches = matches.into();
                body.action = action;
            }
            c
        })
        .collect();
    let sets = t
        .sets
        .values()
        .filter(|s| !s.name.starts_with("endpoints_"))
        .map(|s| {
            let mut s = s.clone();
            s.name = chain(&s.name);
            for v in s.elements.values_mut().flatten() {
                *v = verdict(v);
            }
            s
        })
        .collect();
    (chains, sets)
}

/// The counted table plus a stripped copy of its endpoint chains and maps,
/// with `endpoints_in` pointing at the counted (`counted`) or the stripped
/// chain: switching is one element, not a 10k-rule replace.
fn combined(t: &Table, ifname: &str, counted: bool) -> Table {
    let mut out = t.clone();
    let (chains, sets) = renamed(&stripped(t));
    for c in chains {
        out.add_chain(c);
    }
    for s in sets {
        out.add_set(s);
    }
    let target = format!("ep_{ifname}_in{}", if counted { "" } else { BARE });
    if let Some(d) = out.sets.get_mut("endpoints_in") {
        for v in d.elements.values_mut() {
            *v = Some(Verdict::Jump(target.as_str().into()));
        }
    }
    out
}

/// Commits `batch` in `b`'s namespace.
fn commit(b: &Ns, batch: Batch) -> Result<(), String> {
    let mut sock = NftSocket::open(Some(&b.path)).map_err(|e| e.to_string())?;
    sock.commit(batch).map_err(|e| e.to_string())
}

/// The host firewall the engine programs for `b` with `n` rules, and
/// `b`'s interface name.
fn compiled(w: &World, n: usize, seed: u64) -> Result<(Table, String), String> {
    let specs = rules(n, seed);
    let acl = w
        .engine
        .replace_acls("b", specs)
        .map_err(|e| format!("replace the ACL: {e}"))?;
    let rec = w.engine.endpoint("b").map_err(|e| e.to_string())?;
    let facts = EndpointFacts {
        driver: Driver::Nat,
        isolation: Isolation::Process,
        profile: AclProfile::Current,
        acl_mode: AclMode::Layered,
        addresses: vec![rec.ip_address.addr],
        port_mappings: vec![],
    };
    let policy = EndpointPolicy::new(facts, acl).map_err(|e| e.to_string())?;
    let ifname = rec.ifname.to_string();
    let t = compile_endpoint_firewall(&[FirewallEndpoint {
        ifname: ifname.clone(),
        policy,
    }])
    .map_err(|e| e.to_string())?;
    Ok((t, ifname))
}

/// The geometric mean of `r` and its 95 % interval (normal approximation
/// of the mean of the logarithms).
fn geomean_interval(r: &[f64]) -> (f64, f64, f64) {
    let logs: Vec<f64> = r.iter().map(|x| x.ln()).collect();
    let n = logs.len() as f64;
    let mean = logs.iter().sum::<f64>() / n;
    let var = logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    let half = 1.96 * (var / n).sqrt();
    (mean.exp(), (mean - half).exp(), (mean + half).exp())
}

pub fn run(args: &Args) -> Result<(), String> {
    let w = World::new("cnt", StoreKind::Redb)?;
    w.engine
        .create_network(NetworkSpec {
            name: "bench".into(),
            driver: "nat".into(),
            subnets: vec!["10.202.0.0/16".into()],
            ..Default::default()
        })
        .map_err(|e| format!("network: {e}"))?;
    let a = endpoint(&w, "a")?;
    let b = endpoint(&w, "b")?;
    load_bench_table(&b.path)?;
    let (table, ifname) = compiled(&w, args.rules, args.seed)?;
    let on = combined(&table, &ifname, true);
    let off = combined(&table, &ifname, false);
    commit(&b, lower_table_replace(&on).map_err(|e| e.to_string())?)?;
    let switch = |from: &Table, to: &Table| {
        let batch = lower_ops(Some(from), &diff(from, to)).map_err(|e| e.to_string())?;
        commit(&b, batch)
    };
    let (mut with, mut without) = (Vec::new(), Vec::new());
    let mut now_on = true;
    for round in 0..args.rounds.max(1) {
        let order = if round % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for counters in order {
            if counters != now_on {
                let (from, to) = if counters { (&off, &on) } else { (&on, &off) };
                switch(from, to)?;
                now_on = counters;
            }
            let rate = packet_rate(&a, &b, args.seconds)?;
            if counters { &mut with } else { &mut without }.push(rate);
        }
    }
    let (c, s) = (median(&with), median(&without));
    // Each round measures both back to back: the median of the per-round
    // ratios cancels the machine's slow drifts (other load) best.
    let ratios: Vec<f64> = with.iter().zip(&without).map(|(c, s)| c / s).collect();
    println!(
        "per-rule counters: packet rate through {} rules, medians of {} rounds of {} s",
        args.rules,
        with.len(),
        args.seconds
    );
    println!();
    println!("| rules | without counters | with counters | with ÷ without (medians) | median of round ratios | target |");
    println!("|--:|--:|--:|--:|--:|--:|");
    println!(
        "| {} | {:.0} kpps | {:.0} kpps | {:.3}× | {:.3}× | ≥ 0.97× |",
        args.rules,
        s / 1e3,
        c / 1e3,
        c / s,
        median(&ratios)
    );
    println!();
    let list = |v: &[f64]| {
        v.iter()
            .map(|r| format!("{:.0}", r / 1e3))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!(
        "rounds (kpps) without: {}; with: {}",
        list(&without),
        list(&with)
    );
    let (g, lo, hi) = geomean_interval(&ratios);
    println!(
        "with ÷ without, geometric mean of the {} round ratios: {g:.3}× (95 % interval {lo:.3}–{hi:.3}×)",
        ratios.len()
    );
    let ratios: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
    println!("round ratios: {}", ratios.join(" "));
    Ok(())
}
