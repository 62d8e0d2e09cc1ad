//! `/v1/cohorts`: saved, dynamic customer lists. Every save is checked in full; a new or changed
//! definition is computed in the background (status `computing`, then `ready`).

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::extract::{Caller, parse_json};
use super::{AppState, Items, blocking, json};
use crate::cohorts::{Cohort, CohortSpec, MemberView};
use crate::error::{ApiError, ApiResult};
use crate::rules::Condition;
use crate::tenants::{Action, Resource, TenantKey};

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let key = caller.tenant(Resource::Cohorts, Action::Create)?;
    let spec: CohortSpec = parse_json(&body)?;
    let cohort = save(&state, key, None, spec).await?;
    Ok((StatusCode::CREATED, Json(view(&state, &key.tenant_id, &cohort))))
}

pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Items<Value>>> {
    let key = caller.tenant(Resource::Cohorts, Action::Read)?;
    let items = state.cohorts.list(&key.tenant_id)?.iter().map(|c| json(c.view(None))).collect();
    Ok(Json(Items { items }))
}

pub async fn get(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let key = caller.tenant(Resource::Cohorts, Action::Read)?;
    Ok(Json(view(&state, &key.tenant_id, &find(&state, &key.tenant_id, &id)?)))
}

pub async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let key = caller.tenant(Resource::Cohorts, Action::Update)?;
    let spec: CohortSpec = parse_json(&body)?;
    let cohort = find(&state, &key.tenant_id, &id)?;
    key.check_may(Resource::Cohorts, Action::Update, &cohort.created_by, "this cohort")?;
    let cohort = save(&state, key, Some(cohort), spec).await?;
    Ok(Json(view(&state, &key.tenant_id, &cohort)))
}

pub async fn delete(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let key = caller.tenant(Resource::Cohorts, Action::Delete)?;
    let cohort = find(&state, &key.tenant_id, &id)?;
    key.check_may(Resource::Cohorts, Action::Delete, &cohort.created_by, "this cohort")?;
    let users: Vec<String> = state
        .rules
        .list(&key.tenant_id)?
        .into_iter()
        .filter(|r| matches!(&r.spec.condition, Condition::Cohort { cohort, .. } if *cohort == id))
        .map(|r| r.id)
        .collect();
    super::refuse_while_used(&format!("cohort `{id}`"), &users)?;
    state.cohorts.delete(&key.tenant_id, &id)?;
    state.cluster.changed(&key.tenant_id)?;
    state.store.flush().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
    limit: Option<usize>,
    /// The customer id the previous page ended with.
    after: Option<String>,
}

#[derive(Serialize)]
pub struct MemberPage {
    items: Vec<MemberView>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_after: Option<String>,
}

const MAX_PAGE: usize = 1000;

/// `GET /v1/cohorts/{id}/members`: the members in customer id order, with when each entered.
pub async fn members(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    query: Result<Query<Page>, QueryRejection>,
) -> ApiResult<Json<MemberPage>> {
    let key = caller.tenant(Resource::Cohorts, Action::Read)?;
    let Query(page) = query.map_err(|e| ApiError::field("query", e.body_text()))?;
    let limit = page.limit.unwrap_or(100);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::field("limit", format!("must be 1 to {MAX_PAGE}")));
    }
    find(&state, &key.tenant_id, &id)?;
    let items = state.cohorts.members(&key.tenant_id, &id, page.after.as_deref(), limit)?;
    let next_after = (items.len() == limit).then(|| items[limit - 1].customer_id.clone());
    Ok(Json(MemberPage { items, next_after }))
}

/// Checks the definition, saves it in the tenant's ingest turn, and starts its computation (on
/// the node holding the tenant: another hears of the change and starts it there).
async fn save(state: &AppState, key: &TenantKey, existing: Option<Cohort>, spec: CohortSpec) -> ApiResult<Cohort> {
    spec.check(state.cohorts.retention)?;
    let (ingest, tenant, by) = (state.ingest.clone(), key.tenant_id.clone(), key.key_id.clone());
    let cohort = blocking(move || Ok(ingest.save_cohort(&tenant, &by, existing, spec)?)).await?;
    state.cluster.changed(&key.tenant_id)?;
    state.store.flush().await?;
    if state.cluster.owns(&key.tenant_id) {
        state.cohorts.spawn_compute(key.tenant_id.clone(), cohort.id.clone());
    }
    Ok(cohort)
}

fn view(state: &AppState, tenant: &str, cohort: &Cohort) -> Value {
    json(cohort.view(Some(state.cohorts.member_count(tenant, &cohort.id))))
}

fn find(state: &AppState, tenant: &str, id: &str) -> ApiResult<Cohort> {
    state.cohorts.get(tenant, id)?.ok_or_else(|| ApiError::not_found(format_args!("cohort `{id}`")))
}
