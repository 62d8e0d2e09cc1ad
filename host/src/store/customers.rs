//! A tenant's customers outside transactions (a transaction reads and writes them through `Tx`).

use serde::de::DeserializeOwned;

use super::backend::Bytes;
use super::{Store, StoreResult, decode, keys};

impl Store {
    pub fn customer<T: DeserializeOwned>(&self, tenant: &str, id: &str) -> StoreResult<Option<T>> {
        let key = keys::record(tenant, id);
        self.customers.get(&key)?.map(|bytes| decode(&key, &bytes)).transpose()
    }

    /// Up to `limit` customers in id order, after the id `after`.
    pub fn customers<T: DeserializeOwned>(
        &self,
        tenant: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<T>> {
        self.customer_page(tenant, after, limit)
            .map(|entry| {
                let (key, bytes) = entry?;
                decode(&String::from_utf8_lossy(&key), &bytes)
            })
            .collect()
    }

    /// Up to `limit` customer ids in order, after the id `after`.
    pub fn customer_ids(&self, tenant: &str, after: Option<&str>, limit: usize) -> StoreResult<Vec<String>> {
        let prefix_len = keys::record(tenant, "").len();
        self.customer_page(tenant, after, limit)
            .map(|entry| Ok(String::from_utf8_lossy(&entry?.0[prefix_len..]).into_owned()))
            .collect()
    }

    fn customer_page(
        &self,
        tenant: &str,
        after: Option<&str>,
        limit: usize,
    ) -> impl Iterator<Item = StoreResult<(Bytes, Bytes)>> {
        let prefix = keys::record(tenant, "");
        // The smallest key above `after`'s.
        let start = after.map_or_else(|| prefix.clone(), |after| format!("{prefix}{after}\0"));
        self.customers
            .range(start..)
            .take_while(move |entry| entry.as_ref().map_or(true, |(k, _)| k.starts_with(prefix.as_bytes())))
            .take(limit)
    }
}
