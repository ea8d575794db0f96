//! The two-level encoding of a segment whose rules constrain more than one
//! dimension: every map stays single-field (an rbtree in the kernel, never
//! a pipapo concatenation).
//!
//! ```text
//! <ep chain>  … meta nfproto ipv4 meta l4proto { … } ip saddr vmap @acl_<tag>_in_v4_ported_0
//!               goto acl_<tag>_in_v4_ported_0_next          # switch only: the rest of the ep chain
//! map acl_<tag>_in_v4_ported_0 { ip saddr, interval:
//!     10.0.0.0/24 : goto acl_<tag>_in_v4_ported_0_<hash>    # region → its rules (host: jump)
//!     10.1.0.7    : accept }                                # first rule decides alone
//! chain acl_<tag>_in_v4_ported_0_<hash>                     # shared by equal regions
//!     meta l4proto tcp th dport @values_dport_<hash> accept # covering rules, precedence order
//!     th dport 1000-2000 drop
//!     goto acl_<tag>_in_v4_ported_0_next                    # switch only: no rule matched
//! ```
//!
//! Segments whose rules constrain no address and that have at most
//! [`SMALL_PORT_MAP`] regions keep the one-map encoding.
//!
//! The lead dimension is the remote address (`ip saddr` in, `ip daddr`
//! out), else the local address, else the local port, else the remote port
//! — the first one the segment's rules constrain. Its axis is cut at every
//! rule's interval boundaries into disjoint regions; a region's rule list is
//! the segment's rules covering it, in precedence order, cut after the first
//! rule with no constraint beyond the lead (later rules are shadowed there),
//! without rules whose remaining matches repeat an earlier rule's of the
//! list (shadowed as well: if the earlier one did not match, neither does
//! this one).
//! Adjacent regions with equal lists are merged, empty ones left out (a miss
//! falls through to the `goto …_next` after the vmap rule). A list whose
//! first rule decides alone maps to the verdict itself; others `goto` a
//! chain named by a hash of its content, so regions with equal lists share
//! one chain and an unchanged list keeps its chain across compiles.
//!
//! At the switch, `goto`, not `jump`: its allow is `return` (leave the
//! endpoint chain), which must not land back in the endpoint chain; so the
//! region chain's fall-through is an explicit `goto` of the continuation
//! chain, which holds everything after the segment's vmap rule. In the
//! host firewall (allow is `accept`) region chains are entered with `jump`
//! and simply end: a miss returns to the endpoint chain after the vmap
//! rule, with no continuation chain, so region chains stay leaves of the
//! jump graph the kernel walks on every commit that adds a rule or a
//! `jump`/`goto` element.
//!
//! A remaining match on one value or one range is a `Ranges` match (`cmp`
//! or `range`). Several values are spelled out as one rule each (up to
//! [`MAX_EXPANSION`](super::region_rules::MAX_EXPANSION) rules per list rule, see [`region_rules`](super::region_rules));
//! beyond that they become a lookup in a named interval set
//! `values_<field>_<hash>`, shared by all rules with that value list.

use std::collections::HashMap;
use std::sync::Arc;

use bulkhead_model::{Direction, RuleId};

use super::lead_regions::Sweep;
use super::region_chains::{digest, Entered, Made};
use super::region_rules::spelled_out;
use super::Lowering;
use crate::boxes::{domain, Dim, FastBuild, RuleBox};
use crate::error::PolicyError;
use crate::ir::{
    counter_owner, Action, Chain, Key, KeyBytes, Match, RangeList, Rule, RuleBody, Table,
    Verdict as NftVerdict,
};
use crate::packet::Verdict;
use crate::regions::ProtoClass;

/// Segments whose rules constrain no address keep one (possibly
/// concatenated) map up to this many elements: a small pipapo set is cheap,
/// and a port ladder then changes by element operations only.
pub const SMALL_PORT_MAP: usize = 1024;

