//! `/v1/customers`: the tenant's customers and their custom fields.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::extract::{ApiJson, Caller};
use crate::error::{ApiError, ApiResult};
use crate::ingest::{Customer, CustomerInput, PutError};
use crate::tenants::Access;

const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<CustomerInput>,
) -> ApiResult<(StatusCode, Json<Customer>)> {
    let key = caller.tenant(Access::Ingest)?;
    let (customer, created) = state.ingest.put_customer(&key.tenant_id, &id, input).map_err(|e| match e {
        PutError::Invalid(invalid) => ApiError::field(invalid.field, invalid.message),
        PutError::Store(e) => e.into(),
    })?;
    state.store.flush().await?;
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(customer)))
}

pub async fn get(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Customer>> {
    let key = caller.tenant(Access::Read)?;
    let customer = state.ingest.customer(&key.tenant_id, &id)?;
    customer.map(Json).ok_or_else(|| ApiError::not_found(format_args!("customer `{id}`")))
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
    Query(page): Query<Page>,
) -> ApiResult<Json<CustomerPage>> {
    let key = caller.tenant(Access::Read)?;
    let limit = page.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::field("limit", format!("must be 1 to {MAX_PAGE}")));
    }
    let items = state.ingest.customers(&key.tenant_id, page.after.as_deref(), limit)?;
    let next_after = (items.len() == limit).then(|| items[limit - 1].id.clone());
    Ok(Json(CustomerPage { items, next_after }))
}

pub async fn delete(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let key = caller.tenant(Access::Ingest)?;
    if !state.ingest.delete_customer(&key.tenant_id, &id)? {
        return Err(ApiError::not_found(format_args!("customer `{id}`")));
    }
    state.store.flush().await?;
    Ok(StatusCode::NO_CONTENT)
}
