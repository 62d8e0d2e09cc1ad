//! `/v1/categories`: what notifications are about. `infrastructure`, `billing` and
//! `configuration` exist from the start; `PUT` creates a category or edits its description.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bytes::Bytes;

use super::extract::{Caller, parse_json};
use super::{AppState, Items};
use crate::error::{ApiError, ApiResult};
use crate::notifications::categories::{self, Category, CategorySpec};
use crate::notifications::subscriptions::Subscription;
use crate::tenants::{Action, Resource};

pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Items<Category>>> {
    let key = caller.tenant(Resource::Categories, Action::Read)?;
    Ok(Json(Items { items: categories::list(&state.store.categories, &key.tenant_id)? }))
}

pub async fn get(State(state): State<AppState>, caller: Caller, Path(name): Path<String>) -> ApiResult<Json<Category>> {
    let key = caller.tenant(Resource::Categories, Action::Read)?;
    Ok(Json(find(&state, &key.tenant_id, &name)?))
}

pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Category>)> {
    let key = caller.tenant(Resource::Categories, Action::Update)?;
    let spec: CategorySpec = parse_json(&body)?;
    categories::check_name("name", &name)?;
    spec.check()?;
    let existed = categories::get(&state.store.categories, &key.tenant_id, &name)?.is_some();
    let category = categories::put(&state.store.categories, &key.tenant_id, &name, spec)?;
    state.store.flush().await?;
    Ok((if existed { StatusCode::OK } else { StatusCode::CREATED }, Json(category)))
}

pub async fn delete(State(state): State<AppState>, caller: Caller, Path(name): Path<String>) -> ApiResult<StatusCode> {
    let key = caller.tenant(Resource::Categories, Action::Delete)?;
    let tenant = &key.tenant_id;
    find(&state, tenant, &name)?;
    if categories::is_built_in(&name) {
        return Err(ApiError::Conflict(format!("`{name}` is built in: it can be described, not deleted")));
    }
    let subscriptions: Vec<Subscription> = state.store.subscriptions.list(tenant)?;
    let mut users: Vec<String> =
        subscriptions.into_iter().filter(|s| s.spec.channels.contains_key(&name)).map(|s| s.id).collect();
    users.extend(
        state.rules.list(tenant)?.into_iter().filter(|r| r.spec.category.as_ref() == Some(&name)).map(|r| r.id),
    );
    super::refuse_while_used(&format!("category `{name}`"), &users)?;
    state.store.categories.delete(tenant, &name)?;
    state.store.flush().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Refuses a `field` naming a category the tenant does not have.
pub fn check_exists(state: &AppState, tenant: &str, field: &str, name: &str) -> ApiResult<()> {
    if categories::get(&state.store.categories, tenant, name)?.is_none() {
        return Err(ApiError::field(
            field,
            format!("there is no category `{name}`; create it with PUT /v1/categories/{name}"),
        ));
    }
    Ok(())
}

fn find(state: &AppState, tenant: &str, name: &str) -> ApiResult<Category> {
    categories::get(&state.store.categories, tenant, name)?
        .ok_or_else(|| ApiError::not_found(format_args!("category `{name}`")))
}
