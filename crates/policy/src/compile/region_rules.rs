//! The rules of a two-level region chain: consecutive rules of one ACL
//! rule joined ([`merge_adjacent`]), multi-range value matches spelled out
//! as one rule per value ([`expand`], up to [`MAX_EXPANSION`]) or, beyond
//! that, a lookup in a named value set ([`value_set`]); and the chains
//! one lead map's build makes, named by their content ([`Made`]).

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::ops::Bound;
use std::sync::Arc;

use crate::boxes::{FastBuild, FastHasher};
use crate::ir::{
    Chain, Field, Key, KeyBytes, Match, Rule, Set, SetKind, Table, Verdict as NftVerdict,
};

/// The union of two sorted, disjoint range lists (sorted, disjoint, and
/// adjacent ranges joined).
fn union(a: &[(u128, u128)], b: &[(u128, u128)]) -> Vec<(u128, u128)> {
    let mut all: Vec<(u128, u128)> = a.iter().chain(b).copied().collect();
    all.sort_unstable();
    let mut out: Vec<(u128, u128)> = Vec::with_capacity(all.len());
    for (lo, hi) in all {
        match out.last_mut() {
            Some(last) if last.1 == u128::MAX || lo <= last.1 + 1 => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

/// `a ∨ b` as one match, when both are value sets of the same field.
fn join(a: &Match, b: &Match) -> Option<Match> {
    match (a, b) {
        (
            Match::Ranges {
                field: f,
                ranges: x,
            },
            Match::Ranges {
                field: g,
                ranges: y,
            },
        ) if f == g => Some(Match::Ranges {
            field: *f,
            ranges: union(x, y),
        }),
        (
            Match::L4Proto {
                protos: x,
                negate: false,
            },
            Match::L4Proto {
                protos: y,
                negate: false,
            },
        ) => {
            let mut protos: Vec<u8> = x.iter().chain(y).copied().collect();
            protos.sort_unstable();
            protos.dedup();
            Some(Match::L4Proto {
                protos,
                negate: false,
            })
        }
        _ => None,
    }
}

/// Joins consecutive rules with the same verdict whose matches differ in
/// at most one value set of one field: "if a then v; if b then v" is "if a
/// or b then v", and a conjunction that differs in one conjunct only is the
/// conjunction with that conjunct's disjunction. Only rules of the same ACL
/// rule (equal comments) are joined, so each counter counts one rule.
/// `list` holds positions in `rules`; a rule left as it was comes out as
/// its position ([`Merged::Rule`]), so its expansion can be reused. The
/// result replaces `out`'s content (a buffer kept from chain to chain).
pub(super) fn merge_adjacent(list: &[u32], rules: &[Rule], out: &mut Vec<Merged>) {
    out.clear();
    for &p in list {
        let r = &rules[p as usize];
        if let Some(prev) = out.last_mut() {
            let last = match prev {
                Merged::Rule(q) => &rules[*q as usize],
                Merged::Joined(j) => &*j,
            };
            // One comment per ACL rule (ids are unique in a policy, and
            // [`super::twolevel`] makes one per rule), so equal comments
            // are the same one.
            let same_rule = match (&last.comment, &r.comment) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (a, b) => a == b,
            };
            if same_rule && last.action == r.action && last.matches.len() == r.matches.len() {
                // The positions where the two differ: none, one, or more
                // (the first two found are enough to tell).
                let mut diff = (0..r.matches.len()).filter(|&i| last.matches[i] != r.matches[i]);
                match (diff.next(), diff.next()) {
                    (None, _) => continue,
                    (Some(i), None) => {
                        if let Some(m) = join(&last.matches[i], &r.matches[i]) {
                            let mut joined = last.clone();
                            let mut matches = joined.matches.to_vec();
                            matches[i] = m;
                            joined.matches = matches.into();
                            *prev = Merged::Joined(joined);
                            continue;
                        }
                    }
                    _ => {}
                }
            }
        }
        out.push(Merged::Rule(p));
    }
}

/// A rule of [`merge_adjacent`]'s output.
pub(super) enum Merged {
    /// The rule at this position, unchanged.
    Rule(u32),
    /// Consecutive rules joined into one.
    Joined(Rule),
}

/// The most rules one region-chain rule may expand to (see [`expand`]).
pub const MAX_EXPANSION: usize = 32;

/// `r` with its multi-range value matches spelled out: one rule per
/// combination of ranges (at most [`MAX_EXPANSION`]), each a `cmp` or
/// `range`; beyond that, each multi-range match becomes a lookup in a
/// named set ([`value_set`]). Why: the kernel finds a named set by a linear
/// walk of the table's sets, once per rule that references it and once per
/// set created, so thousands of them make a commit quadratic (seconds at
/// 10k rules), while a few more rules in a small region chain cost a few
/// comparisons on the first packet of a flow only. The rules are appended
/// to `out`.
pub(super) fn expand(table: &mut Table, mut r: Rule, out: &mut Vec<Rule>) {
    let product = r.matches.iter().fold(1usize, |n, m| match m {
        Match::Ranges { ranges, .. } => n.saturating_mul(ranges.len()),
        _ => n,
    });
    if product == 1 {
        // Nothing to spell out: the rule as it is, its matches still shared.
        out.push(r);
        return;
    }
    if product <= MAX_EXPANSION {
        let mut all = vec![r];
        for i in 0..all[0].matches.len() {
            let Match::Ranges { field, ranges } = &all[0].matches[i] else {
                continue;
            };
            if ranges.len() < 2 {
                continue;
            }
            let (field, ranges) = (*field, ranges.clone());
            all = all
                .into_iter()
                .flat_map(|rule| {
                    ranges.iter().map(move |&range| {
                        let mut one = rule.clone();
                        let mut matches = one.matches.to_vec();
                        matches[i] = Match::Ranges {
                            field,
                            ranges: vec![range],
                        };
                        one.matches = matches.into();
                        one
                    })
                })
                .collect();
        }
        out.extend(all);
        return;
    }
    let matches: Vec<Match> = r
        .matches
        .iter()
        .map(|m| match m {
            Match::Ranges { field, ranges } if ranges.len() > 1 => Match::Lookup {
                key: vec![*field],
                set: value_set(table, *field, ranges),
                negate: false,
            },
            m => m.clone(),
        })
        .collect();
    r.matches = matches.into();
    out.push(r);
}

/// The named interval set holding `ranges` of `field` (created on first
/// use, named by a hash of its content, shared by every rule of the table
/// that needs it). Named, not anonymous: the kernel resolves an anonymous
/// set of a batch by walking the whole transaction, and allocates its
/// `__set%d` name by scanning every set, so thousands of them in one
/// commit are quadratic (minutes for a 10k-rule ACL).
fn value_set(table: &mut Table, field: Field, ranges: &[(u128, u128)]) -> String {
    let len = field.len();
    let elements: std::collections::BTreeMap<Key, Option<NftVerdict>> = ranges
        .iter()
        .map(|&(lo, hi)| (Key::one(KeyBytes::be(lo, len), KeyBytes::be(hi, len)), None))
        .collect();
    let mut h = FastHasher::default();
    ranges.hash(&mut h);
    let hash = h.finish();
    let tag = format!("{field:?}").to_lowercase();
    let mut name = format!("values_{tag}_{hash:016x}");
    let mut n = 0;
    while let Some(s) = table.sets.get(&name) {
        if s.key == [field] && s.elements == elements {
            return name;
        }
        n += 1;
        name = format!("values_{tag}_{hash:016x}_{n}");
    }
    let mut set = Set::new(&name, vec![field], true, SetKind::Set);
    set.elements = elements;
    table.add_set(set);
    name
}

/// What one build of a lead map's window makes as it goes.
/// `expansions`: the expansions ([`expand`]) of its rules, by position,
/// made when a chain first needs one (the same ACL rule sits in many region
/// chains, and its expansion depends on the rule alone; value sets are
/// found by content). `chains`: the region chains it adds (keyed by name,
/// as the table holds them), found by the hash of their rules and the
/// collision suffix (`index`), with their shared names, moved into the
/// table at the end ([`Made::finish`]): searching the table's
/// ordered map once per chain (~17k names sharing a long prefix at 10k
/// rules) cost more than the rest of making them. `in_table`: whether the
/// table already holds chains of this prefix (an earlier window), to be
/// searched as well.
pub(super) struct Made {
    prefix: String,
    /// [`merge_adjacent`]'s buffer.
    merged: Vec<Merged>,
    expansions: Vec<Option<Expansion>>,
    /// The chain being assembled: its rules and their digests.
    rules: Vec<Rule>,
    digests: Vec<u64>,
    chains: Vec<(String, Chain)>,
    /// Per chain: its name, shared by the verdicts entering it, and the
    /// hash of its rules.
    names: Vec<(Arc<str>, u64)>,
    index: HashMap<(u64, u32), u32, FastBuild>,
    in_table: bool,
}

impl Made {
    /// For chains named `<prefix>_<hash>`, about `regions` of them.
    pub fn new(table: &Table, prefix: &str, regions: usize) -> Self {
        let stem = format!("{prefix}_");
        let in_table = table
            .chains
            .range::<str, _>((Bound::Included(stem.as_str()), Bound::Unbounded))
            .next()
            .is_some_and(|(k, _)| k.starts_with(&stem));
        Self {
            prefix: prefix.to_owned(),
            merged: Vec::new(),
            expansions: Vec::new(),
            rules: Vec::new(),
            digests: Vec::new(),
            chains: Vec::with_capacity(regions),
            names: Vec::with_capacity(regions),
            index: HashMap::with_capacity_and_hasher(regions, FastBuild::default()),
            in_table,
        }
    }

    /// The buffer for [`merge_adjacent`] (empty), to be put back.
    pub fn take_merged(&mut self) -> Vec<Merged> {
        std::mem::take(&mut self.merged)
    }

    pub fn put_merged(&mut self, merged: Vec<Merged>) {
        self.merged = merged;
    }

    /// Adds rule `r` to the chain being assembled.
    pub fn push(&mut self, r: Rule) {
        self.digests.push(digest(&r));
        self.rules.push(r);
    }

    /// Adds rule `r`, expanded, to the chain being assembled.
    pub fn push_expanded(&mut self, table: &mut Table, r: Rule) {
        let start = self.rules.len();
        expand(table, r, &mut self.rules);
        self.digests.extend(self.rules[start..].iter().map(digest));
    }

    /// Adds the rule at position `p` of `rules`, expanded, to the chain
    /// being assembled (expansion and digests made on first use).
    pub fn push_position(&mut self, table: &mut Table, p: u32, rules: &[Rule]) {
        let p = p as usize;
        if self.expansions.len() <= p {
            self.expansions.resize(rules.len().max(p + 1), None);
        }
        let e = self.expansions[p].get_or_insert_with(|| {
            let r = &rules[p];
            if !r.matches.iter().any(spelled_out) {
                return Expansion::Plain(digest(r));
            }
            let mut e = Vec::new();
            expand(table, r.clone(), &mut e);
            let digests = e.iter().map(digest).collect();
            Expansion::Spelled(e, digests)
        });
        match e {
            Expansion::Plain(d) => {
                self.rules.push(rules[p].clone());
                self.digests.push(*d);
            }
            Expansion::Spelled(e, d) => {
                self.rules.extend_from_slice(e);
                self.digests.extend_from_slice(d);
            }
        }
    }

    /// The name of the chain holding the rules assembled (which it takes):
    /// `<prefix>_<hash of their digests>` (`_<n>` appended while the name
    /// is taken by other content), made unless it exists.
    pub fn chain(&mut self, table: &Table) -> Arc<str> {
        let mut h = FastHasher::default();
        h.write_usize(self.digests.len());
        for &d in &self.digests {
            h.write_u64(d);
        }
        self.digests.clear();
        let hash = h.finish();
        // Exactly as long as it needs to be.
        let rules: Vec<Rule> = self.rules.drain(..).collect();
        let mut n = 0u32;
        loop {
            if self.in_table {
                let name = chain_name(&self.prefix, hash, n);
                match table.chains.get(&name) {
                    Some(c) if c.rules == rules => return name.into(),
                    Some(_) => {
                        n += 1;
                        continue;
                    }
                    None => {}
                }
            }
            match self.index.get(&(hash, n)) {
                Some(&i) if self.chains[i as usize].1.rules == rules => {
                    return self.names[i as usize].0.clone();
                }
                Some(_) => n += 1,
                None => {
                    let name = chain_name(&self.prefix, hash, n);
                    let shared: Arc<str> = name.as_str().into();
                    self.index.insert((hash, n), self.chains.len() as u32);
                    self.names.push((shared.clone(), hash));
                    let chain = Chain {
                        name: name.clone(),
                        base: None,
                        rules,
                    };
                    self.chains.push((name, chain));
                    return shared;
                }
            }
        }
    }

    /// The chains made, by name, in name order. Names differ in their
    /// hash's fixed-width hex digits first, so the hash orders them (the
    /// names only on equal hashes); each chain is moved once.
    fn sorted(self) -> impl ExactSizeIterator<Item = (String, Chain)> {
        let mut order: Vec<(u64, u32)> = (self.names.iter())
            .zip(0..)
            .map(|((_, hash), i)| (*hash, i))
            .collect();
        let mut chains = self.chains;
        order.sort_unstable_by(|a, b| {
            (a.0.cmp(&b.0)).then_with(|| chains[a.1 as usize].0.cmp(&chains[b.1 as usize].0))
        });
        let mut out = Vec::with_capacity(order.len());
        for (_, i) in order {
            let empty = (String::new(), Chain::regular(String::new()));
            out.push(std::mem::replace(&mut chains[i as usize], empty));
        }
        out.into_iter()
    }

    /// Moves the chains made into `table`: in one ordered merge (which
    /// rewrites the whole map) when they are many, else one by one.
    pub fn finish(self, table: &mut Table) {
        let chains = self.sorted();
        if chains.len() * 16 < table.chains.len() {
            table.chains.extend(chains);
        } else {
            add_chains(table, chains.collect());
        }
    }

    /// Appends the chains made to `out` (by name), in name order.
    pub fn finish_into(self, out: &mut Vec<(String, Chain)>) {
        out.extend(self.sorted());
    }
}

/// Adds `chains` (by name; no name already in `table`) to `table` in one
/// ordered merge: a merge per segment would rewrite the table's whole map
/// each time. When the table holds few chains yet, they are the ones
/// inserted, into the new map.
pub(super) fn add_chains(table: &mut Table, mut chains: Vec<(String, Chain)>) {
    if chains.is_empty() {
        return;
    }
    // Segments come in name order, so this is mostly a check.
    if !chains.is_sorted_by(|a, b| a.0 < b.0) {
        chains.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    }
    let mut chains: BTreeMap<String, Chain> = chains.into_iter().collect();
    if table.chains.len() * 16 < chains.len() {
        std::mem::swap(&mut table.chains, &mut chains);
        table.chains.extend(chains);
    } else {
        table.chains.append(&mut chains);
    }
}

/// `<prefix>_<hash, 16 hex digits>`, then `_<n>` if `n` > 0.
fn chain_name(prefix: &str, hash: u64, n: u32) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut name = String::with_capacity(prefix.len() + 24);
    name.push_str(prefix);
    name.push('_');
    for i in (0..16).rev() {
        name.push(HEX[(hash >> (4 * i)) as usize & 0xf] as char);
    }
    if n > 0 {
        name.push('_');
        name.push_str(&n.to_string());
    }
    name
}

/// A rule's expansion ([`expand`]) and the digests of its rules.
#[derive(Clone)]
enum Expansion {
    /// Nothing to spell out: the rule itself.
    Plain(u64),
    Spelled(Vec<Rule>, Vec<u64>),
}

/// A rule's digest: the hash of its content. A chain is named by the hash
/// of its rules' digests, so each distinct rule's content is hashed once,
/// not once per chain it sits in.
fn digest(r: &Rule) -> u64 {
    let mut h = FastHasher::default();
    r.hash(&mut h);
    h.finish()
}

/// Whether `m` is a match [`expand`] spells out (several values).
fn spelled_out(m: &Match) -> bool {
    matches!(m, Match::Ranges { ranges, .. } if ranges.len() > 1)
}
