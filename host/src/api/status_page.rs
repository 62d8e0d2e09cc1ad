//! `/v1/status-page`: the tenant's public status page, its settings. The page itself is served
//! without authentication at `/status/{slug}` (the console's).

use axum::Json;
use axum::extract::State;
use bytes::Bytes;

use super::AppState;
use super::extract::{Caller, parse_json};
use crate::error::{ApiError, ApiResult};
use crate::notifications::status_page::{StatusPage, StatusPageSpec};
use crate::tenants::{Action, Resource};

pub async fn get(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<StatusPage>> {
    let key = caller.tenant(Resource::StatusPage, Action::Read)?;
    state
        .store
        .status_page::<StatusPage>(&key.tenant_id)?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("status page (none was set up; PUT one)"))
}

/// Sets up or replaces the page; the slug must be free (or the tenant's already).
pub async fn put(State(state): State<AppState>, caller: Caller, body: Bytes) -> ApiResult<Json<StatusPage>> {
    let key = caller.tenant(Resource::StatusPage, Action::Update)?;
    let spec: StatusPageSpec = parse_json(&body)?;
    spec.check()?;
    let page = StatusPage { spec, updated_at: state.clock.now() };
    if let Err(slug) = state.store.put_status_page(&key.tenant_id, &page.spec.slug, &page)? {
        return Err(ApiError::field("slug", format!("`{slug}` is taken by another status page")));
    }
    state.store.flush().await?;
    Ok(Json(page))
}
