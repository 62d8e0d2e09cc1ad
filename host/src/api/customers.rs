//! `/v1/customers`: the tenant's customers and their custom fields.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::extract::{Caller, parse_json};
use super::{AppState, Items};
use crate::cohorts::Membership;
use crate::error::{ApiError, ApiResult};
use crate::ingest::{CustomerInput, PutError};
use crate::records::Customer;
use crate::tenants::{Action, Resource};

const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Customer>)> {
    let key = caller.tenant(Resource::Customers, Action::Update)?;
    let input: CustomerInput = parse_json(&body)?;
    if state.store.customer::<serde::de::IgnoredAny>(&key.tenant_id, &id)?.is_none() {
        let most = super::usage_limits(&state, &key.tenant_id)?.max_customers;
        let kept = state.store.kept(&key.tenant_id, crate::store::Kept::Customers)?;
        super::within("max_customers", kept as usize, most, "customers")?;
    }
    let (ingest, tenant, actor) = (state.ingest.clone(), key.tenant_id.clone(), key.key_id.clone());
    let (customer, created) = super::blocking(move || {
        let saved = ingest.put_customer(&tenant, &actor, &id, input);
        ingest.run_system_events()?;
        saved.map_err(|e| match e {
            PutError::Invalid(invalid) => ApiError::field(invalid.field, invalid.message),
            PutError::Store(e) => e.into(),
        })
    })
    .await?;
    state.store.flush().await?;
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(public(customer))))
}

pub async fn get(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Customer>> {
    let key = caller.tenant(Resource::Customers, Action::Read)?;
    Ok(Json(public(find(&state, &key.tenant_id, &id)?)))
}

/// `GET /v1/customers/{id}/cohorts`: the cohorts the customer is a member of, and since when.
pub async fn cohorts(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Items<Membership>>> {
    let key = caller.tenant(Resource::Customers, Action::Read)?;
    let customer = find(&state, &key.tenant_id, &id)?;
    Ok(Json(Items { items: state.cohorts.memberships(&key.tenant_id, &customer)? }))
}

fn find(state: &AppState, tenant: &str, id: &str) -> ApiResult<Customer> {
    state.ingest.customer(tenant, id)?.ok_or_else(|| ApiError::not_found(format_args!("customer `{id}`")))
}

/// A customer as the API shows it: its cohort tracks are Klaxon's own bookkeeping.
fn public(mut customer: Customer) -> Customer {
    customer.cohorts.clear();
    customer
}

#[derive(Deserialize)]
pub struct Page {
    limit: Option<usize>,
    after: Option<String>,
}

#[derive(Serialize)]
pub struct CustomerPage {
    items: Vec<Customer>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_after: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<Page>, QueryRejection>,
) -> ApiResult<Json<CustomerPage>> {
    let key = caller.tenant(Resource::Customers, Action::Read)?;
    let Query(page) = query.map_err(|e| ApiError::field("query", e.body_text()))?;
    let limit = page.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::field("limit", format!("must be 1 to {MAX_PAGE}")));
    }
    let items: Vec<Customer> =
        state.ingest.customers(&key.tenant_id, page.after.as_deref(), limit)?.into_iter().map(public).collect();
    let next_after = (items.len() == limit).then(|| items[limit - 1].id.clone());
    Ok(Json(CustomerPage { items, next_after }))
}

pub async fn delete(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let key = caller.tenant(Resource::Customers, Action::Delete)?;
    let (ingest, tenant, actor, customer) =
        (state.ingest.clone(), key.tenant_id.clone(), key.key_id.clone(), id.clone());
    let deleted = super::blocking(move || {
        let deleted = ingest.delete_customer(&tenant, &actor, &customer)?;
        ingest.run_system_events()?;
        Ok(deleted)
    })
    .await?;
    if !deleted {
        return Err(ApiError::not_found(format_args!("customer `{id}`")));
    }
    state.store.flush().await?;
    Ok(StatusCode::NO_CONTENT)
}
