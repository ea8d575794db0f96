//! The region chains one build of a lead map's window makes ([`Made`]):
//! each region's rules assembled (every ACL rule's expansion made once and
//! reused), the chain found or added by the hash of its rules' digests and
//! named by it, and the chains moved into the table in name order, in one
//! ordered merge ([`add_chains`]).

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::ops::Bound;
use std::sync::Arc;

use super::region_rules::expand;
use crate::boxes::{FastBuild, FastHasher};
use crate::ir::{Chain, Rule, Table, Verdict};

/// What one build of a lead map's window makes as it goes.
/// `expansions`: the expansions ([`expand`]) of its rules and their
/// digests, by position, made when a chain first needs one (the same ACL
/// rule sits in many region chains, and its expansion depends on the rule
/// alone; value sets are found by content). `chains`: the region chains it
/// adds (keyed by name, as the table holds them), found by the hash of
/// their rules and the collision suffix (`index`), with their shared
/// names, moved into the table at the end ([`Made::finish`]): searching the
/// table's ordered map once per chain (~17k names sharing a long prefix at
/// 10k rules) cost more than the rest of making them. `in_table`: whether
/// the table already holds chains of this prefix (an earlier window), to
/// be searched as well.
///
/// A chain is assembled in two steps: its parts are noted with their
/// digests ([`Made::note_position`], [`Made::note_rule`]), then
/// [`Made::chain`] finds it by their hash, and only a chain not found is
/// made, its rules cloned (or moved, on their last use) straight into a
/// vector of its exact size.
pub(super) struct Made {
    prefix: String,
    expansions: Vec<Option<Expansion>>,
    /// By position: the digest of a rule with nothing to spell out.
    plain: Vec<Option<u64>>,
    /// What a rule moved into its last chain leaves behind.
    placeholder: Rule,
    /// The chain being assembled: its parts, the rules of its parts that
    /// are not positions (in order), and the digests of all its rules.
    parts: Vec<Part>,
    own: Vec<Rule>,
    digests: Vec<u64>,
    /// Per chain: its rules, and the hash of its rules and the collision
    /// suffix of its name. The names ([`Made::name_all`]) and the chains are
    /// made at the end, in name order (so the table's map, built from
    /// them, compares names laid out in order).
    chains: Vec<Vec<Rule>>,
    keys: Vec<(u64, u32)>,
    /// The chains' shared names in name order, the chain at each place
    /// of that order, and each chain's place.
    names: Vec<Arc<str>>,
    order: Vec<u32>,
    rank: Vec<u32>,
    index: HashMap<(u64, u32), u32, FastBuild>,
    in_table: bool,
}

/// The chain [`Made::chain`] found or made.
pub(super) enum Entered {
    /// The table's chain of this name.
    Table(Arc<str>),
    /// The chain made here at this index (see [`Made::name`]).
    Made(u32),
}

/// A part of the chain being assembled.
#[derive(Clone, Copy)]
enum Part {
    /// The expansion of the rule at this position.
    Position(u32),
    /// This many rules of [`Made::own`].
    Own(u32),
}

impl Made {
    /// For chains named `<prefix>_<hash>`, at most `regions` of them.
    /// `plain`: by position, the digest of each rule that has nothing to
    /// spell out (its expansion is itself), `None` for the others.
    pub fn new(table: &Table, prefix: &str, regions: usize, plain: Vec<Option<u64>>) -> Self {
        let stem = format!("{prefix}_");
        let in_table = table
            .chains
            .range::<str, _>((Bound::Included(stem.as_str()), Bound::Unbounded))
            .next()
            .is_some_and(|(k, _)| k.starts_with(&stem));
        Self {
            prefix: prefix.to_owned(),
            expansions: Vec::new(),
            plain,
            placeholder: Rule::verdict(Vec::new(), Verdict::Accept),
            parts: Vec::new(),
            own: Vec::new(),
            digests: Vec::new(),
            chains: Vec::with_capacity(regions),
            keys: Vec::with_capacity(regions),
            names: Vec::new(),
            order: Vec::new(),
            rank: Vec::new(),
            index: HashMap::with_capacity_and_hasher(regions, FastBuild::default()),
            in_table,
        }
    }

    /// Notes rule `r`, expanded, as the next part of the chain being
    /// assembled.
    pub fn note_rule(&mut self, table: &mut Table, r: Rule) {
        let start = self.own.len();
        expand(table, r, &mut self.own);
        self.digests.extend(self.own[start..].iter().map(digest));
        self.parts.push(Part::Own((self.own.len() - start) as u32));
    }

