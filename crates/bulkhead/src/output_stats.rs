//! The `acl ls --stats` table: the `acl ls` columns plus packets and bytes
//! per enforcement point, one row per custom rule (in the endpoint's
//! order), then one per counted default rule and direction.
//!
//! A custom rule lives at one point (its rule type), so the other point's
//! cells are `-`; a default rule's cells are `-` at a point that does not
//! hold it (a nat endpoint has no switch port).

use std::collections::BTreeMap;

use bulkhead_api::{AclCounterInfo, AclStatsInfo};

use crate::output::{acl_row, table, ACL_HEADER};

/// `[host packets, host bytes, switch packets, switch bytes]` of the
/// counters matching `pick`, empty where the point has none.
fn cells<'a>(counters: impl Iterator<Item = &'a AclCounterInfo>) -> [String; 4] {
    let mut out: [String; 4] = Default::default();
    for c in counters {
        let i = if c.point == "switch" { 2 } else { 0 };
        let add = |cell: &mut String, v: u64| {
            *cell = (cell.parse::<u64>().unwrap_or(0) + v).to_string();
        };
        add(&mut out[i], c.packets);
        add(&mut out[i + 1], c.bytes);
    }
    out
}

pub fn acl_stats_table(s: &AclStatsInfo) -> String {
    let mut rows: Vec<Vec<String>> = s
        .acls
        .iter()
        .map(|a| {
            let counts = cells(
                s.counters
                    .iter()
                    .filter(|c| !c.default && c.rule == a.id && c.direction == a.direction),
            );
            let mut row = acl_row(a);
            row.extend(counts);
            row
        })
        .collect();
    let mut defaults: BTreeMap<(&str, &str), Vec<&AclCounterInfo>> = BTreeMap::new();
    for c in s.counters.iter().filter(|c| c.default) {
        defaults
            .entry((c.direction.as_str(), c.rule.as_str()))
            .or_default()
            .push(c);
    }
    for ((direction, rule), list) in defaults {
        let mut row = vec![rule.to_owned(), String::new(), direction.to_owned()];
        row.extend(std::iter::repeat_n(String::new(), 6));
        row.push("default".into());
        row.extend(cells(list.into_iter()));
        rows.push(row);
    }
    let mut header = ACL_HEADER.to_vec();
    header.extend([
        "HOST PACKETS",
        "HOST BYTES",
        "SWITCH PACKETS",
        "SWITCH BYTES",
    ]);
    table(&header, &rows)
}
