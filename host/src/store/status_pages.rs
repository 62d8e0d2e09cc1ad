//! Status pages: one per tenant, each reachable by a slug unique across tenants.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{Store, StoreResult, abort, decode, transaction};

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

    /// Writes the tenant's page under `slug`, taking the slug and freeing the one its page had,
    /// in one transaction; answers `Err(slug)` when another tenant's page has the slug. A page
    /// holds its slug in a `slug` field.
    pub fn put_status_page<T: Serialize>(&self, tenant: &str, slug: &str, page: &T) -> StoreResult<Result<(), String>> {
        /// What the store reads of a stored page: the slug it holds.
        #[derive(Deserialize)]
        struct Held {
            slug: String,
        }
        let bytes = serde_json::to_vec(page).expect("pages serialize");
        transaction(&[&self.status_pages], |t| {
            let pages = &t[0];
            if pages.get(slug_key(slug))?.is_some_and(|owner| owner != tenant.as_bytes()) {
                return Ok(Err(slug.to_string()));
            }
            if let Some(old) = pages.get(page_key(tenant))? {
                let held: Held = decode(&page_key(tenant), &old).map_err(abort)?;
                if held.slug != slug {
                    pages.remove(slug_key(&held.slug))?;
                }
            }
            pages.insert(slug_key(slug), tenant.as_bytes())?;
            pages.insert(page_key(tenant), bytes.as_slice())?;
            Ok(Ok(()))
        })
    }
}
