//! What the handlers of tenants' own records (recipients, subscriptions, silences) share:
//! finding one, the owner check, and saving a new or replaced spec.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ApiResult};
use crate::ids::new_id;
use crate::records::Owned;
use crate::store::Collection;
use crate::tenants::{Action, Resource, TenantKey};

/// The record `id`, or a 404 naming it as `what`.
pub fn find<S: DeserializeOwned>(records: &Collection, tenant: &str, id: &str, what: &str) -> ApiResult<Owned<S>> {
    records.get(tenant, id)?.ok_or_else(|| ApiError::not_found(format_args!("{what} `{id}`")))
}

/// The record `id` of `resource`, if the caller may do `action` to it (a role granting it
/// `:own` only to what its key made).
pub fn find_to_change<S: DeserializeOwned>(
    records: &Collection,
    key: &TenantKey,
    (resource, action): (Resource, Action),
    id: &str,
    what: &str,
) -> ApiResult<Owned<S>> {
    let record: Owned<S> = find(records, &key.tenant_id, id, what)?;
    key.check_may(resource, action, &record.created_by, &format!("this {what}"))?;
    Ok(record)
}

/// Saves `spec` as a new record (`prefix_...`) or in place of `existing`.
pub fn save<S: Serialize>(
    records: &Collection,
    key: &TenantKey,
    prefix: &str,
    existing: Option<Owned<S>>,
    spec: S,
    now: jiff::Timestamp,
) -> ApiResult<Owned<S>> {
    let record = match existing {
        Some(record) => Owned { spec, updated_at: now, ..record },
        None => Owned::new(new_id(prefix), spec, &key.key_id, now),
    };
    records.put(&key.tenant_id, &record.id, &record)?;
    Ok(record)
}
