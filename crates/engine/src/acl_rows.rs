//! An endpoint's ACL rules as store rows of their own.
//!
//! Contract: the endpoint record (schema 2) is stored without its rules;
//! each rule is one [`AclRow`] in [`Kind::Acls`] under
//! `<endpoint id>/<rule id>`, so adding or removing one rule writes (and
//! logs in the commit log) one small row, not the record with every rule.
//! The rule order is the order of the rows' `seq`: the store revision of
//! the put that wrote the row, strictly increasing over the store's life,
//! so a rule added later sorts after every rule already stored and a
//! whole list written in order keeps its order. Every function here runs
//! inside the caller's write transaction: a record and its rows change
//! together or not at all.
//!
//! Endpoint records written before the split (schema 1, rules inside the
//! body) still open: [`load_endpoints`] takes their rules from the body
//! and names them, and [`migrate`] rewrites each as record plus rows in
//! one transaction (reconcile does both at start).

use std::collections::{BTreeMap, BTreeSet};

use bulkhead_model::{AclRule, Id};
use bulkhead_store::{Kind, Reader, Record, Result, WriteTxn};
use serde::{Deserialize, Serialize};

use crate::records::EndpointRecord;

/// One stored ACL rule of one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclRow {
    pub endpoint: Id,
    /// The rule's place in the endpoint's list (see the module doc).
    pub seq: u64,
    #[serde(flatten)]
    pub rule: AclRule,
}

impl Record for AclRow {
    const KIND: Kind = Kind::Acls;
    const SCHEMA: u32 = 1;
    fn key(&self) -> String {
        row_key(&self.endpoint, self.rule.id.as_str())
    }
}

fn row_key(endpoint: &Id, rule: &str) -> String {
    format!("{endpoint}/{rule}")
}

fn prefix(endpoint: &Id) -> String {
    format!("{endpoint}/")
}

/// Stores `record` and its rules as rows, replacing any rows stored for it.
/// The rules are taken out of the record for the record's own write (no
/// copy of them) and put back, also on error.
pub fn put_endpoint(t: &mut WriteTxn<'_>, record: &mut EndpointRecord) -> Result<()> {
    let rules = std::mem::take(&mut record.acls);
    let written = t.put(&*record);
    record.acls = rules;
    written?;
    put_rules(t, &record.id, &record.acls)
}

/// Replaces the stored rules of `endpoint` with `rules`, in their order.
pub fn put_rules(t: &mut WriteTxn<'_>, endpoint: &Id, rules: &[AclRule]) -> Result<()> {
    t.delete_prefix::<AclRow>(&prefix(endpoint))?;
    for rule in rules {
        put_rule(t, endpoint, rule)?;
    }
    Ok(())
}

/// Stores `rule` after every rule of `endpoint` stored so far.
pub fn put_rule(t: &mut WriteTxn<'_>, endpoint: &Id, rule: &AclRule) -> Result<()> {
    // The put below takes the next revision: the row carries it as `seq`.
    let seq = t.revision()? + 1;
    let row = AclRow {
        endpoint: *endpoint,
        seq,
        rule: rule.clone(),
    };
    let written = t.put(&row)?;
    debug_assert_eq!(written, seq, "a put takes the next revision");
    Ok(())
}

/// Removes the stored rule `rule` of `endpoint`; the row it was (to put
/// back as it was, place included), if there was one.
pub fn delete_rule(t: &mut WriteTxn<'_>, endpoint: &Id, rule: &str) -> Result<Option<AclRow>> {
    let key = row_key(endpoint, rule);
    let row = t.get::<AclRow>(&key)?;
    if row.is_some() {
        t.delete::<AclRow>(&key)?;
    }
    Ok(row)
}

/// Puts back a row [`delete_rule`] removed, at its old place.
pub fn restore_rule(t: &mut WriteTxn<'_>, row: &AclRow) -> Result<()> {
    t.put(row).map(|_| ())
}

/// Removes the record under `key` and all of its rows; whether the record
/// existed.
pub fn delete_endpoint(t: &mut WriteTxn<'_>, key: &str) -> Result<bool> {
    t.delete_prefix::<AclRow>(&format!("{key}/"))?;
    t.delete::<EndpointRecord>(key)
}

/// What [`load_endpoints`] found besides the records.
#[derive(Debug, Default)]
pub struct Stale {
    /// Endpoints whose rules were inside their record (schema 1): rewrite
    /// them as record plus rows.
    pub bodies: BTreeSet<Id>,
    /// Rows no stored endpoint owns (never written so; dropped).
    pub orphans: Vec<String>,
}

impl Stale {
    pub fn is_empty(&self) -> bool {
        self.bodies.is_empty() && self.orphans.is_empty()
    }
}

/// Every endpoint record with its rules, in key order, and what
/// [`migrate`] should rewrite.
pub fn load_endpoints(t: &impl Reader) -> Result<(Vec<EndpointRecord>, Stale)> {
    let mut records = t.list::<EndpointRecord>()?;
    let mut rows: BTreeMap<Id, Vec<AclRow>> = BTreeMap::new();
    for row in t.list::<AclRow>()? {
        rows.entry(row.endpoint).or_default().push(row);
    }
    let mut stale = Stale::default();
    for record in &mut records {
        let Some(mut own) = rows.remove(&record.id) else {
            if !record.acls.is_empty() {
                stale.bodies.insert(record.id);
            }
            continue;
        };
        own.sort_by_key(|r| r.seq);
        // A body with rules and rows at once is never written; the rows
        // are the newer layout, so they win.
        record.acls = own.into_iter().map(|r| r.rule).collect();
    }
    stale.orphans = rows
        .into_values()
        .flatten()
        .map(|r| r.key())
        .collect::<Vec<_>>();
    Ok((records, stale))
}

/// Rewrites what [`load_endpoints`] found stale, in `t`: the named
/// records (as loaded, with their rules) as record plus rows; orphan rows
/// removed.
pub fn migrate(t: &mut WriteTxn<'_>, records: &mut [EndpointRecord], stale: &Stale) -> Result<()> {
    for record in records.iter_mut().filter(|r| stale.bodies.contains(&r.id)) {
        put_endpoint(t, record)?;
    }
    for key in &stale.orphans {
        t.delete::<AclRow>(key)?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "acl_rows_tests.rs"]
mod tests;
