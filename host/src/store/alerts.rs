//! Alerts, their counts and their history outside transactions (an evaluation changes them
//! through `Tx`).

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Store, StoreResult, corrupt, decode, keys, removal, transaction};

impl Store {
    /// The scope keys of a rule's alerts, in order, at most `limit`.
    pub fn scope_keys(&self, tenant: &str, rule: &str, limit: usize) -> StoreResult<Vec<String>> {
        self.alerts_of(tenant, rule).take(limit).map(|alert| alert.map(|(scope, _)| scope)).collect()
    }

    /// A rule's alerts as stored (record and series, encoded by their owner), by scope key.
    pub fn alerts_of(&self, tenant: &str, rule: &str) -> impl Iterator<Item = StoreResult<(String, Vec<u8>)>> + use<> {
        let prefix = keys::rule_prefix(tenant, rule);
        self.alerts.scan_prefix(&prefix).map(move |entry| {
            let (key, bytes) = entry?;
            Ok((String::from_utf8_lossy(&key[prefix.len()..]).into_owned(), bytes))
        })
    }

    /// Every alert of every tenant as stored, with its tenant and rule.
    pub fn every_alert(&self) -> impl Iterator<Item = StoreResult<(String, String, Vec<u8>)>> + use<> {
        self.alerts.iter().map(|entry| {
            let (key, bytes) = entry?;
            let (tenant, rule, _) = keys::parse_alert(&key).ok_or_else(|| corrupt(&key, "an alert key"))?;
            Ok((tenant.to_string(), rule.to_string(), bytes))
        })
    }

    /// A rule's history, newest first.
    pub fn transitions_newest_first<T: DeserializeOwned>(
        &self,
        tenant: &str,
        rule: &str,
    ) -> impl Iterator<Item = StoreResult<T>> + use<T> {
        self.transitions.scan_prefix(keys::rule_prefix(tenant, rule)).rev().map(|entry| {
            let (_, bytes) = entry?;
            decode("transition", &bytes)
        })
    }

    /// How many of a rule's alerts stand where.
    pub fn alert_counts<T: DeserializeOwned>(&self, tenant: &str, rule: &str) -> StoreResult<Option<T>> {
        self.alert_counts.get(keys::rule_prefix(tenant, rule))?.map(|bytes| decode("alert counts", &bytes)).transpose()
    }

    /// How many of each of a tenant's rules' alerts stand where, rule by rule.
    pub fn tenant_alert_counts<T: DeserializeOwned>(&self, tenant: &str) -> StoreResult<Vec<T>> {
        self.alert_counts.scan_prefix(keys::named(tenant, "")).map(|entry| decode("alert counts", &entry?.1)).collect()
    }

    pub fn put_alert_counts<T: Serialize>(&self, tenant: &str, rule: &str, counts: &T) -> StoreResult<()> {
        let bytes = serde_json::to_vec(counts).expect("counts serialize");
        self.alert_counts.insert(keys::rule_prefix(tenant, rule), bytes)?;
        Ok(())
    }

    /// Whether alerts are stored without any counts (a data folder from before counts were
    /// kept).
    pub fn alert_counts_missing(&self) -> StoreResult<bool> {
        Ok(self.alert_counts.is_empty()? && !self.alerts.is_empty()?)
    }

    /// Removes a rule's alerts, their counts and the cohort changes waiting for its batch, and
    /// with `history` its transitions too, in one transaction.
    pub fn forget_rule(&self, tenant: &str, rule: &str, history: bool) -> StoreResult<()> {
        let prefix = keys::rule_prefix(tenant, rule);
        let (alerts, batches) = (removal(&self.alerts, &prefix)?, removal(&self.cohort_batches, &prefix)?);
        let transitions = if history { removal(&self.transitions, &prefix)? } else { Vec::new() };
        transaction(&[&self.alerts, &self.alert_counts, &self.cohort_batches, &self.transitions], |t| {
            t[0].remove_all(&alerts)?;
            t[1].remove(&prefix)?;
            t[2].remove_all(&batches)?;
            t[3].remove_all(&transitions)
        })
    }
}
