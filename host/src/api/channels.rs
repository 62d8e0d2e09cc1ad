//! `/v1/channels`: where notifications go. Every save is checked in full, templates rendered
//! against a sample; preview renders without sending, test sends once.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;

use super::as_customer;
use super::extract::{Caller, optional_json, parse_json};
use super::{AppState, Items};
use crate::channels::payloads;
use crate::channels::render::{self, Payload};
use crate::channels::{Channel, ChannelSpec, Kind};
use crate::context::Context;
use crate::delivery::TestSend;
use crate::duration::Duration;
use crate::error::{ApiError, ApiResult};
use crate::notifications::subscriptions::Subscription;
use crate::plugins::{PluginError, PluginKind};
use crate::records::notification;
use crate::tenants::{Action, Permission, Resource, TenantKey};

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let key = caller.tenant(Resource::Channels, Action::Create)?;
    let spec: ChannelSpec = parse_json(&body)?;
    check(&state, key, &spec)?;
    check_auth_token(&spec, None)?;
    check_plugin(&state, key, &spec, None).await?;
    let most = super::usage_limits(&state, &key.tenant_id)?.max_channels;
    super::within("max_channels", state.channels.list(&key.tenant_id)?.len(), most, "channels")?;
    let mut channel = state.channels.create(&key.tenant_id, &key.key_id, spec, state.clock.now())?;
    as_customer::ask_confirmations(&state, &key.tenant_id, &mut channel, &headers).await?;
    super::report(&state, key, "channel.created", reported(&channel)).await?;
    super::routing_changed(&state, key).await?;
    Ok((StatusCode::CREATED, Json(view(&state, key, &channel))))
}

pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Items<Value>>> {
    let key = caller.tenant(Resource::Channels, Action::Read)?;
    let items = state
        .channels
        .list(&key.tenant_id)?
        .iter()
        .filter(|channel| key.sees(&channel.created_by))
        .map(|channel| view(&state, key, channel))
        .collect();
    Ok(Json(Items { items }))
}

pub async fn get(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let key = caller.tenant(Resource::Channels, Action::Read)?;
    Ok(Json(view(&state, key, &find(&state, key, &id)?)))
}

pub async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let key = caller.tenant(Resource::Channels, Action::Update)?;
    let spec: ChannelSpec = parse_json(&body)?;
    let channel = find(&state, key, &id)?;
    key.check_may(Resource::Channels, Action::Update, &channel.created_by, "this channel")?;
    check(&state, key, &spec)?;
    check_auth_token(&spec, Some(&channel))?;
    check_plugin(&state, key, &spec, Some(&channel)).await?;
    let mut channel = state.channels.replace(&key.tenant_id, channel, spec, state.clock.now())?;
    as_customer::ask_confirmations(&state, &key.tenant_id, &mut channel, &headers).await?;
    state.deliverer.forget_gate(&key.tenant_id, &id);
    super::report(&state, key, "channel.updated", reported(&channel)).await?;
    super::routing_changed(&state, key).await?;
    Ok(Json(view(&state, key, &channel)))
}

