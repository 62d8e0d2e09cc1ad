//! `/v1/roles`: the built-in roles and the ones a tenant defines, as lists of permissions.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bytes::Bytes;
use serde::Deserialize;

use super::extract::{Caller, parse_json};
use super::{AppState, Items};
use crate::error::{ApiError, ApiResult};
use crate::tenants::roles::{BUILT_IN, built_in};
use crate::tenants::{Action, Permissions, Resource, Role, RoleView, TenantKey};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRole {
    name: String,
    #[serde(flatten)]
    spec: RoleSpec,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleSpec {
    #[serde(default)]
    description: String,
    permissions: Vec<String>,
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<RoleView>)> {
    let key = caller.tenant(Resource::Roles, Action::Create)?;
    let input: NewRole = parse_json(&body)?;
    check_name(&input.name)?;
    if state.tenants.role(&key.tenant_id, &input.name)?.is_some() {
        return Err(ApiError::Conflict(format!("there is a role named `{}` already", input.name)));
    }
    let now = state.clock.now();
    let role = spec_to_role(input.name, input.spec, now, now)?;
    save(&state, key, &role).await?;
    Ok((StatusCode::CREATED, Json(RoleView::from(&role))))
}

pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Items<RoleView>>> {
    let key = caller.tenant(Resource::Roles, Action::Read)?;
    Ok(Json(Items { items: state.tenants.roles(&key.tenant_id)? }))
}

pub async fn get(State(state): State<AppState>, caller: Caller, Path(name): Path<String>) -> ApiResult<Json<RoleView>> {
    let key = caller.tenant(Resource::Roles, Action::Read)?;
    state
        .tenants
        .roles(&key.tenant_id)?
        .into_iter()
        .find(|role| role.name == name)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format_args!("role `{name}`")))
}

pub async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<RoleView>> {
    let key = caller.tenant(Resource::Roles, Action::Update)?;
    let spec: RoleSpec = parse_json(&body)?;
    refuse_built_in(&name)?;
    let existing = find(&state, key, &name)?;
    let role = spec_to_role(name, spec, existing.created_at, state.clock.now())?;
    save(&state, key, &role).await?;
    Ok(Json(RoleView::from(&role)))
}

pub async fn delete(State(state): State<AppState>, caller: Caller, Path(name): Path<String>) -> ApiResult<StatusCode> {
    let key = caller.tenant(Resource::Roles, Action::Delete)?;
    refuse_built_in(&name)?;
    find(&state, key, &name)?;
    let users: Vec<String> =
        state.tenants.list_keys(&key.tenant_id)?.into_iter().filter(|k| k.role == name).map(|k| k.id).collect();
    super::refuse_while_used(&format!("role `{name}`"), &users)?;
    state.tenants.delete_role(&key.tenant_id, &name)?;
    state.cluster.changed(&key.tenant_id)?;
    state.store.flush().await?;
    Ok(StatusCode::NO_CONTENT)
}

fn find(state: &AppState, key: &TenantKey, name: &str) -> ApiResult<Role> {
    state.tenants.role(&key.tenant_id, name)?.ok_or_else(|| ApiError::not_found(format_args!("role `{name}`")))
}

async fn save(state: &AppState, key: &TenantKey, role: &Role) -> ApiResult<()> {
    state.tenants.put_role(&key.tenant_id, role)?;
    state.cluster.changed(&key.tenant_id)?;
    state.store.flush().await?;
    Ok(())
}

fn spec_to_role(name: String, spec: RoleSpec, created_at: jiff::Timestamp, now: jiff::Timestamp) -> ApiResult<Role> {
    if spec.description.len() > 500 {
        return Err(ApiError::field("description", "must be at most 500 characters"));
    }
    if spec.permissions.is_empty() || spec.permissions.len() > 200 {
        return Err(ApiError::field("permissions", "must list 1 to 200 permissions"));
    }
    Permissions::parse(&spec.permissions)
        .map_err(|(i, message)| ApiError::field(format!("permissions[{i}]"), message))?;
    Ok(Role { name, description: spec.description, permissions: spec.permissions, created_at, updated_at: now })
}

fn check_name(name: &str) -> ApiResult<()> {
    let fits = (1..=64).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !fits {
        return Err(ApiError::field("name", "must be 1 to 64 letters, digits, `-`, `_` or `.`"));
    }
    refuse_built_in(name)
}

fn refuse_built_in(name: &str) -> ApiResult<()> {
    if built_in(name).is_some() {
        let names: Vec<&str> = BUILT_IN.iter().map(|(name, ..)| *name).collect();
        return Err(ApiError::Conflict(format!(
            "`{name}` is a built-in role ({}), which cannot be defined, changed or deleted",
            names.join(", ")
        )));
    }
    Ok(())
}
