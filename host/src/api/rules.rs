//! `/v1/rules`: create, read, replace and delete rules; every save is checked in full.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::extract::{ApiJson, Caller};
use super::{AppState, Items};
use crate::error::{ApiError, ApiResult};
use crate::plugins::{PluginError, PluginKind};
use crate::rules::{Condition, Rule, RuleSpec, RuleView};
use crate::tenants::{Access, TenantKey};

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(spec): ApiJson<RuleSpec>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let key = caller.tenant(Access::Write)?;
    check(&state, key, &spec).await?;
    let rule = state.rules.create(&key.tenant_id, &key.key_id, spec, state.clock.now())?;
    state.store.flush().await?;
    Ok((StatusCode::CREATED, Json(view(&rule))))
}

pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Items<serde_json::Value>>> {
    let key = caller.tenant(Access::Read)?;
    let items = state.rules.list(&key.tenant_id)?.iter().map(view).collect();
    Ok(Json(Items { items }))
}

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let key = caller.tenant(Access::Read)?;
    Ok(Json(view(&find(&state, &key.tenant_id, &id)?)))
}

pub async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(spec): ApiJson<RuleSpec>,
) -> ApiResult<Json<serde_json::Value>> {
    let key = caller.tenant(Access::Write)?;
    let rule = find(&state, &key.tenant_id, &id)?;
    check_may_change(key, &rule)?;
    check(&state, key, &spec).await?;
    let rule = state.rules.replace(&key.tenant_id, rule, spec, state.clock.now())?;
    state.store.flush().await?;
    Ok(Json(view(&rule)))
}

pub async fn delete(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let key = caller.tenant(Access::Write)?;
    let rule = find(&state, &key.tenant_id, &id)?;
    check_may_change(key, &rule)?;
    state.rules.delete(&key.tenant_id, &id)?;
    state.store.flush().await?;
    Ok(StatusCode::NO_CONTENT)
}

fn view(rule: &Rule) -> serde_json::Value {
    serde_json::to_value(RuleView::from(rule)).expect("rules serialize")
}

fn find(state: &AppState, tenant: &str, id: &str) -> ApiResult<Rule> {
    state.rules.get(tenant, id)?.ok_or_else(|| ApiError::not_found(format_args!("rule `{id}`")))
}

fn check_may_change(key: &TenantKey, rule: &Rule) -> ApiResult<()> {
    if key.may_change(&rule.created_by) {
        Ok(())
    } else {
        Err(ApiError::Forbidden("this rule was created by another key; editors may change only their own rules".into()))
    }
}

/// The rule's own checks, then, for a plugin condition, the plugin's check of its config.
async fn check(state: &AppState, key: &TenantKey, spec: &RuleSpec) -> ApiResult<()> {
    spec.check().map_err(|e| ApiError::field(e.field, e.message))?;
    let Condition::Plugin { plugin: name, config, .. } = &spec.condition else {
        return Ok(());
    };
    let tenant = state.tenants.get(&key.tenant_id)?.ok_or_else(|| ApiError::not_found("tenant"))?;
    let plugin = state
        .plugins
        .get(&tenant.id, name)?
        .ok_or_else(|| ApiError::field("condition.plugin", format!("there is no plugin named `{name}`")))?;
    if plugin.kind != PluginKind::Condition {
        return Err(ApiError::field(
            "condition.plugin",
            format!("plugin `{name}` is a template plugin, not a condition"),
        ));
    }
    if !plugin.enabled {
        return Err(ApiError::field("condition.plugin", format!("plugin `{name}` is disabled")));
    }
    match state.plugins.validate(&tenant, &plugin, config).await?.result {
        Ok(()) => Ok(()),
        Err(PluginError::Failed(message)) => Err(ApiError::field("condition.config", message)),
        Err(PluginError::Host(message)) => Err(PluginError::Host(message).into()),
        Err(other) => {
            Err(ApiError::field("condition.config", format!("plugin `{name}` could not check the config: {other}")))
        }
    }
}
