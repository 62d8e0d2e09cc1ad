//! Status pages: one per tenant, each reachable by a slug unique across tenants.

use super::{Store, StoreResult, decode, transaction};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub(super) fn page_key(tenant: &str) -> String {
    format!("tenant/{tenant}")
}

pub(super) fn slug_key(slug: &str) -> String {
    format!("slug/{slug}")
}

impl Store {
    /// The tenant's page, if it has one.
    pub fn status_page<T: DeserializeOwned>(&self, tenant: &str) -> StoreResult<Option<T>> {
        let key = page_key(tenant);
        self.status_pages.get(&key)?.map(|bytes| decode(&key, &bytes)).transpose()
    }

    /// The tenant owning a slug and its page, enabled or not.
    pub fn status_page_by_slug<T: DeserializeOwned>(&self, slug: &str) -> StoreResult<Option<(String, T)>> {
        let Some(tenant) = self.status_pages.get(slug_key(slug))? else { return Ok(None) };
        let tenant = String::from_utf8_lossy(&tenant).into_owned();
        Ok(self.status_page(&tenant)?.map(|page| (tenant, page)))
    }

    /// Writes the tenant's page under `slug`, taking the slug and freeing the one it had, in one
    /// transaction; answers `Err(slug)` when another tenant's page has the slug.
    pub fn put_status_page<T: Serialize>(&self, tenant: &str, slug: &str, page: &T) -> StoreResult<Result<(), String>> {
        // The slugs the tenant holds now (one, unless it has no page).
        let mut held = Vec::new();
        for entry in self.status_pages.scan_prefix("slug/") {
            let (key, owner) = entry?;
            if owner == tenant.as_bytes() && key != slug_key(slug).as_bytes() {
                held.push(key);
            }
        }
        let bytes = serde_json::to_vec(page).expect("pages serialize");
        transaction(&[&self.status_pages], |t| {
            if t[0].get(slug_key(slug))?.is_some_and(|owner| owner != tenant.as_bytes()) {
                return Ok(Err(slug.to_string()));
            }
            t[0].remove_all(&held)?;
            t[0].insert(slug_key(slug), tenant.as_bytes())?;
            t[0].insert(page_key(tenant), bytes.as_slice())?;
            Ok(Ok(()))
        })
    }
}
