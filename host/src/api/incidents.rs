//! `/v1/incidents`: incidents and maintenances with their timelines. Opening one and each update
//! notify the subscribers of its category, in the transaction that records it.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use bytes::Bytes;

use super::extract::{Caller, parse_json};
use super::{AppState, Items, blocking};
use crate::context::IncidentKind;
use crate::error::{ApiError, ApiResult};
use crate::notifications::incidents::{self, Incident, IncidentSpec, UpdateInput};
use crate::tenants::{Action, Resource};

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Incident>)> {
    let key = caller.tenant(Resource::Incidents, Action::Create)?;
    let spec: IncidentSpec = parse_json(&body)?;
    let now = state.clock.now();
    spec.check(now)?;
    super::categories::check_exists(&state, &key.tenant_id, "category", &spec.category)?;
    let opened = Incident::open(incidents::new_id(now), &spec, &key.key_id, now);
    let tenant = key.tenant_id.clone();
    let (notifications, store) = (state.notifications.clone(), state.store.clone());
    let incident = blocking(move || {
        let routing = notifications.routing(&tenant)?;
        Ok(store.transact(|tx| {
            let mut incident = opened.clone();
            if let (IncidentKind::Maintenance, Some(start), Some(end)) =
                (incident.kind, incident.starts_at, incident.ends_at)
            {
                tx.set_timer(start, &tenant, &incident.id, incidents::START, "")?;
                tx.set_timer(end, &tenant, &incident.id, incidents::END, "")?;
            }
            incidents::record(tx, &tenant, &mut incident, &routing, now)?;
            Ok(incident)
        })?)
    })
    .await?;
    state.store.flush().await?;
    state.alerts.wake();
    state.notifications.wake_deliveries();
    Ok((StatusCode::CREATED, Json(incident)))
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<incidents::Query>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Items<Incident>>> {
    let key = caller.tenant(Resource::Incidents, Action::Read)?;
    let Query(query) = query.map_err(|e| ApiError::field("query", e.body_text()))?;
    if query.limit.is_some_and(|l| !(1..=incidents::MAX_PAGE).contains(&l)) {
        return Err(ApiError::field("limit", format!("must be 1 to {}", incidents::MAX_PAGE)));
    }
    Ok(Json(Items { items: incidents::list(&state.store, &key.tenant_id, &query)? }))
}

pub async fn get(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Incident>> {
    let key = caller.tenant(Resource::Incidents, Action::Read)?;
    incidents::find(&state.store, &key.tenant_id, &id)?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format_args!("incident `{id}`")))
}

/// `POST /v1/incidents/{id}/updates`: a status change and/or a message, told to the category's
/// subscribers. A resolved incident takes no more updates.
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Incident>)> {
    let key = caller.tenant(Resource::Incidents, Action::Update)?;
    let input: UpdateInput = parse_json(&body)?;
    let now = state.clock.now();
    let tenant = key.tenant_id.clone();
    let by = key.key_id.clone();
    let (notifications, store) = (state.notifications.clone(), state.store.clone());
    let incident = blocking(move || {
        let routing = notifications.routing(&tenant)?;
        store.transact(|tx| {
            let Some(mut incident) = incidents::get(tx, &tenant, &id)? else {
                return Ok(Err(ApiError::not_found(format_args!("incident `{id}`"))));
            };
            if !incident.is_open() {
                return Ok(Err(ApiError::Conflict(format!("incident `{id}` is resolved; open a new one"))));
            }
            if let Err(e) = input.check(&incident) {
                return Ok(Err(e.into()));
            }
            incident.update(&input, &by, now);
            incidents::record(tx, &tenant, &mut incident, &routing, now)?;
            Ok(Ok(incident))
        })?
    })
    .await?;
    state.store.flush().await?;
    state.notifications.wake_deliveries();
    Ok((StatusCode::CREATED, Json(incident)))
}
