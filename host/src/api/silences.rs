//! `/v1/silences`: matchers, a start, an end and a comment. Deleting a silence expires it; it
//! stays listed with state `expired`, as the record of who silenced what.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bytes::Bytes;
use serde_json::Value;

use super::extract::{Caller, parse_json};
use super::owned::{find, find_to_change, save};
use super::{AppState, Items, json};
use crate::error::ApiResult;
use crate::notifications::silences::{Silence, SilenceSpec, State as SilenceState};
use crate::tenants::{Action, Resource};

const WHAT: &str = "silence";

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let key = caller.tenant(Resource::Silences, Action::Create)?;
    let mut spec: SilenceSpec = parse_json(&body)?;
    let now = state.clock.now();
    spec.check(now)?;
    super::time_intervals::check_names(&state, &key.tenant_id, "during", &spec.during)?;
    let silence = save(&state.store.silences, key, "sil", None, spec, now)?;
    super::routing_changed(&state, key).await?;
    Ok((StatusCode::CREATED, Json(json(silence.view_at(now)))))
}

pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Items<Value>>> {
    let key = caller.tenant(Resource::Silences, Action::Read)?;
    let now = state.clock.now();
    let all: Vec<Silence> = state.store.silences.list(&key.tenant_id)?;
    Ok(Json(Items { items: all.iter().map(|s| json(s.view_at(now))).collect() }))
}

pub async fn get(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let key = caller.tenant(Resource::Silences, Action::Read)?;
    let silence: Silence = find(&state.store.silences, &key.tenant_id, &id, WHAT)?;
    Ok(Json(json(silence.view_at(state.clock.now()))))
}

/// Expires the silence now (a pending one never starts).
pub async fn delete(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let key = caller.tenant(Resource::Silences, Action::Delete)?;
    let now = state.clock.now();
    let silence: Silence = find_to_change(&state.store.silences, key, (Resource::Silences, Action::Delete), &id, WHAT)?;
    let mut spec = silence.spec.clone();
    if spec.state(now) != SilenceState::Expired {
        spec.ends_at = Some(now);
        spec.starts_at = spec.starts_at.map(|start| start.min(now));
    }
    let silence = save(&state.store.silences, key, "sil", Some(silence), spec, now)?;
    super::routing_changed(&state, key).await?;
    Ok(Json(json(silence.view_at(now))))
}