    /// Notes the rule at position `p` of `rules`, expanded, as the next
    /// part of the chain being assembled, and counts it down in `uses`. On
    /// its last use the rule, or its expansion, is moved into the chain
    /// rather than cloned (most rules sit in one chain), leaving a
    /// placeholder; on others its expansion and digests are kept for the
    /// next chains (made on first use).
    pub fn note_position(
        &mut self,
        table: &mut Table,
        p: u32,
        rules: &mut [Rule],
        uses: &mut [u32],
    ) {
        let at = p as usize;
        uses[at] -= 1;
        if uses[at] == 0 {
            let start = self.own.len();
            match self.expansions.get_mut(at).and_then(Option::take) {
                Some(Expansion::Plain(d)) => {
                    self.own
                        .push(std::mem::replace(&mut rules[at], self.placeholder.clone()));
                    self.digests.push(d);
                }
                Some(Expansion::Spelled(mut e, d)) => {
                    self.own.append(&mut e);
                    self.digests.extend_from_slice(&d);
                }
                None => {
                    let r = std::mem::replace(&mut rules[at], self.placeholder.clone());
                    match self.plain.get(at).copied().flatten() {
                        Some(d) => {
                            self.own.push(r);
                            self.digests.push(d);
                        }
                        None => {
                            expand(table, r, &mut self.own);
                            self.digests.extend(self.own[start..].iter().map(digest));
                        }
                    }
                }
            }
            self.parts.push(Part::Own((self.own.len() - start) as u32));
            return;
        }
        if self.expansions.len() <= at {
            self.expansions.resize(rules.len().max(at + 1), None);
        }
        let plain = self.plain.get(at).copied().flatten();
        let e = self.expansions[at].get_or_insert_with(|| {
            if let Some(d) = plain {
                return Expansion::Plain(d);
            }
            let r = &rules[at];
            let mut e = Vec::new();
            expand(table, r.clone(), &mut e);
            let d = e.iter().map(digest).collect();
            Expansion::Spelled(e, d)
        });
        match e {
            Expansion::Plain(d) => self.digests.push(*d),
            Expansion::Spelled(_, d) => self.digests.extend_from_slice(d),
        }
        self.parts.push(Part::Position(p));
    }

    /// The chain holding the rules noted, made unless it exists, named
    /// `<prefix>_<hash of their digests>` (`_<n>` appended while the name
    /// is taken by other content): one of the table's, or one made here
    /// (named by [`Made::name_all`] once all are made).
    pub fn chain(&mut self, table: &Table, rules: &[Rule]) -> Entered {
        let mut h = FastHasher::default();
        h.write_usize(self.digests.len());
        for &d in &self.digests {
            h.write_u64(d);
        }
        let len = self.digests.len();
        self.digests.clear();
        let hash = h.finish();
        let mut n = 0u32;
        let found = loop {
            if self.in_table {
                let name = chain_name(&self.prefix, hash, n);
                match table.chains.get_key_value(name.as_str()) {
                    Some((k, c)) if self.holds(&c.rules, len, rules) => {
                        break Some(Entered::Table(k.clone()))
                    }
                    Some(_) => {
                        n += 1;
                        continue;
                    }
                    None => {}
                }
            }
            match self.index.get(&(hash, n)) {
                Some(&i) if self.holds(&self.chains[i as usize], len, rules) => {
                    break Some(Entered::Made(i));
                }
                Some(_) => n += 1,
                None => break None,
            }
        };
        if let Some(entered) = found {
            self.parts.clear();
            self.own.clear();
            return entered;
        }
        let rules = self.assemble(len, rules);
        let i = self.chains.len() as u32;
        self.index.insert((hash, n), i);
        self.keys.push((hash, n));
        self.chains.push(rules);
        Entered::Made(i)
    }

    /// Names the chains made (once all are made), in name order. Names
    /// differ in their hash's fixed-width hex digits first, so the hash
    /// orders them, then the suffix, as a string.
    pub fn name_all(&mut self) {
        if self.names.len() < self.chains.len() {
            // Sorted as plain tuples (hash, suffix, chain): a suffix orders
            // as its number, which is its string order below 10 (a tenth
            // chain sharing one 64-bit hash does not happen; the order is
            // only the map's build order, never its content).
            let mut order: Vec<(u64, u32, u32)> = (self.keys.iter())
                .zip(0..)
                .map(|(&(hash, n), i)| (hash, n, i))
                .collect();
            order.sort_unstable();
            self.rank = vec![0; order.len()];
            self.names = Vec::with_capacity(order.len());
            self.order = Vec::with_capacity(order.len());
            let mut buf = String::with_capacity(self.prefix.len() + 24);
            for (at, &(hash, n, i)) in order.iter().enumerate() {
                self.rank[i as usize] = at as u32;
                write_chain_name(&mut buf, &self.prefix, hash, n);
                self.names.push(Arc::from(buf.as_str()));
                self.order.push(i);
            }
        }
    }

