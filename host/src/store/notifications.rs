//! Notifications outside transactions (they are made inside one, through `Tx`).

use super::{Store, StoreResult, decode, keys};
use crate::records::notification::Notification;

impl Store {
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
