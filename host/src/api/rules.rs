//! `/v1/rules`: create, read, replace and delete rules; every save is checked in full.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::as_customer;
use super::extract::{Caller, optional_json, parse_json};
use super::{AppState, Items};
use crate::alerts::state::TransitionRecord;
use crate::alerts::{AlertView, DryRun, DryRunError};
use crate::error::{ApiError, ApiResult};
use crate::plugins::{PluginError, PluginKind};
use crate::rules::{Condition, Rule, RuleSpec, RuleView};
use crate::tenants::customer_tokens::OWNER_PREFIX;
use crate::tenants::{Action, Resource, TenantKey};

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let key = caller.tenant(Resource::Rules, Action::Create)?;
    let spec: RuleSpec = parse_json(&body)?;
    as_customer::check_rule(&state, key, &spec, true)?;
    check(&state, key, &spec).await?;
    let most = super::usage_limits(&state, &key.tenant_id)?.max_rules;
    super::within("max_rules", state.rules.list(&key.tenant_id)?.len(), most, "rules")?;
    let rule = state.rules.create(&key.tenant_id, &key.key_id, spec, state.clock.now())?;
    state.alerts.rule_saved(&key.tenant_id, &rule)?;
    state.cluster.changed(&key.tenant_id)?;
    super::report(&state, key, "rule.created", reported(&rule)).await?;
    state.store.flush().await?;
    Ok((StatusCode::CREATED, Json(view(&state, &key.tenant_id, &rule)?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `customer` for every rule customers made with their tokens; else a key id or
    /// `customer:<id>`, for what it made.
    owner: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<Items<serde_json::Value>>> {
    let key = caller.tenant(Resource::Rules, Action::Read)?;
    let Query(query) = query.map_err(|e| ApiError::field("query", e.body_text()))?;
    let owned = |rule: &Rule| match query.owner.as_deref() {
        None => true,
        Some("customer") => rule.created_by.starts_with(OWNER_PREFIX),
        Some(owner) => rule.created_by == owner,
    };
    let items = state
        .rules
        .list(&key.tenant_id)?
        .iter()
        .filter(|rule| key.sees(&rule.created_by) && owned(rule))
        .map(|rule| view(&state, &key.tenant_id, rule))
        .collect::<ApiResult<_>>()?;
    Ok(Json(Items { items }))
}

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let key = caller.tenant(Resource::Rules, Action::Read)?;
    Ok(Json(view(&state, &key.tenant_id, &find(&state, key, &id)?)?))
}

pub async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let key = caller.tenant(Resource::Rules, Action::Update)?;
    let spec: RuleSpec = parse_json(&body)?;
    let rule = find(&state, key, &id)?;
    key.check_may(Resource::Rules, Action::Update, &rule.created_by, "this rule")?;
    as_customer::check_rule(&state, key, &spec, false)?;
    check(&state, key, &spec).await?;
    let rule = state.rules.replace(&key.tenant_id, rule, spec, state.clock.now())?;
    state.alerts.rule_saved(&key.tenant_id, &rule)?;
    state.cluster.changed(&key.tenant_id)?;
    super::report(&state, key, "rule.updated", reported(&rule)).await?;
    state.store.flush().await?;
    Ok(Json(view(&state, &key.tenant_id, &rule)?))
}

pub async fn delete(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let key = caller.tenant(Resource::Rules, Action::Delete)?;
    let rule = find(&state, key, &id)?;
    key.check_may(Resource::Rules, Action::Delete, &rule.created_by, "this rule")?;
    state.rules.delete(&key.tenant_id, &id)?;
    state.alerts.rule_deleted(&key.tenant_id, &id)?;
    state.cluster.changed(&key.tenant_id)?;
    super::report(&state, key, "rule.deleted", reported(&rule)).await?;
    state.store.flush().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatesQuery {
    /// One alert: a customer id, or `*` for a rule over all customers.
    scope_key: Option<String>,
    limit: Option<usize>,
}

#[derive(Serialize)]
pub struct States {
    items: Vec<AlertView>,
    /// The newest changes of state first.
    transitions: Vec<TransitionRecord>,
}

const MAX_STATES: usize = 1000;

/// `GET /v1/rules/{id}/states`: where each of the rule's alerts stands, and its history.
pub async fn states(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    query: Result<Query<StatesQuery>, QueryRejection>,
) -> ApiResult<Json<States>> {
    let key = caller.tenant(Resource::Rules, Action::Read)?;
    let Query(query) = query.map_err(|e| ApiError::field("query", e.body_text()))?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_STATES).contains(&limit) {
        return Err(ApiError::field("limit", format!("must be 1 to {MAX_STATES}")));
    }
    find(&state, key, &id)?;
    let (items, transitions) = state.alerts.states(&key.tenant_id, &id, query.scope_key.as_deref(), limit)?;
    Ok(Json(States { items, transitions }))
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DryRunInput {
    /// Evaluate for this customer; without it, for the whole scope.
    #[serde(default)]
    customer_id: Option<String>,
    /// The event an `event_match` rule is tried against.
    #[serde(default)]
    event: Option<serde_json::Value>,
}

/// `POST /v1/rules/{id}/evaluate`: the rule's value, threshold and verdict now, without
/// notifying or changing any state.
pub async fn evaluate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Items<DryRun>>> {
    let key = caller.tenant(Resource::Rules, Action::Read)?;
    let rule = find(&state, key, &id)?;
    let input: DryRunInput = optional_json(&body)?;
    if let Some(claims) = &key.customer
        && input.customer_id.as_ref().is_some_and(|customer| *customer != claims.customer_id)
    {
        return Err(ApiError::field("customer_id", "a customer's token evaluates for that customer only"));
    }
    let event = match input.event {
        Some(raw) => {
            Some(state.ingest.parse_event(raw).map_err(|e| ApiError::field(format!("event.{}", e.field), e.message))?)
        }
        None => None,
    };
    let items =
        state.alerts.dry_run(&key.tenant_id, &rule, input.customer_id.as_deref(), event.as_ref()).await.map_err(
            |e| match e {
                DryRunError::Invalid(message) => match message.split_once(": ") {
                    Some((field, message)) => ApiError::field(field, message),
                    None => ApiError::field("body", message),
                },
                DryRunError::Store(e) => e.into(),
                DryRunError::Plugin(message) => ApiError::Conflict(message),
            },
        )?;
    Ok(Json(Items { items }))
}

/// What a `rule.*` system event says of the rule.
fn reported(rule: &Rule) -> serde_json::Value {
    serde_json::json!({ "rule_id": rule.id, "name": rule.spec.name })
}

/// A rule as the API shows it, with how many of its alerts stand in each state.
fn view(state: &AppState, tenant: &str, rule: &Rule) -> ApiResult<serde_json::Value> {
    let mut view = serde_json::to_value(RuleView::from(rule)).expect("rules serialize");
    view["alerts"] = serde_json::to_value(state.alerts.state_counts(tenant, &rule.id)?).expect("counts serialize");
    Ok(view)
}

/// The rule `id`, if the caller sees it (a customer sees only its own).
pub(super) fn find(state: &AppState, key: &TenantKey, id: &str) -> ApiResult<Rule> {
    state
        .rules
        .get(&key.tenant_id, id)?
        .filter(|rule| key.sees(&rule.created_by))
        .ok_or_else(|| ApiError::not_found(format_args!("rule `{id}`")))
}

/// The rule's own checks, then, for a plugin condition, the plugin's check of its config.
pub(super) async fn check(state: &AppState, key: &TenantKey, spec: &RuleSpec) -> ApiResult<()> {
    spec.check()?;
    if let Some(category) = &spec.category {
        super::categories::check_exists(state, &key.tenant_id, "category", category)?;
    }
    for (i, channel) in spec.channels.iter().enumerate() {
        if state.channels.get(&key.tenant_id, channel)?.is_none() {
            return Err(ApiError::field(format!("channels[{i}]"), format!("there is no channel `{channel}`")));
        }
    }
    if let Condition::Cohort { cohort, .. } = &spec.condition
        && state.cohorts.get(&key.tenant_id, cohort)?.is_none()
    {
        return Err(ApiError::field("condition.cohort", format!("there is no cohort `{cohort}`")));
    }
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
