//! `/v1/notifications`: what rules produced, newest first, waiting for (or past) delivery.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Serialize;

use super::AppState;
use super::extract::Caller;
use crate::error::{ApiError, ApiResult};
use crate::notifications::{self, Notification};
use crate::tenants::Access;

#[derive(Serialize)]
pub struct Page {
    items: Vec<Notification>,
    /// Pass as `before` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_before: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<notifications::Query>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Page>> {
    let key = caller.tenant(Access::Read)?;
    let Query(query) = query.map_err(|e| ApiError::field("query", e.body_text()))?;
    if query.limit.is_some_and(|l| !(1..=notifications::MAX_PAGE).contains(&l)) {
        return Err(ApiError::field("limit", format!("must be 1 to {}", notifications::MAX_PAGE)));
    }
    let items = state.notifications.list(&key.tenant_id, &query)?;
    let full = items.len() == query.page_size();
    let next_before = full.then(|| items[items.len() - 1].id.clone());
    Ok(Json(Page { items, next_before }))
}

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Notification>> {
    let key = caller.tenant(Access::Read)?;
    let notification = state.notifications.get(&key.tenant_id, &id)?;
    notification.map(Json).ok_or_else(|| ApiError::not_found(format_args!("notification `{id}`")))
}