pub async fn delete(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let key = caller.tenant(Resource::Channels, Action::Delete)?;
    let channel = find(&state, key, &id)?;
    key.check_may(Resource::Channels, Action::Delete, &channel.created_by, "this channel")?;
    let mut users: Vec<String> =
        state.rules.list(&key.tenant_id)?.into_iter().filter(|r| r.spec.channels.contains(&id)).map(|r| r.id).collect();
    let subscriptions: Vec<Subscription> = state.store.subscriptions.list(&key.tenant_id)?;
    users.extend(subscriptions.into_iter().filter(|s| s.spec.channels.values().any(|c| c.contains(&id))).map(|s| s.id));
    super::refuse_while_used(&format!("channel `{id}`"), &users)?;
    state.channels.delete(&key.tenant_id, &id)?;
    state.deliverer.forget_gate(&key.tenant_id, &id);
    super::report(&state, key, "channel.deleted", reported(&channel)).await?;
    super::routing_changed(&state, key).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What to preview: a stored notification, or a context (a sample when neither is given).
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewInput {
    #[serde(default)]
    notification_id: Option<String>,
    #[serde(default)]
    context: Option<Context>,
    #[serde(default)]
    kind: Option<notification::Kind>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(serde::Serialize)]
pub struct Preview {
    payload: Payload,
    /// The custom fields and event properties the sample made up for the templates, by path.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    placeholders: BTreeMap<String, Value>,
}

/// `POST /v1/channels/{id}/preview`: the payload the channel would send, sending nothing.
pub async fn preview(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Preview>> {
    let key = caller.tenant(Resource::Channels, Action::Read)?;
    let channel = find(&state, key, &id)?;
    let input: PreviewInput = optional_json(&body)?;
    let (mut notification, mut placeholders) = match &input.notification_id {
        Some(nid) => (
            super::notifications::seen(&state, key, nid)?
                .ok_or_else(|| ApiError::field("notification_id", format!("there is no notification `{nid}`")))?,
            BTreeMap::new(),
        ),
        None => {
            let sample = render::sample_for(&channel.spec, &key.tenant_id, state.clock.now());
            (sample.notification, sample.placeholders)
        }
    };
    if let Some(context) = input.context {
        notification.context = context;
        placeholders.clear();
    }
    if let Some(kind) = input.kind {
        notification.kind = kind;
    }
    if input.message.is_some() {
        notification.message = input.message;
    }
    let payload =
        state.deliverer.renderer().render(&key.tenant_id, &channel, &notification, &Default::default()).await??;
    Ok(Json(Preview { payload: payloads::shown(&channel, payload), placeholders }))
}

/// `POST /v1/channels/check`: checks a channel that is not saved, as a save would (its
/// templates strictly, against the sample notification), and answers the payload it would send
/// for that sample. Nothing is stored or sent: editors call it as their author types.
pub async fn check_unsaved(State(state): State<AppState>, caller: Caller, body: Bytes) -> ApiResult<Json<Preview>> {
    let key = caller.tenant(Resource::Channels, Action::Read)?;
    let spec: ChannelSpec = parse_json(&body)?;
    check(&state, key, &spec)?;
    let now = state.clock.now();
    let channel = Channel::new(&key.key_id, spec, now);
    let sample = render::sample_for(&channel.spec, &key.tenant_id, now);
    let payload = state
        .deliverer
        .renderer()
        .render(&key.tenant_id, &channel, &sample.notification, &Default::default())
        .await??;
    Ok(Json(Preview { payload: payloads::shown(&channel, payload), placeholders: sample.placeholders }))
}

/// `POST /v1/channels/{id}/test`: sends a sample notification once and answers how it went.
pub async fn test(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<TestSend>> {
    let key = caller.tenant(Resource::Channels, Action::Test)?;
    let channel = find(&state, key, &id)?;
    key.check_may(Resource::Channels, Action::Test, &channel.created_by, "this channel")?;
    Ok(Json(state.deliverer.test(&key.tenant_id, &channel, &Default::default()).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateInput {
    /// How long the previous secrets keep signing beside the new one.
    #[serde(default = "default_overlap")]
    keep_previous_for: Duration,
}

fn default_overlap() -> Duration {
    Duration(jiff::SignedDuration::from_hours(24))
}

impl Default for RotateInput {
    fn default() -> Self {
        RotateInput { keep_previous_for: default_overlap() }
    }
}

const MAX_OVERLAP: jiff::SignedDuration = jiff::SignedDuration::from_hours(30 * 24);

/// `POST /v1/channels/{id}/rotate-secret`: a new signing secret; the old ones sign beside it
/// for `keep_previous_for`.
pub async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let key = caller.tenant(Resource::Channels, Action::Update)?;
    let channel = find(&state, key, &id)?;
    key.check_may(Resource::Channels, Action::Update, &channel.created_by, "this channel")?;
    if channel.spec.kind != Kind::Webhook {
        return Err(ApiError::Conflict("only webhook channels sign their messages".into()));
    }
    let input: RotateInput = optional_json(&body)?;
    let overlap = input.keep_previous_for.0;
    if overlap.is_negative() || overlap > MAX_OVERLAP {
        return Err(ApiError::field("keep_previous_for", "must be from 0s to 30d"));
    }
    let channel = state.channels.rotate(&key.tenant_id, channel, overlap, state.clock.now())?;
    state.store.flush().await?;
    Ok(Json(view(&state, key, &channel)))
}

/// What a `channel.*` system event says of the channel.
fn reported(channel: &Channel) -> Value {
    serde_json::json!({ "channel_id": channel.id, "name": channel.spec.name, "kind": channel.spec.kind })
}

fn view(state: &AppState, key: &TenantKey, channel: &Channel) -> Value {
    let with_secrets =
        key.permissions.reach(Permission { resource: Resource::Channels, action: Action::Update }).is_some();
    serde_json::to_value(channel.view(with_secrets, state.clock.now())).expect("channels serialize")
}

/// The channel `id`, if the caller sees it (a customer sees only its own).
fn find(state: &AppState, key: &TenantKey, id: &str) -> ApiResult<Channel> {
    state
        .channels
        .get(&key.tenant_id, id)?
        .filter(|channel| key.sees(&channel.created_by))
        .ok_or_else(|| ApiError::not_found(format_args!("channel `{id}`")))
}

/// An SMS channel needs its provider's auth token: given, or kept from the `stored` channel.
fn check_auth_token(spec: &ChannelSpec, stored: Option<&Channel>) -> ApiResult<()> {
    let given = spec.sms.as_ref().is_some_and(|sms| sms.auth_token.is_some());
    if spec.kind == Kind::Sms && !given && stored.is_none_or(|c| c.auth_token.is_none()) {
        return Err(ApiError::field("sms.auth_token", "is required: the provider's auth token"));
    }
    Ok(())
}

/// A plugin channel's plugin: one of the tenant's channel plugins, enabled, that accepts the
/// config (secrets included: given, or else kept from `existing`) and, for a sample
/// notification, asks only for hosts the channel allows.
async fn check_plugin(
    state: &AppState,
    key: &TenantKey,
    spec: &ChannelSpec,
    existing: Option<&Channel>,
) -> ApiResult<()> {
    if spec.kind != Kind::Plugin {
        return Ok(());
    }
    let name = spec.plugin.as_deref().unwrap_or_default();
    let plugin = state
        .plugins
        .get(&key.tenant_id, name)?
        .ok_or_else(|| ApiError::field("plugin", format!("there is no plugin named `{name}`")))?;
    if plugin.kind != PluginKind::Channel {
        return Err(ApiError::field("plugin", format!("plugin `{name}` is not a channel plugin")));
    }
    if !plugin.enabled {
        return Err(ApiError::field("plugin", format!("plugin `{name}` is disabled")));
    }
    let now = state.clock.now();
    let mut probe = Channel::new(&key.key_id, spec.clone(), now);
    if spec.secret_config.is_none()
        && let Some(existing) = existing
    {
        probe.secret_config = existing.secret_config.clone();
    }
    let tenant = state.tenants.get(&key.tenant_id)?.ok_or_else(|| ApiError::not_found("tenant"))?;
    match state.plugins.validate(&tenant, &plugin, &probe.plugin_config()).await?.result {
        Ok(()) => {}
        Err(PluginError::Failed(message)) => return Err(ApiError::field("config", probe.redact(&message))),
        Err(other) => {
            return Err(ApiError::field(
                "config",
                probe.redact(&format!("plugin `{name}` could not check it: {other}")),
            ));
        }
    }
    let sample = render::sample(&key.tenant_id, now);
    state.deliverer.renderer().render(&key.tenant_id, &probe, &sample, &Default::default()).await??;
    Ok(())
}

/// The channel's own checks, then what needs the deployment and the tenant's plugins.
fn check(state: &AppState, key: &TenantKey, spec: &ChannelSpec) -> ApiResult<()> {
    as_customer::check_channel(key, spec)?;
    spec.check(state.deliverer.senders().policy())?;
    super::time_intervals::check_names(state, &key.tenant_id, "active_during", &spec.active_during)?;
    if spec.kind == Kind::Email && !state.deliverer.senders().has_smtp() {
        return Err(ApiError::field("kind", "this deployment has no SMTP server configured ([smtp] in its config)"));
    }
    if let Some(name) = &spec.template_plugin {
        let at = "template_plugin";
        let plugin = state
            .plugins
            .get(&key.tenant_id, name)?
            .ok_or_else(|| ApiError::field(at, format!("there is no plugin named `{name}`")))?;
        if plugin.kind != PluginKind::Template {
            return Err(ApiError::field(at, format!("plugin `{name}` is a condition plugin, not a template")));
        }
        if !plugin.enabled {
            return Err(ApiError::field(at, format!("plugin `{name}` is disabled")));
        }
    }
    Ok(())
}
