//! `/v1/api-keys`: a tenant admin's keys.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bytes::Bytes;
use serde::Deserialize;

use super::extract::{Caller, parse_json};
use super::{AppState, Items};
use crate::error::{ApiError, ApiResult};
use crate::tenants::{Access, CreatedKey, KeyView, Role};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    name: String,
    role: Role,
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<CreatedKey>)> {
    let key = caller.tenant(Access::ManageKeys)?;
    let input: NewKey = parse_json(&body)?;
    if input.name.trim().is_empty() || input.name.len() > 200 {
        return Err(ApiError::field("name", "must be 1 to 200 characters"));
    }
    let created = state.tenants.create_key(&key.tenant_id, input.name, input.role, state.clock.now())?;
    state.store.flush().await?;
    Ok((StatusCode::CREATED, Json(created)))
}

pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Items<KeyView>>> {
    let key = caller.tenant(Access::ManageKeys)?;
    let items = state.tenants.list_keys(&key.tenant_id)?.iter().map(KeyView::from).collect();
    Ok(Json(Items { items }))
}

pub async fn delete(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let key = caller.tenant(Access::ManageKeys)?;
    let target = state
        .tenants
        .get_key(&key.tenant_id, &id)?
        .ok_or_else(|| ApiError::not_found(format_args!("API key `{id}`")))?;
    if target.role == Role::Admin {
        let admins = state.tenants.list_keys(&key.tenant_id)?.iter().filter(|k| k.role == Role::Admin).count();
        if admins == 1 {
            return Err(ApiError::Conflict(
                "this is the tenant's last admin key; create another admin key first".into(),
            ));
        }
    }
    state.tenants.delete_key(&id)?;
    state.cluster.changed(&key.tenant_id)?;
    state.store.flush().await?;
    Ok(StatusCode::NO_CONTENT)
}
