//! `bulkhead-bench policy`: the policy engine against its targets (spec:
//! 10k rules compiled ≤ 5 ms, a new-flow verdict ≤ 500 ns, zero disagreement
//! with the linear reference on 10^6 random packets).
//!
//! Rules are random but shaped like real ACLs (Calico/Azure ladders): mostly
//! TCP/UDP allows from host addresses, /24s and /16s of 10.0.0.0/8 to a few
//! local ports or a range, some any-protocol and ICMP rules, a few remote
//! port constraints, priorities spread over the HCN ladder.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use crate::rng::Rng;
use bulkhead_model::{
    AclMode, AclProfile, AclRule, Action, AddressList, Cidr, Direction, Driver, Isolation,
    PortList, PortRange, Protocol, RuleId, RuleType,
};
use bulkhead_policy::compile::incremental::firewall_rule_change;
use bulkhead_policy::reference::evaluate_ordered;
use bulkhead_policy::{
    compile_endpoint_firewall, Classifier, EndpointFacts, EndpointPolicy, EnforcementPoint,
    FirewallEndpoint, Packet, PolicyError,
};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Random packets for the verdict timing and the agreement check.
    #[arg(long, default_value_t = 1_000_000)]
    pub packets: usize,
    /// Seed of the generator.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Repetitions of each compile (the median is printed).
    #[arg(long, default_value_t = 5)]
    pub reps: usize,
    /// The largest list size to compile (1,000, 10,000 or 100,000); larger
    /// rows of both compile tables are skipped. The classifier timing
    /// needs the 10k list.
    #[arg(long, default_value_t = 100_000)]
    pub max_rules: usize,
    /// Writes each compiled table, rendered, to `<dir>/policy-<n>.nft` and
    /// `<dir>/acl-<n>.nft` (to check that a compiler change keeps the IR).
    #[arg(long)]
    pub dump_ir: Option<std::path::PathBuf>,
    /// Only the table of `bulkhead-bench acl`'s list (its compile and
    /// clone): a compiler change measured without the rest.
    #[arg(long)]
    pub acl_only: bool,
}

/// Writes `table`'s rendering to `<dir>/<name>.nft` when dumping.
fn dump(dir: Option<&std::path::Path>, name: &str, table: &bulkhead_policy::ir::Table) {
    if let Some(dir) = dir {
        let path = dir.join(format!("{name}.nft"));
        if let Err(e) = std::fs::write(&path, bulkhead_policy::render::render(table)) {
            eprintln!("bulkhead-bench: {}: {e}", path.display());
        }
    }
}

const EP: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 2);

fn remote_ip(rng: &mut Rng) -> Ipv4Addr {
    Ipv4Addr::from(0x0a00_0000 | (rng.below(1 << 16) as u32) << 8 | rng.below(256) as u32 & 0x3f)
}

fn rule(rng: &mut Rng, i: usize) -> AclRule {
    let protocol = match rng.below(20) {
        0..=9 => Protocol::TCP,
        10..=14 => Protocol::UDP,
        15..=16 => Protocol::Any,
        17..=18 => Protocol::ICMP,
        _ => Protocol::Number(47),
    };
    let mut remote = Vec::new();
    // Rules without remote addresses sit at the ladder's tail (Calico and
    // Azure put their broad rules at 65000 and above).
    let broad = rng.chance(5);
    if !broad {
        for _ in 0..1 + rng.below(3) {
            let prefix = match rng.below(10) {
                0..=5 => 32,
                6..=8 => 24,
                _ => 16,
            };
            remote.push(Cidr::new(IpAddr::V4(remote_ip(rng)), prefix));
        }
    }
    let ported = protocol == Protocol::Any || protocol.has_ports();
    let mut local_ports = Vec::new();
    if ported && rng.chance(70) {
        if rng.chance(20) {
            let start = 1024 + rng.below(30000) as u16;
            local_ports.push(PortRange {
                start,
                end: start + rng.below(1000) as u16,
            });
        } else {
            for _ in 0..1 + rng.below(3) {
                local_ports.push(PortRange::single(
                    [22, 53, 80, 443, 3306, 5432, 6379, 8080, 8443, 9090][rng.below(10) as usize],
                ));
            }
        }
    }
    let remote_ports = if ported && rng.chance(3) {
        vec![PortRange::single(53)]
    } else {
        vec![]
    };
    AclRule {
        id: RuleId::parse("id", &format!("rule-{i}")).expect("valid id"),
        action: if rng.chance(75) {
            Action::Allow
        } else {
            Action::Block
        },
        direction: Direction::In,
        protocol,
        local_addresses: AddressList::default(),
        remote_addresses: AddressList::new(remote),
        local_ports: PortList::new(local_ports),
        remote_ports: PortList::new(remote_ports),
        rule_type: RuleType::Host,
        priority: if broad {
            65_000 + rng.below(500) as u16
        } else {
            100 + rng.below(64_000) as u16
        },
    }
}