    /// The shared name of the chain made at index `i` (after
    /// [`Made::name_all`]).
    pub fn name(&self, i: u32) -> Arc<str> {
        self.names[self.rank[i as usize] as usize].clone()
    }

    /// Whether `chain` holds exactly the `len` rules noted.
    fn holds(&self, chain: &[Rule], len: usize, rules: &[Rule]) -> bool {
        if chain.len() != len {
            return false;
        }
        let (mut at, mut own) = (0, 0);
        for part in &self.parts {
            let slice: &[Rule] = match *part {
                Part::Position(p) => match &self.expansions[p as usize] {
                    Some(Expansion::Spelled(e, _)) => e,
                    _ => std::slice::from_ref(&rules[p as usize]),
                },
                Part::Own(k) => {
                    own += k as usize;
                    &self.own[own - k as usize..own]
                }
            };
            if chain[at..at + slice.len()] != *slice {
                return false;
            }
            at += slice.len();
        }
        true
    }

    /// The `len` rules noted, in a vector of exactly that size (the parts
    /// taken: rules at positions cloned, the others moved).
    fn assemble(&mut self, len: usize, rules: &[Rule]) -> Vec<Rule> {
        let mut out = Vec::with_capacity(len);
        let mut own = self.own.drain(..);
        for part in self.parts.drain(..) {
            match part {
                Part::Own(k) => out.extend(own.by_ref().take(k as usize)),
                Part::Position(p) => match &self.expansions[p as usize] {
                    Some(Expansion::Spelled(e, _)) => out.extend_from_slice(e),
                    _ => out.push(rules[p as usize].clone()),
                },
            }
        }
        out
    }

    /// The chains made, by name, in name order; each chain's rules are
    /// moved once.
    fn sorted(mut self) -> Vec<(Arc<str>, Chain)> {
        self.name_all();
        let mut chains = self.chains;
        let mut out = Vec::with_capacity(self.order.len());
        for (&i, name) in self.order.iter().zip(self.names) {
            let chain = Chain {
                name: name.clone(),
                base: None,
                rules: std::mem::take(&mut chains[i as usize]),
            };
            out.push((name, chain));
        }
        out
    }

    /// Moves the chains made into `table`: in one ordered merge (which
    /// rewrites the whole map) when they are many, else one by one.
    pub fn finish(self, table: &mut Table) {
        let chains = self.sorted();
        if chains.len() * 16 < table.chains.len() {
            table.chains.extend(chains);
        } else {
            add_chains(table, chains);
        }
    }

    /// Appends the chains made to `out` (by name), in name order.
    pub fn finish_into(self, out: &mut Vec<(Arc<str>, Chain)>) {
        if out.is_empty() {
            *out = self.sorted();
        } else {
            out.extend(self.sorted());
        }
    }
}

/// Adds `chains` (by name; no name already in `table`) to `table` in one
/// ordered merge: a merge per segment would rewrite the table's whole map
/// each time. When the table holds few chains yet, they are the ones
/// inserted, into the new map.
pub(super) fn add_chains(table: &mut Table, chains: Vec<(Arc<str>, Chain)>) {
    if chains.is_empty() {
        return;
    }
    // Segments come in name order: the map's stable sort finds one run.
    let mut chains: BTreeMap<Arc<str>, Chain> = chains.into_iter().collect();
    if table.chains.len() * 16 < chains.len() {
        std::mem::swap(&mut table.chains, &mut chains);
        table.chains.extend(chains);
    } else {
        table.chains.append(&mut chains);
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// `<prefix>_<hash, 16 hex digits>`, then `_<n>` if `n` > 0.
fn chain_name(prefix: &str, hash: u64, n: u32) -> String {
    let mut name = String::with_capacity(prefix.len() + 24);
    write_chain_name(&mut name, prefix, hash, n);
    name
}

/// [`chain_name`] written into `buf` (cleared first): the names of one
/// build share one buffer, each then copied into its shared `Arc`.
fn write_chain_name(buf: &mut String, prefix: &str, hash: u64, n: u32) {
    buf.clear();
    let mut hex = [0u8; 16];
    for (i, b) in hex.iter_mut().enumerate() {
        *b = HEX[(hash >> (4 * (15 - i))) as usize & 0xf];
    }
    buf.push_str(prefix);
    buf.push('_');
    buf.push_str(std::str::from_utf8(&hex).unwrap_or_default());
    if n > 0 {
        buf.push('_');
        buf.push_str(&n.to_string());
    }
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
pub(super) fn digest(r: &Rule) -> u64 {
    let mut h = FastHasher::default();
    r.hash(&mut h);
    h.finish()
}
