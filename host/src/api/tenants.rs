//! `/v1/tenants`: the platform admin's routes.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::extract::{Caller, parse_json};
use super::{AppState, Items};
use crate::error::{ApiError, ApiResult};
use crate::store::Kept;
use crate::tenants::Tenant;
use crate::tenants::{PluginLimits, UsageOverrides};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    name: String,
    plugin_limits: Option<PluginLimits>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantUpdate {
    name: Option<String>,
    plugin_limits: Option<PluginLimits>,
    /// What the tenant may use, where not the configuration's (replacing what was set).
    limits: Option<UsageOverrides>,
}

fn check_tenant_name(name: &str) -> ApiResult<()> {
    if name.trim().is_empty() || name.len() > 200 {
        return Err(ApiError::field("name", "must be 1 to 200 characters"));
    }
    Ok(())
}

fn check_limits(limits: &PluginLimits) -> ApiResult<()> {
    limits.validate().map_err(|e| {
        let field = e.split(':').next().unwrap_or_default();
        ApiError::field(format!("plugin_limits.{field}"), e.clone())
    })
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.platform_admin()?;
    let input: NewTenant = parse_json(&body)?;
    check_tenant_name(&input.name)?;
    let limits = input.plugin_limits.unwrap_or(state.config.plugin_limits);
    check_limits(&limits)?;
    let (tenant, admin_key) = state.tenants.create(input.name, limits, state.clock.now())?;
    state.store.flush().await?;
    tracing::info!(tenant = %tenant.id, "tenant created");
    Ok((StatusCode::CREATED, Json(json!({ "tenant": tenant, "admin_key": admin_key }))))
}

pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Items<Tenant>>> {
    caller.platform_admin()?;
    Ok(Json(Items { items: state.tenants.list()? }))
}

/// A tenant with what it uses of its limits.
#[derive(Serialize)]
pub struct TenantView {
    #[serde(flatten)]
    tenant: Tenant,
    usage: Usage,
}

/// What a tenant keeps, against `max_events`, `max_customers`, `max_rules` and `max_channels`.
#[derive(Serialize)]
struct Usage {
    events: u64,
    customers: u64,
    rules: usize,
    channels: usize,
}

pub async fn get(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<TenantView>> {
    caller.platform_admin()?;
    let tenant = find(&state, &id)?;
    let usage = Usage {
        events: state.store.kept(&id, Kept::Events)?,
        customers: state.store.kept(&id, Kept::Customers)?,
        rules: state.rules.list(&id)?.len(),
        channels: state.channels.list(&id)?.len(),
    };
    Ok(Json(TenantView { tenant, usage }))
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Tenant>> {
    caller.platform_admin()?;
    let input: TenantUpdate = parse_json(&body)?;
    let mut tenant = find(&state, &id)?;
    if let Some(name) = input.name {
        check_tenant_name(&name)?;
        tenant.name = name;
    }
    if let Some(limits) = input.plugin_limits {
        check_limits(&limits)?;
        tenant.plugin_limits = limits;
    }
    if let Some(limits) = input.limits {
        limits.over(state.config.tenant_limits).check("limits")?;
        tenant.limits = limits;
    }
    state.tenants.put(&tenant)?;
    state.store.flush().await?;
    Ok(Json(tenant))
}

pub async fn delete(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<StatusCode> {
    caller.platform_admin()?;
    // Every record of the tenant goes in one transaction; then what is kept beside the store.
    if !state.tenants.delete(&id)? {
        return Err(ApiError::not_found(format_args!("tenant `{id}`")));
    }
    state.plugins.forget_tenant(&id).await?;
    state.alerts.forget_tenant(&id);
    state.cohorts.forget_tenant(&id);
    state.notifications.routing_changed(&id)?;
    state.cluster.changed(&id)?;
    state.store.flush().await?;
    tracing::info!(tenant = %id, "tenant deleted");
    Ok(StatusCode::NO_CONTENT)
}

fn find(state: &AppState, id: &str) -> ApiResult<Tenant> {
    state.tenants.get(id)?.ok_or_else(|| ApiError::not_found(format_args!("tenant `{id}`")))
}
