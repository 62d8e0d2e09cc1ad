//! The audit trail: each change made through the API, as a JSON entry per tenant (the
//! platform's own under the empty tenant) in time order, pruned past its retention.

use jiff::Timestamp;
use serde_json::Value;

use super::tree::remove_range;
use super::{Store, StoreResult, decode, keys};

impl Store {
    /// Keeps `entry`, made at `at`, in `tenant`'s trail; answers its place, an id that sorts by
    /// time (32 hex digits).
    pub fn keep_audit(&self, tenant: &str, at: Timestamp, entry: &Value) -> StoreResult<String> {
        let key = keys::audit(tenant, at, self.generate_id()?);
        self.audit.insert(&key, serde_json::to_vec(entry).expect("JSON"))?;
        Ok(crate::ids::hex(&key[tenant.len() + 1..]))
    }

    /// `tenant`'s entries newest first, with their places, from before the place `before`.
    pub fn audit_newest_first(
        &self,
        tenant: &str,
        before: Option<&[u8]>,
    ) -> impl Iterator<Item = StoreResult<(String, Value)>> + use<> {
        let start = keys::named(tenant, "");
        let end = match before {
            Some(place) => [&start[..], place].concat(),
            None => [tenant.as_bytes(), b"\x01"].concat(),
        };
        let skip = start.len();
        self.audit.range(start..end).rev().map(move |entry| {
            let (key, bytes) = entry?;
            Ok((crate::ids::hex(&key[skip..]), decode("audit entry", &bytes)?))
        })
    }

    /// Removes `tenant`'s entries made before `cutoff`; answers how many.
    pub fn prune_audit(&self, tenant: &str, cutoff: Timestamp) -> StoreResult<usize> {
        remove_range(&self.audit, &keys::named(tenant, ""), &keys::audit(tenant, cutoff, 0))
    }
}
