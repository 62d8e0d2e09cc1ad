//! `/v1/notifications`: what rules produced, newest first, waiting for (or past) delivery.

use std::collections::HashSet;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::extract::{Caller, optional_json};
use super::{AppState, Items};
use crate::channels::payloads;
use crate::channels::render::Payload;
use crate::delivery::{Attempt, Delivery};
use crate::error::{ApiError, ApiResult};
use crate::notifications::{self, NotificationView};
use crate::records::notification::Notification;
use crate::tenants::{Action, Resource, TenantKey};

#[derive(Serialize)]
pub struct Page {
    items: Vec<NotificationView>,
    /// Pass as `before` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_before: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<notifications::Query>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Page>> {
    let key = caller.tenant(Resource::Notifications, Action::Read)?;
    let Query(mut query) = query.map_err(|e| ApiError::field("query", e.body_text()))?;
    if let Some(claims) = &key.customer {
        query.customer_id = Some(claims.customer_id.clone());
    }
    if query.limit.is_some_and(|l| !(1..=notifications::MAX_PAGE).contains(&l)) {
        return Err(ApiError::field("limit", format!("must be 1 to {}", notifications::MAX_PAGE)));
    }
    let mut items = state.notifications.list(&key.tenant_id, &query, state.clock.now())?;
    let full = items.len() == query.page_size();
    let next_before = full.then(|| items[items.len() - 1].notification.id.clone());
    if key.customer.is_some() {
        let rules = customer_rules(&state, key)?;
        items.retain(|view| view.notification.rule_id.as_ref().is_some_and(|rule| rules.contains(rule)));
    }
    Ok(Json(Page { items, next_before }))
}

/// `GET /v1/notifications/{id}`: the notification, and per channel its payload and attempts.
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<NotificationView>> {
    let key = caller.tenant(Resource::Notifications, Action::Read)?;
    find(&state, key, &id).map(Json)
}

fn find(state: &AppState, key: &TenantKey, id: &str) -> ApiResult<NotificationView> {
    match state.notifications.view(&key.tenant_id, id, state.clock.now())? {
        Some(mut view) if sees(state, key, &view.notification)? => {
            // A plugin channel's requests carry its secrets: shown redacted.
            for delivery in &mut view.deliveries {
                if let Some(Payload::Requests { .. }) = &delivery.payload {
                    let channel = state.channels.get(&key.tenant_id, &delivery.channel_id)?;
                    let payload = delivery.payload.take();
                    delivery.payload =
                        channel.zip(payload).map(|(channel, payload)| payloads::shown(&channel, payload));
                }
            }
            Ok(view)
        }
        _ => Err(ApiError::not_found(format_args!("notification `{id}`"))),
    }
}

/// The notification `id`, if the caller sees it.
pub fn seen(state: &AppState, key: &TenantKey, id: &str) -> ApiResult<Option<Notification>> {
    match state.store.notification(&key.tenant_id, id)? {
        Some(notification) if sees(state, key, &notification)? => Ok(Some(notification)),
        _ => Ok(None),
    }
}

/// Whether the caller sees `notification`: a customer sees those of its own rules.
fn sees(state: &AppState, key: &TenantKey, notification: &Notification) -> ApiResult<bool> {
    if key.customer.is_none() {
        return Ok(true);
    }
    let Some(rule) = &notification.rule_id else { return Ok(false) };
    Ok(customer_rules(state, key)?.contains(rule))
}

/// The ids of the rules a customer made.
fn customer_rules(state: &AppState, key: &TenantKey) -> ApiResult<HashSet<String>> {
    Ok(state.rules.list(&key.tenant_id)?.into_iter().filter(|r| r.created_by == key.key_id).map(|r| r.id).collect())
}

/// An attempt and the channel it went to.
#[derive(Serialize)]
pub struct ChannelAttempt {
    channel_id: String,
    #[serde(flatten)]
    attempt: Attempt,
}

/// `GET /v1/notifications/{id}/attempts`: every attempt to every channel, oldest first.
pub async fn attempts(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Items<ChannelAttempt>>> {
    let key = caller.tenant(Resource::Notifications, Action::Read)?;
    let mut items: Vec<ChannelAttempt> = find(&state, key, &id)?
        .deliveries
        .into_iter()
        .flat_map(|d| {
            let channel_id = d.channel_id;
            d.attempts.into_iter().map(move |attempt| ChannelAttempt { channel_id: channel_id.clone(), attempt })
        })
        .collect();
    items.sort_by_key(|a| a.attempt.at);
    Ok(Json(Items { items }))
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResendInput {
    /// Only the delivery to this channel; all finished ones when absent.
    #[serde(default)]
    channel_id: Option<String>,
}

/// `POST /v1/notifications/{id}/resend`: delivers again (same `webhook-id`, rendered afresh).
pub async fn resend(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Items<Delivery>>)> {
    let key = caller.tenant(Resource::Notifications, Action::Resend)?;
    let view = find(&state, key, &id)?;
    let input: ResendInput = optional_json(&body)?;
    if let Some(channel) = &input.channel_id
        && !view.deliveries.iter().any(|d| d.channel_id == *channel)
    {
        return Err(ApiError::field("channel_id", format!("notification `{id}` went to no channel `{channel}`")));
    }
    let items = state.deliverer.resend(&key.tenant_id, &id, input.channel_id.as_deref()).await?;
    if items.is_empty() {
        return Err(ApiError::Conflict(if let Some(held) = view.notification.held.first() {
            format!("its channels held it for {}; resend that one", held.batch)
        } else if view.deliveries.is_empty() {
            "this notification's rule named no channel".into()
        } else {
            "its deliveries are still pending; a resend is for delivered or failed ones".into()
        }));
    }
    Ok((StatusCode::ACCEPTED, Json(Items { items })))
}
