//! Notifications outside transactions (they are made inside one, through `Tx`).

use super::{Store, StoreResult, abort, decode, keys, suffixes, transaction};
use crate::records::notification::{Notification, OpenBatch};

impl Store {
    /// Closes the batch a channel collects under `key` when `notification` is its notification
    /// (what is held from now on opens a new one); answers the ids of the notifications it
    /// collected, oldest first. Closing twice answers the same.
    pub fn close_batch(&self, tenant: &str, channel: &str, key: &str, notification: &str) -> StoreResult<Vec<String>> {
        let batch_key = keys::alert(tenant, channel, key);
        transaction(&[&self.batches], |t| {
            let Some(bytes) = t[0].get(&batch_key)? else { return Ok(()) };
            let open: OpenBatch = decode("batch", &bytes).map_err(abort)?;
            if open.notification == notification {
                t[0].remove(&batch_key)?;
            }
            Ok(())
        })?;
        suffixes(&self.batch_members, &keys::rule_prefix(tenant, notification))
    }

    pub fn notification(&self, tenant: &str, id: &str) -> StoreResult<Option<Notification>> {
        let Some(bytes) = self.notifications.get(keys::named(tenant, id))? else { return Ok(None) };
        decode(id, &bytes).map(Some)
    }

    /// The tenant's notifications from the newest on (before the id `before`, when given), read
    /// as the caller goes (ids sort by time).
    pub fn notifications_newest_first(
        &self,
        tenant: &str,
        before: Option<&str>,
    ) -> impl Iterator<Item = StoreResult<Notification>> + use<> {
        let start = keys::named(tenant, "");
        let end = match before {
            Some(before) => keys::named(tenant, before),
            // Past every key of the tenant: its separator, plus one.
            None => [tenant.as_bytes(), b"\x01"].concat(),
        };
        self.notifications.range(start..end).rev().map(|entry| {
            let (_, bytes) = entry?;
            decode("notification", &bytes)
        })
    }
}