/// The lead dimension of a segment (`None`: keep one map — a single-field
/// key already, or no address and at most [`SMALL_PORT_MAP`] regions).
pub(super) fn lead_dim(direction: Direction, dims: &[Dim], regions: usize) -> Option<Dim> {
    if dims.len() < 2 {
        return None;
    }
    let order = match direction {
        Direction::In => [Dim::Saddr, Dim::Daddr, Dim::Dport, Dim::Sport],
        Direction::Out => [Dim::Daddr, Dim::Saddr, Dim::Sport, Dim::Dport],
    };
    let lead = order.into_iter().find(|d| dims.contains(d))?;
    let address = matches!(lead, Dim::Saddr | Dim::Daddr);
    (address || regions > SMALL_PORT_MAP).then_some(lead)
}

/// An endpoint chain cut into pieces: the head (the caller's chain) and
/// continuation chains, each ending in `goto` of the next.
#[derive(Default)]
pub(super) struct Pieces {
    pub current: Vec<Rule>,
    name: Option<String>,
}

impl Pieces {
    fn flush(&mut self, table: &mut Table, head: &mut Vec<Rule>) {
        let rules = std::mem::take(&mut self.current);
        match self.name.take() {
            None => head.extend(rules),
            Some(name) => table.add_chain(Chain {
                name: name.into(),
                base: None,
                rules,
            }),
        }
    }

    /// Ends the current piece with `goto next` and starts `next`.
    pub fn split(&mut self, table: &mut Table, head: &mut Vec<Rule>, next: String) {
        self.current.push(Rule::verdict(
            vec![],
            NftVerdict::Goto(next.as_str().into()),
        ));
        self.flush(table, head);
        self.name = Some(next);
    }

    pub fn finish(mut self, table: &mut Table, head: &mut Vec<Rule>) {
        self.flush(table, head);
    }
}

/// What a region's list enters: a verdict, or the chain made at this
/// index (named once all are made).
enum Target {
    Verdict(NftVerdict),
    Made(u32),
}

/// Elements (key order) and counter owners of a window of a lead map.
pub(super) type WindowElements = (Vec<(Key, Option<NftVerdict>)>, Vec<(Key, Arc<str>)>);

/// The rules a window considers: box indices and whether they decide
/// alone, by position; and the continuation chain's name, shared by every
/// `goto` of it. Their region-chain rules (built once: a chain's rules are
/// clones of these, sharing matches and comment, or the rule itself in its
/// last chain) go beside it, with how many chains still to be made use
/// each.
struct View<'a> {
    subset: &'a [u32],
    terminal: &'a [bool],
    next: Arc<str>,
}

pub(super) struct TwoLevel<'a> {
    pub boxes: &'a [RuleBox],
    pub winners: &'a [(RuleId, bulkhead_model::Action)],
    pub lead: Dim,
    pub v4: bool,
    pub class: ProtoClass,
    pub lowering: Lowering,
    /// Region chains are named `<prefix>_<hash>`.
    pub prefix: &'a str,
    /// The continuation chain.
    pub next: &'a str,
    /// The list's name in errors.
    pub acl: &'a str,
    /// A box to leave out (the segment without one of its rules, without
    /// copying the others).
    pub exclude: Option<usize>,
}

