//! `/v1/recipients`: the people notifications reach, and their groups.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bytes::Bytes;
use serde_json::Value;

use super::extract::{Caller, parse_json};
use super::owned::{find, find_to_change, save};
use super::{AppState, Items, json};
use crate::error::ApiResult;
use crate::notifications::subscriptions::Subscription;
use crate::recipients::{Recipient, RecipientSpec};
use crate::tenants::{Action, Resource};

const WHAT: &str = "recipient";

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let key = caller.tenant(Resource::Recipients, Action::Create)?;
    let spec: RecipientSpec = parse_json(&body)?;
    spec.check()?;
    let recipient = save(&state.store.recipients, key, "rcp", None, spec, state.clock.now())?;
    state.store.flush().await?;
    Ok((StatusCode::CREATED, Json(json(recipient.view()))))
}

pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Items<Value>>> {
    let key = caller.tenant(Resource::Recipients, Action::Read)?;
    let all: Vec<Recipient> = state.store.recipients.list(&key.tenant_id)?;
    Ok(Json(Items { items: all.iter().map(|r| json(r.view())).collect() }))
}

pub async fn get(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let key = caller.tenant(Resource::Recipients, Action::Read)?;
    let recipient: Recipient = find(&state.store.recipients, &key.tenant_id, &id, WHAT)?;
    Ok(Json(json(recipient.view())))
}

pub async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let key = caller.tenant(Resource::Recipients, Action::Update)?;
    let spec: RecipientSpec = parse_json(&body)?;
    let recipient = find_to_change(&state.store.recipients, key, (Resource::Recipients, Action::Update), &id, WHAT)?;
    spec.check()?;
    let recipient = save(&state.store.recipients, key, "rcp", Some(recipient), spec, state.clock.now())?;
    state.store.flush().await?;
    Ok(Json(json(recipient.view())))
}

pub async fn delete(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let key = caller.tenant(Resource::Recipients, Action::Delete)?;
    find_to_change::<RecipientSpec>(&state.store.recipients, key, (Resource::Recipients, Action::Delete), &id, WHAT)?;
    let subscriptions: Vec<Subscription> = state.store.subscriptions.list(&key.tenant_id)?;
    let users: Vec<String> =
        subscriptions.into_iter().filter(|s| s.spec.recipient.as_deref() == Some(&id)).map(|s| s.id).collect();
    super::refuse_while_used(&format!("recipient `{id}`"), &users)?;
    state.store.recipients.delete(&key.tenant_id, &id)?;
    state.store.flush().await?;
    Ok(StatusCode::NO_CONTENT)
}
