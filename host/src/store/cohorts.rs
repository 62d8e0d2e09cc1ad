//! Cohorts' members outside transactions (a judgement changes them through `Tx`).

use jiff::Timestamp;
use serde::Serialize;

use super::{Store, StoreResult, decode, keys, removal, transaction};

impl Store {
    /// Writes a cohort's new definition (or, with none, deletes it) and removes the members of
    /// the old one, in one transaction.
    pub fn replace_cohort<T: Serialize>(&self, tenant: &str, id: &str, cohort: Option<&T>) -> StoreResult<()> {
        let members = removal(&self.cohort_members, &keys::rule_prefix(tenant, id))?;
        let key = keys::record(tenant, id);
        let bytes = cohort.map(|c| serde_json::to_vec(c).expect("cohorts serialize"));
        transaction(&[&self.cohorts.0, &self.cohort_members], |t| {
            match &bytes {
                Some(bytes) => t[0].insert(&key, bytes)?,
                None => drop(t[0].remove(&key)?),
            }
            t[1].remove_all(&members)
        })
    }

    /// How many members a cohort has.
    pub fn cohort_member_count(&self, tenant: &str, cohort: &str) -> usize {
        self.cohort_members.scan_prefix(keys::rule_prefix(tenant, cohort)).keys().count()
    }

    /// Up to `limit` of a cohort's members in customer id order, after the customer `after`,
    /// with when each entered.
    pub fn cohort_members(
        &self,
        tenant: &str,
        cohort: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<(String, Timestamp)>> {
        let prefix = keys::rule_prefix(tenant, cohort);
        let start = match after {
            Some(after) => [&keys::alert(tenant, cohort, after)[..], b"\0"].concat(),
            None => prefix.clone(),
        };
        self.cohort_members
            .range(start..)
            .take_while(|entry| entry.as_ref().map_or(true, |(key, _)| key.starts_with(&prefix)))
            .take(limit)
            .map(|entry| {
                let (key, since) = entry?;
                Ok((String::from_utf8_lossy(&key[prefix.len()..]).into_owned(), decode("member", &since)?))
            })
            .collect()
    }
}
