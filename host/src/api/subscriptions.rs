//! `/v1/subscriptions`: which group (or recipient) hears of which categories on which
//! channels, from which severity up. Routing reads them from the next notification on.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use super::extract::{Caller, parse_json};
use super::owned::{find, find_to_change, save};
use super::{AppState, Items, json};
use crate::delivery::TestSend;
use crate::error::{ApiError, ApiResult};
use crate::notifications::subscriptions::{Subscription, SubscriptionSpec};
use crate::recipients::Recipient;
use crate::tenants::{Action, Resource, TenantKey};

const WHAT: &str = "subscription";

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let key = caller.tenant(Resource::Subscriptions, Action::Create)?;
    let spec: SubscriptionSpec = parse_json(&body)?;
    check(&state, key, &spec)?;
    let subscription = save(&state.store.subscriptions, key, "sub", None, spec, state.clock.now())?;
    super::routing_changed(&state, key).await?;
    Ok((StatusCode::CREATED, Json(json(subscription.view()))))
}

pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Items<Value>>> {
    let key = caller.tenant(Resource::Subscriptions, Action::Read)?;
    let all: Vec<Subscription> = state.store.subscriptions.list(&key.tenant_id)?;
    Ok(Json(Items { items: all.iter().map(|s| json(s.view())).collect() }))
}

pub async fn get(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let key = caller.tenant(Resource::Subscriptions, Action::Read)?;
    let subscription: Subscription = find(&state.store.subscriptions, &key.tenant_id, &id, WHAT)?;
    Ok(Json(json(subscription.view())))
}

pub async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let key = caller.tenant(Resource::Subscriptions, Action::Update)?;
    let spec: SubscriptionSpec = parse_json(&body)?;
    let subscription =
        find_to_change(&state.store.subscriptions, key, (Resource::Subscriptions, Action::Update), &id, WHAT)?;
    check(&state, key, &spec)?;
    let subscription = save(&state.store.subscriptions, key, "sub", Some(subscription), spec, state.clock.now())?;
    super::routing_changed(&state, key).await?;
    Ok(Json(json(subscription.view())))
}

pub async fn delete(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let key = caller.tenant(Resource::Subscriptions, Action::Delete)?;
    find_to_change::<SubscriptionSpec>(
        &state.store.subscriptions,
        key,
        (Resource::Subscriptions, Action::Delete),
        &id,
        WHAT,
    )?;
    state.store.subscriptions.delete(&key.tenant_id, &id)?;
    super::routing_changed(&state, key).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One channel's test send.
#[derive(Serialize)]
pub struct ChannelTest {
    channel_id: String,
    /// The categories the subscription sends on this channel.
    categories: Vec<String>,
    #[serde(flatten)]
    send: TestSend,
}

/// `POST /v1/subscriptions/{id}/test`: a sample notification sent once to each of its
/// channels, addressed to its group or recipient; nothing is recorded.
pub async fn test(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Items<ChannelTest>>> {
    let key = caller.tenant(Resource::Subscriptions, Action::Test)?;
    let subscription: Subscription =
        find_to_change(&state.store.subscriptions, key, (Resource::Subscriptions, Action::Test), &id, WHAT)?;
    let mut by_channel: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (category, channels) in &subscription.spec.channels {
        for channel in channels {
            by_channel.entry(channel).or_default().push(category.clone());
        }
    }
    let audience = subscription.spec.audience();
    let mut items = Vec::new();
    for (channel_id, categories) in by_channel {
        let channel = state
            .channels
            .get(&key.tenant_id, channel_id)?
            .ok_or_else(|| ApiError::Conflict(format!("channel `{channel_id}` was deleted; edit the subscription")))?;
        let send = state.deliverer.test(&key.tenant_id, &channel, &audience).await?;
        items.push(ChannelTest { channel_id: channel_id.to_string(), categories, send });
    }
    Ok(Json(Items { items }))
}

/// The spec's own checks, then that what it names exists.
fn check(state: &AppState, key: &TenantKey, spec: &SubscriptionSpec) -> ApiResult<()> {
    spec.check()?;
    super::time_intervals::check_names(state, &key.tenant_id, "active_during", &spec.active_during)?;
    let tenant = &key.tenant_id;
    if let Some(recipient) = &spec.recipient
        && state.store.recipients.get::<Recipient>(tenant, recipient)?.is_none()
    {
        return Err(ApiError::field("recipient", format!("there is no recipient `{recipient}`")));
    }
    for (category, channels) in &spec.channels {
        super::categories::check_exists(state, tenant, &format!("channels.{category}"), category)?;
        for channel in channels {
            if state.channels.get(tenant, channel)?.is_none() {
                return Err(ApiError::field(
                    format!("channels.{category}"),
                    format!("there is no channel `{channel}`"),
                ));
            }
        }
    }
    Ok(())
}
