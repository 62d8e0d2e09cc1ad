//! `/v1/time-intervals`: named calendar ranges in a time zone, which silences recur in
//! (`during`) and subscriptions and channels are active in (`active_during`). Keyed by name; one
//! still named cannot be deleted.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bytes::Bytes;
use serde_json::Value;

use super::extract::{Caller, parse_json};
use super::owned::{find, find_to_change};
use super::{AppState, Items, json};
use crate::error::{ApiError, ApiResult};
use crate::notifications::silences::{Silence, State as SilenceState};
use crate::notifications::subscriptions::Subscription;
use crate::records::Owned;
use crate::tenants::{Action, Resource, TenantKey};
use crate::time_intervals::TimeIntervalSpec;

const WHAT: &str = "time interval";

type TimeInterval = Owned<TimeIntervalSpec>;

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let key = caller.tenant(Resource::TimeIntervals, Action::Create)?;
    let spec: TimeIntervalSpec = parse_json(&body)?;
    spec.check()?;
    if state.store.time_intervals.get::<TimeInterval>(&key.tenant_id, &spec.name)?.is_some() {
        return Err(ApiError::Conflict(format!("there is a time interval named `{}` already", spec.name)));
    }
    let interval = Owned::new(spec.name.clone(), spec, &key.key_id, state.clock.now());
    save(&state, key, &interval).await?;
    Ok((StatusCode::CREATED, Json(view(&state, &interval))))
}

pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Items<Value>>> {
    let key = caller.tenant(Resource::TimeIntervals, Action::Read)?;
    let all: Vec<TimeInterval> = state.store.time_intervals.list(&key.tenant_id)?;
    Ok(Json(Items { items: all.iter().map(|interval| view(&state, interval)).collect() }))
}

pub async fn get(State(state): State<AppState>, caller: Caller, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    let key = caller.tenant(Resource::TimeIntervals, Action::Read)?;
    let interval: TimeInterval = find(&state.store.time_intervals, &key.tenant_id, &name, WHAT)?;
    Ok(Json(view(&state, &interval)))
}

pub async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let key = caller.tenant(Resource::TimeIntervals, Action::Update)?;
    let spec: TimeIntervalSpec = parse_json(&body)?;
    let existing: TimeInterval =
        find_to_change(&state.store.time_intervals, key, (Resource::TimeIntervals, Action::Update), &name, WHAT)?;
    if spec.name != name {
        return Err(ApiError::field("name", format!("a time interval keeps its name (`{name}`)")));
    }
    spec.check()?;
    let interval = Owned { spec, updated_at: state.clock.now(), ..existing };
    save(&state, key, &interval).await?;
    Ok(Json(view(&state, &interval)))
}

pub async fn delete(State(state): State<AppState>, caller: Caller, Path(name): Path<String>) -> ApiResult<StatusCode> {
    let key = caller.tenant(Resource::TimeIntervals, Action::Delete)?;
    find_to_change::<TimeIntervalSpec>(
        &state.store.time_intervals,
        key,
        (Resource::TimeIntervals, Action::Delete),
        &name,
        WHAT,
    )?;
    let now = state.clock.now();
    let silences: Vec<Silence> = state.store.silences.list(&key.tenant_id)?;
    let mut users: Vec<String> = silences
        .into_iter()
        .filter(|s| s.spec.state(now) != SilenceState::Expired && s.spec.during.contains(&name))
        .map(|s| s.id)
        .collect();
    let subscriptions: Vec<Subscription> = state.store.subscriptions.list(&key.tenant_id)?;
    users.extend(subscriptions.into_iter().filter(|s| s.spec.active_during.contains(&name)).map(|s| s.id));
    let channels = state.channels.list(&key.tenant_id)?;
    users.extend(channels.into_iter().filter(|c| c.spec.active_during.contains(&name)).map(|c| c.id));
    super::refuse_while_used(&format!("time interval `{name}`"), &users)?;
    state.store.time_intervals.delete(&key.tenant_id, &name)?;
    super::routing_changed(&state, key).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn save(state: &AppState, key: &TenantKey, interval: &TimeInterval) -> ApiResult<()> {
    state.store.time_intervals.put(&key.tenant_id, &interval.id, interval)?;
    super::routing_changed(state, key).await
}

/// An interval as the API shows it, with whether it holds now and when it next begins.
fn view(state: &AppState, interval: &TimeInterval) -> Value {
    let now = state.clock.now();
    let schedule = interval.spec.schedule();
    let mut view = json(interval.view());
    view["holds_now"] = schedule.contains(now).into();
    view["next_start"] = json(schedule.next_start(now));
    view
}

/// Refuses a name in `names` (at `field[i]`) that is not one of the tenant's time intervals.
pub fn check_names(state: &AppState, tenant: &str, field: &str, names: &[String]) -> ApiResult<()> {
    for (i, name) in names.iter().enumerate() {
        if state.store.time_intervals.get::<TimeInterval>(tenant, name)?.is_none() {
            return Err(ApiError::field(format!("{field}[{i}]"), format!("there is no time interval `{name}`")));
        }
    }
    Ok(())
}