impl TwoLevel<'_> {
    /// The matches of rule `j` beyond the lead dimension (one allocation:
    /// the shared slice, sized before it is filled).
    fn rest(&self, j: usize) -> Arc<[Match]> {
        let b = &self.boxes[j];
        let mut dims = [Dim::Proto; 5];
        let mut n = 0;
        for d in Dim::ALL {
            if d != self.lead && b[d as usize].is_some() {
                dims[n] = d;
                n += 1;
            }
        }
        dims[..n]
            .iter()
            .map(|&d| {
                let ivs = b[d as usize].as_deref().unwrap_or_default();
                if d == Dim::Proto {
                    Match::L4Proto {
                        protos: ivs
                            .iter()
                            .flat_map(|&(lo, hi)| lo..=hi)
                            .map(|p| p as u8)
                            .collect(),
                        negate: false,
                    }
                } else {
                    Match::Ranges {
                        field: d.field(self.v4),
                        ranges: RangeList::from_slice(ivs),
                    }
                }
            })
            .collect()
    }

    fn verdict(&self, j: usize) -> NftVerdict {
        self.lowering.verdict(match self.winners[j].1 {
            bulkhead_model::Action::Allow => Verdict::Allow,
            bulkhead_model::Action::Block => Verdict::Block,
        })
    }

    /// The counter owner of rule `j` (its comment in region chains).
    fn owner(&self, j: usize) -> Arc<str> {
        counter_owner(self.winners[j].0.as_str())
    }

    /// The lead axis of this segment.
    pub fn axis(&self) -> (u128, u128) {
        let dom = domain(self.lead, self.v4, self.class);
        (dom[0].0, dom[dom.len() - 1].1)
    }

    /// The lead map's elements and their counter owners (the elements
    /// whose first rule decides alone); adds the region chains to `table`.
    /// The region chains go to `chains` (name order within the segment),
    /// for the caller to add to the table with those of its other segments
    /// in one ordered merge.
    pub fn build(
        &self,
        table: &mut Table,
        chains: &mut Vec<(Arc<str>, Chain)>,
    ) -> Result<super::Elements, PolicyError> {
        let ((out, owners), made) = self.window(table, self.axis())?;
        made.finish_into(chains);
        Ok((out.into_iter().collect(), owners.into_iter().collect()))
    }

    /// [`TwoLevel::build`] restricted to the lead interval `window`: the
    /// elements inside it (key order) and their owners, from the rules
    /// overlapping it only; the region chains they enter are added to
    /// `table` (or found there: equal content, equal name).
    pub fn build_in(
        &self,
        table: &mut Table,
        window: (u128, u128),
    ) -> Result<WindowElements, PolicyError> {
        let (elements, made) = self.window(table, window)?;
        made.finish(table);
        Ok(elements)
    }

    /// [`TwoLevel::build_in`] with the region chains still in [`Made`].
    fn window(
        &self,
        table: &mut Table,
        window: (u128, u128),
    ) -> Result<(WindowElements, Made), PolicyError> {
        let d = self.lead as usize;
        // A box's intervals lie on the axis: a window covering it keeps
        // every box, without reading their intervals.
        let (alo, ahi) = self.axis();
        let whole = window.0 <= alo && window.1 >= ahi;
        let subset: Vec<u32> = (0..self.boxes.len() as u32)
            .filter(|&j| self.exclude != Some(j as usize))
            .filter(|&j| {
                self.boxes[j as usize][d].as_ref().is_none_or(|ivs| {
                    whole && !ivs.is_empty()
                        || ivs.iter().any(|&(lo, hi)| lo <= window.1 && hi >= window.0)
                })
            })
            .collect();
        // Each rule's region-chain rule, made once, and what the build
        // reads of it, taken in the same pass while it is in cache: its
        // counter owner, whether it decides alone, the id of its remaining
        // matches (equal matches, equal id), and its digest when it has
        // nothing to spell out.
        let mut owners: Vec<Arc<str>> = Vec::with_capacity(subset.len());
        let mut rules: Vec<Rule> = Vec::with_capacity(subset.len());
        let mut terminal: Vec<bool> = Vec::with_capacity(subset.len());
        let mut rest_id: Vec<u32> = Vec::with_capacity(subset.len());
        let mut plain: Vec<Option<u64>> = Vec::with_capacity(subset.len());
        let mut ids: HashMap<Arc<[Match]>, u32, FastBuild> =
            HashMap::with_capacity_and_hasher(subset.len(), FastBuild::default());
        for &j in &subset {
            let (owner, matches) = (self.owner(j as usize), self.rest(j as usize));
            let n = ids.len() as u32;
            rest_id.push(*ids.entry(matches.clone()).or_insert(n));
            terminal.push(matches.is_empty());
            let rule = Rule::from(RuleBody {
                matches,
                counter: true,
                action: Action::Verdict(self.verdict(j as usize)),
                comment: Some(owner.clone()),
            });
            plain.push((!rule.matches.iter().any(spelled_out)).then(|| digest(&rule)));
            owners.push(owner);
            rules.push(rule);
        }
        drop(ids);
        let len = self.lead.field(self.v4).len();
        let regions = Sweep {
            boxes: self.boxes,
            lead: self.lead,
            acl: self.acl,
        }
        .regions(window, &subset, &terminal, &rest_id)?;
        // The distinct lists, in order of first appearance, and how many
        // chains each rule will sit in.
        let mut ids: HashMap<&[u32], u32, FastBuild> =
            HashMap::with_capacity_and_hasher(regions.spans.len(), FastBuild::default());
        let mut distinct: Vec<&[u32]> = Vec::with_capacity(regions.spans.len());
        let mut uses = vec![0u32; subset.len()];
        let list_ids: Vec<u32> = (regions.spans.iter())
            .map(|&(_, (s, e))| {
                let list = &regions.lists[s as usize..e as usize];
                *ids.entry(list).or_insert_with(|| {
                    if !terminal[list[0] as usize] {
                        for &p in list {
                            uses[p as usize] += 1;
                        }
                    }
                    distinct.push(list);
                    distinct.len() as u32 - 1
                })
            })
            .collect();
        let view = View {
            subset: &subset,
            terminal: &terminal,
            next: self.next.into(),
        };
        let mut made = Made::new(table, self.prefix, distinct.len(), plain);
        let targets: Vec<Target> = (distinct.iter())
            .map(|list| self.chain(table, list, &view, (&mut rules, &mut uses), &mut made))
            .collect();
        made.name_all();
        let mut verdicts: Vec<NftVerdict> = (targets.into_iter())
            .map(|t| match t {
                Target::Verdict(v) => v,
                Target::Made(i) => self.entering(made.name(i)),
            })
            .collect();
        // Each verdict moved into the last element entering it, not cloned
        // (most lists have one region).
        let mut left = vec![0u32; verdicts.len()];
        for &id in &list_ids {
            left[id as usize] += 1;
        }
        let mut out = Vec::with_capacity(regions.spans.len());
        let mut owned = Vec::with_capacity(regions.spans.len());
        for (&((lo, hi), (s, _)), &id) in regions.spans.iter().zip(&list_ids) {
            let first = regions.lists[s as usize] as usize;
            let key = Key::one(KeyBytes::be(lo, len), KeyBytes::be(hi, len));
            if terminal[first] {
                owned.push((key.clone(), owners[first].clone()));
            }
            let id = id as usize;
            left[id] -= 1;
            let verdict = match left[id] {
                0 => std::mem::replace(&mut verdicts[id], NftVerdict::Accept),
                _ => verdicts[id].clone(),
            };
            out.push((key, Some(verdict)));
        }
        Ok(((out, owned), made))
    }

    /// The verdict of a region: the first rule's own verdict if it decides
    /// alone, else `goto` the (shared) chain of its rules (once named, if
    /// made here).
    fn chain(
        &self,
        table: &mut Table,
        list: &[u32],
        view: &View<'_>,
        (rules, uses): (&mut [Rule], &mut [u32]),
        made: &mut Made,
    ) -> Target {
        let first = list[0] as usize;
        if view.terminal[first] {
            return Target::Verdict(self.verdict(view.subset[first] as usize));
        }
        for &p in list {
            made.note_position(table, p, rules, uses);
        }
        if self.lowering.continuation && !view.terminal[*list.last().unwrap_or(&0) as usize] {
            let next = Rule::verdict(vec![], NftVerdict::Goto(view.next.clone()));
            made.note_rule(table, next);
        }
        match made.chain(table, rules) {
            Entered::Table(name) => Target::Verdict(self.entering(name)),
            Entered::Made(i) => Target::Made(i),
        }
    }

    /// The verdict entering region chain `name`.
    fn entering(&self, name: Arc<str>) -> NftVerdict {
        if self.lowering.continuation {
            NftVerdict::Goto(name)
        } else {
            NftVerdict::Jump(name)
        }
    }
}