fn policy(rng: &mut Rng, n: usize) -> Result<EndpointPolicy, PolicyError> {
    let facts = EndpointFacts {
        driver: Driver::L2Bridge,
        isolation: Isolation::Process,
        profile: AclProfile::Current,
        acl_mode: AclMode::Layered,
        addresses: vec![IpAddr::V4(EP)],
        port_mappings: vec![],
    };
    EndpointPolicy::new(facts, (0..n).map(|i| rule(rng, i)).collect())
}

fn packet(rng: &mut Rng, rules: &[AclRule]) -> Packet {
    // Half the packets aim at a rule's own addresses so that rules match.
    let remote = match rules
        .get(rng.below(rules.len() as u64 * 2) as usize)
        .and_then(|r| r.remote_addresses.items().first())
    {
        Some(c) if rng.chance(80) => match c.network() {
            IpAddr::V4(a) => {
                Ipv4Addr::from(u32::from(a) | (rng.below(1 << (32 - u32::from(c.prefix()))) as u32))
            }
            IpAddr::V6(_) => remote_ip(rng),
        },
        _ => remote_ip(rng),
    };
    let protocol = [6u8, 6, 6, 17, 17, 1, 47, 132][rng.below(8) as usize];
    let mut p = Packet::new(Direction::In, IpAddr::V4(remote), IpAddr::V4(EP), protocol);
    if bulkhead_policy::packet::is_ported(protocol) {
        let dport = [22, 53, 80, 443, 8080, 5432, 1500][rng.below(7) as usize]
            + rng.below(2) as u16 * rng.below(20000) as u16;
        p = p.with_ports(1024 + rng.below(60000) as u16, dport);
    }
    p
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

pub fn run(args: &Args) -> Result<(), PolicyError> {
    if args.acl_only {
        return acl_bench_lists(args.reps.max(1), args.max_rules, args.dump_ir.as_deref());
    }
    let mut rng = Rng::new(args.seed);
    println!(
        "policy engine (one endpoint, inbound host rules; medians of {} runs)",
        args.reps
    );
    println!();
    println!(
        "| rules | classify | compile to IR | regions | map elements | multi-field map elements | chains | IR rules | longest region chain | target |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    let mut ten_k = None;
    let mut one_rule = Vec::new();
    for n in [1_000, 10_000, 100_000] {
        if n > args.max_rules {
            continue;
        }
        let policy = policy(&mut rng, n)?;
        let (mut tc, mut ti) = (Vec::new(), Vec::new());
        let mut regions = 0;
        let mut elements = 0;
        let (mut concat, mut chains, mut ir_rules, mut longest) = (0, 0, 0, 0);
        let mut refused = None;
        for _ in 0..args.reps.max(1) {
            let t = Instant::now();
            let c = Classifier::new(&policy)?;
            tc.push(t.elapsed());
            regions = regions_of(&c);
            let t = Instant::now();
            let table = match compile_endpoint_firewall(&[FirewallEndpoint {
                ifname: "eth0".into(),
                policy: policy.clone(),
            }]) {
                Ok(t) => t,
                Err(e) => {
                    refused = Some(e);
                    break;
                }
            };
            ti.push(t.elapsed());
            elements = table.sets.values().map(|s| s.elements.len()).sum::<usize>();
            concat = table
                .sets
                .values()
                .filter(|s| s.key.len() > 1)
                .map(|s| s.elements.len())
                .sum::<usize>();
            chains = table.chains.len();
            ir_rules = table.rule_count();
            dump(args.dump_ir.as_deref(), &format!("policy-{n}"), &table);
            // Region chains: `acl_…_<hash>` (not the `_next` continuations).
            longest = table
                .chains
                .values()
                .filter(|c| c.name.starts_with("acl_") && !c.name.ends_with("_next"))
                .map(|c| c.rules.len())
                .max()
                .unwrap_or(0);
        }
        if let Some(e) = refused {
            // The compiler's region limit: a size this generator cannot reach.
            println!("| {n} | refused: {e} | | | | | | | | |");
            continue;
        }
        let target = if n == 10_000 { "≤ 5 ms" } else { "" };
        println!(
            "| {n} | {} | {} | {regions} | {elements} | {concat} | {chains} | {ir_rules} | {longest} | {target} |",
            ms(median(tc)),
            ms(median(ti))
        );
        one_rule.push((n, incremental(&policy, args.reps.max(1))?));
        if n == 10_000 {
            ten_k = Some(policy);
        }
    }
    println!();
    println!("one rule added, then removed (`compile::incremental`: the ops from the compiled table, no full compile; medians of {} runs)", args.reps);
    println!();
    println!("| rules | add one rule | remove it | ops (add / remove) | target (end to end) |");
    println!("|---:|---:|---:|---:|---|");
    for (n, line) in one_rule {
        println!("| {n} | {line} | ≤ 5 ms |");
    }
    acl_bench_lists(args.reps.max(1), args.max_rules, args.dump_ir.as_deref())?;
    if ten_k.is_none() {
        return Ok(());
    }
    let policy = ten_k.expect("10k policy");
    let classifier = Classifier::new(&policy)?;
    let packets: Vec<Packet> = (0..args.packets)
        .map(|_| packet(&mut rng, policy.rules()))
        .collect();
    let point = EnforcementPoint::HostFirewall;
    let t = Instant::now();
    let mut allowed = 0usize;
    for p in &packets {
        allowed +=
            usize::from(classifier.evaluate(point, p).verdict == bulkhead_policy::Verdict::Allow);
    }
    let per = t.elapsed().as_secs_f64() * 1e9 / packets.len() as f64;
    let ordered = policy.ordered_rules(point, Direction::In);
    let t = Instant::now();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = packets.len().div_ceil(threads).max(1);
    let (disagree, custom) = std::thread::scope(|s| {
        let handles: Vec<_> = packets
            .chunks(chunk)
            .map(|ps| {
                let (c, pol, ord) = (&classifier, &policy, &ordered);
                s.spawn(move || {
                    let mut d = (0usize, 0usize);
                    for p in ps {
                        let want = evaluate_ordered(pol, point, p, ord);
                        d.1 += usize::from(matches!(
                            want.decided_by,
                            bulkhead_policy::Decider::Custom(_)
                        ));
                        d.0 += usize::from(c.evaluate(point, p) != want);
                    }
                    d
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("worker"))
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    });
    let reference = t.elapsed();
    println!();
    println!("| classifier, 10k rules | value | target |");
    println!("|---|---:|---|");
    println!("| verdict per new flow | {per:.0} ns | ≤ 500 ns |");
    println!(
        "| packets | {} ({allowed} allowed, {custom} decided by a custom rule) | |",
        packets.len()
    );
    println!("| disagreements with the linear reference | {disagree} | 0 |");
    println!(
        "| linear reference, wall time ({threads} threads) | {:.1} s | |",
        reference.as_secs_f64()
    );
    Ok(())
}

/// Times [`firewall_rule_change`] adding one rule to `policy` and removing
/// it again (the acl bench's rule: block tcp 8080 from a /24 of
/// 10.99.0.0/16), each from the compiled table; "full" when the change
/// is not incremental.
fn incremental(policy: &EndpointPolicy, reps: usize) -> Result<String, PolicyError> {
    let fw = |p: &EndpointPolicy| {
        compile_endpoint_firewall(&[FirewallEndpoint {
            ifname: "eth0".into(),
            policy: p.clone(),
        }])
    };
    let mut rules = policy.rules().to_vec();
    rules.push(AclRule {
        id: RuleId::parse("id", "extra").expect("id"),
        action: Action::Block,
        direction: Direction::In,
        protocol: Protocol::TCP,
        local_addresses: AddressList::default(),
        remote_addresses: AddressList::new(vec![Cidr::parse("a", "10.99.7.0/24").expect("cidr")]),
        local_ports: PortList::new(vec![PortRange::single(8080)]),
        remote_ports: PortList::default(),
        rule_type: RuleType::Host,
        priority: 500,
    });
    let more = EndpointPolicy::new(policy.facts().clone(), rules)?;
    let (without, with) = (fw(policy)?, fw(&more)?);
    let (mut ta, mut tr, mut ops) = (Vec::new(), Vec::new(), (0, 0));
    for _ in 0..reps {
        let t = Instant::now();
        let add = firewall_rule_change(&without, "eth0", policy, &more)?;
        ta.push(t.elapsed());
        let t = Instant::now();
        let remove = firewall_rule_change(&with, "eth0", &more, policy)?;
        tr.push(t.elapsed());
        let (Some(a), Some(r)) = (add, remove) else {
            return Ok("full | full | -".into());
        };
        ops = (a.len(), r.len());
    }
    Ok(format!(
        "{} | {} | {} / {}",
        ms(median(ta)),
        ms(median(tr)),
        ops.0,
        ops.1
    ))
}

fn regions_of(c: &Classifier) -> usize {
    use bulkhead_policy::ProtoClass;
    let mut n = 0;
    for class in [ProtoClass::Ported, ProtoClass::Portless] {
        n += c
            .segments(EnforcementPoint::HostFirewall, Direction::In, true, class)
            .region_count();
    }
    n
}

/// Compiles the ACL `bulkhead-bench acl` installs (10k and 100k rules) and
/// times cloning the finished IR beside it: the compile builds that IR, so
/// its clone is what materialising the IR costs, whatever the compiler
/// does (thread CPU time, medians of `reps`).
fn acl_bench_lists(
    reps: usize,
    max_rules: usize,
    dump_ir: Option<&std::path::Path>,
) -> Result<(), PolicyError> {
    let cpu = || crate::acl::cpu_ns() as f64 / 1e6;
    println!();
    println!("the ACL of `bulkhead-bench acl` (thread CPU time, medians of {reps} runs)");
    println!();
    println!("| rules | compile to IR | clone of the IR | chains | IR rules | elements |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for n in [10_000, 100_000] {
        if n > max_rules {
            continue;
        }
        let rules = crate::acl::rules(n, 7)
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.validate(&format!("r{i}"))
                    .expect("the acl bench's rules are valid")
            })
            .collect::<Vec<AclRule>>();
        let facts = EndpointFacts {
            driver: Driver::Nat,
            isolation: Isolation::Process,
            profile: AclProfile::Current,
            acl_mode: AclMode::Layered,
            addresses: vec![IpAddr::V4(EP)],
            port_mappings: vec![],
        };
        let eps = [FirewallEndpoint {
            ifname: "eth0".into(),
            policy: EndpointPolicy::new(facts, rules)?,
        }];
        let (mut tc, mut tl) = (Vec::new(), Vec::new());
        let mut sizes = (0, 0, 0);
        for _ in 0..reps {
            let t = cpu();
            let table = compile_endpoint_firewall(&eps)?;
            tc.push(cpu() - t);
            let t = cpu();
            let copy = table.clone();
            tl.push(cpu() - t);
            drop(copy);
            let elements = table.sets.values().map(|s| s.elements.len()).sum();
            sizes = (table.chains.len(), table.rule_count(), elements);
            dump(dump_ir, &format!("acl-{n}"), &table);
        }
        let med = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        println!(
            "| {n} | {:.1} ms | {:.1} ms | {} | {} | {} |",
            med(tc),
            med(tl),
            sizes.0,
            sizes.1,
            sizes.2
        );
    }
    Ok(())
}
