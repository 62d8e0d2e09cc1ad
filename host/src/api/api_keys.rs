//! `/v1/api-keys`: a tenant's keys, each with a role.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bytes::Bytes;
use serde::Deserialize;

use super::extract::{Caller, parse_json};
use super::{AppState, Items};
use crate::error::{ApiError, ApiResult};
use crate::tenants::roles::ADMIN;
use crate::tenants::{Action, CreatedKey, KeyView, Resource};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    name: String,
    /// A built-in role or one the tenant defined.
    role: String,
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<CreatedKey>)> {
    let key = caller.tenant(Resource::Keys, Action::Create)?;
    let input: NewKey = parse_json(&body)?;
    if input.name.trim().is_empty() || input.name.len() > 200 {
        return Err(ApiError::field("name", "must be 1 to 200 characters"));
    }
    if !state.tenants.roles(&key.tenant_id)?.iter().any(|role| role.name == input.role) {
        return Err(ApiError::field("role", format!("there is no role `{}`", input.role)));
    }
    let granted = state.tenants.permissions(&key.tenant_id, &input.role)?;
    if let Some(beyond) = key.permissions.first_beyond(&granted) {
        return Err(ApiError::Forbidden(format!(
            "the role `{}` grants `{beyond}`, which this key's role `{}` does not hold; a key gives no more than it has",
            input.role, key.role
        )));
    }
    let created = state.tenants.create_key(&key.tenant_id, input.name, input.role, state.clock.now())?;
    state.store.flush().await?;
    Ok((StatusCode::CREATED, Json(created)))
}

pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Items<KeyView>>> {
    let key = caller.tenant(Resource::Keys, Action::Read)?;
    let items = state.tenants.list_keys(&key.tenant_id)?.iter().map(KeyView::from).collect();
    Ok(Json(Items { items }))
}

pub async fn delete(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let key = caller.tenant(Resource::Keys, Action::Delete)?;
    let target = state
        .tenants
        .get_key(&key.tenant_id, &id)?
        .ok_or_else(|| ApiError::not_found(format_args!("API key `{id}`")))?;
    if target.role == ADMIN {
        let admins = state.tenants.list_keys(&key.tenant_id)?.iter().filter(|k| k.role == ADMIN).count();
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
