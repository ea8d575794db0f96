//! Reading rule and element counters back from the kernel, in-process.
//!
//! Contract: [`read`] dumps one table's rules (one netlink dump) and the
//! elements of the named sets (one dump each) and returns every counter it
//! can attribute, never a made-up one: a counted rule by its comment (the
//! compiler names each counted rule: `acl:<id>` or a default rule's name),
//! a counted element by the owner the IR gives its key
//! ([`bulkhead_policy::ir::Set::owners`]), matched on the start key the
//! lowering gives that element. Rules without comment or counter, elements
//! without owner (they enter a region chain, whose rules count), and
//! elements the IR does not know (a table changed behind our back) are
//! left out. Nothing is written: reading never resets a counter.

use std::collections::HashMap;

use bulkhead_policy::ir;

use crate::lower::{encode, lower_family, LowerError};
use crate::nft::{self, NftSocket};

/// One counter: where it lives (a chain or a set), whose it is, and what
/// it counted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Counted {
    /// The chain (rules) or the set (elements) holding the counter.
    pub object: String,
    /// `acl:<id>` or a default rule's name.
    pub owner: String,
    pub packets: u64,
    pub bytes: u64,
}

/// The counters of one table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TableCounters {
    /// Counted rules with a comment, in chain order.
    pub rules: Vec<Counted>,
    /// Owned elements of the requested sets.
    pub elements: Vec<Counted>,
}

#[derive(Debug, thiserror::Error)]
pub enum CountersError {
    #[error(transparent)]
    Nft(#[from] nft::Error),
    #[error(transparent)]
    Lower(#[from] LowerError),
}

/// The kernel start key of each owned element of `set`, and its owner.
fn owned_keys(set: &ir::Set) -> Result<HashMap<Vec<u8>, &str>, LowerError> {
    let mut out = HashMap::with_capacity(set.owners.len());
    for (key, owner) in &set.owners {
        let Some(v) = set.elements.get(key) else {
            continue;
        };
        if let Some(first) = encode(set, std::iter::once((key, v)))?.into_iter().next() {
            out.insert(first.key, &**owner);
        }
    }
    Ok(out)
}

/// The counters of `table` (as programmed) in the namespace of `sock`: all
/// its counted rules, and the owned elements of `sets`.
pub fn read(
    sock: &mut NftSocket,
    table: &ir::Table,
    sets: &[String],
) -> Result<TableCounters, CountersError> {
    let t = nft::Table::new(lower_family(table.family), &table.name);
    let mut out = TableCounters::default();
    for r in sock.list_rules(&t, None)? {
        if let (Some((packets, bytes)), Some(owner)) = (r.counter(), r.comment()) {
            out.rules.push(Counted {
                object: r.chain,
                owner,
                packets,
                bytes,
            });
        }
    }
    for name in sets {
        let Some(set) = table.sets.get(name).filter(|s| s.counter) else {
            continue;
        };
        let owners = owned_keys(set)?;
        if owners.is_empty() {
            continue;
        }
        for e in sock.list_elements(&t, name)? {
            if e.interval_end {
                continue;
            }
            if let (Some((packets, bytes)), Some(owner)) = (e.counter, owners.get(&e.key)) {
                out.elements.push(Counted {
                    object: name.clone(),
                    owner: (*owner).to_owned(),
                    packets,
                    bytes,
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::lower::comment_userdata;
    use crate::nft::userdata_comment;

    #[test]
    fn comments_read_back_as_written() {
        for c in ["acl:rule-1", "stateful", ""] {
            assert_eq!(userdata_comment(&comment_userdata(c)).as_deref(), Some(c));
        }
        assert_eq!(userdata_comment(&[1, 2, 0, 0]), None, "no comment TLV");
        assert_eq!(userdata_comment(&[0, 9, b'x']), None, "truncated TLV");
    }
}
