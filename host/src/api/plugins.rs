//! `/v1/plugins`: upload, list, inspect, configure, delete and dry-run a tenant's plugins.

use axum::Json;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::extract::{Caller, parse_json};
use super::{AppState, Items};
use crate::context::Context;
use crate::error::{ApiError, ApiResult};
use crate::plugins::io::{DeliveryOutcome, Evaluation, HttpRequest, HttpResponse};
use crate::plugins::logs::{KeptLine, LogQuery};
use crate::plugins::{CallReport, Plugin, PluginKind, PluginPatch, PluginVersion};
use crate::tenants::PluginLimits;
use crate::tenants::{Action, Resource, Tenant};

pub fn routes(max_plugin_bytes: usize) -> Router<AppState> {
    Router::new()
        // Room over the limit, so an oversized upload gets our own error naming the limit.
        .route("/v1/plugins", post(upload).get(list).layer(DefaultBodyLimit::max(max_plugin_bytes + 1)))
        .route("/v1/plugins/{name}", get(show).patch(update).delete(remove))
        .route("/v1/plugins/{name}/versions", get(versions))
        .route("/v1/plugins/{name}/invoke", post(invoke))
        .route("/v1/plugins/{name}/logs", get(logs))
}

/// A plugin as the API shows it: its record, the version in use, the tier of the code it runs
/// (none until it is loaded) and the limits its calls get.
#[derive(Serialize)]
pub struct PluginView {
    #[serde(flatten)]
    plugin: Plugin,
    active_version: u32,
    compiled: Option<&'static str>,
    effective_limits: PluginLimits,
}

impl PluginView {
    fn new(state: &AppState, plugin: Plugin, tenant: &Tenant) -> Self {
        PluginView {
            active_version: plugin.active_version(),
            compiled: state.plugins.loaded_tier(&tenant.id, &plugin).map(|tier| tier.as_str()),
            effective_limits: tenant.plugin_limits.clamped_by(&plugin.limits),
            plugin,
        }
    }
}

#[derive(Deserialize)]
pub struct UploadQuery {
    name: Option<String>,
    kind: Option<String>,
}

async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<UploadQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let key = caller.tenant(Resource::Plugins, Action::Create)?;
    let Query(query) = query.map_err(|e| ApiError::field("query", e.body_text()))?;
    let limit = state.config.max_plugin_bytes;
    let body =
        body.map_err(|_| ApiError::TooLarge(format!("the component is over the upload limit of {limit} bytes")))?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if content_type != "application/wasm" {
        return Err(ApiError::UnsupportedMediaType(format!(
            "send the component with `Content-Type: application/wasm` (got `{content_type}`)"
        )));
    }
    if body.len() > limit {
        return Err(ApiError::TooLarge(format!("the component is over the upload limit of {limit} bytes")));
    }
    let name = query.name.ok_or_else(|| ApiError::field("name", "query parameter `name` is required"))?;
    let kind =
        query.kind.as_deref().ok_or_else(|| ApiError::field("kind", "query parameter `kind` is required")).and_then(
            |k| PluginKind::parse(k).ok_or_else(|| ApiError::field("kind", "must be `condition` or `template`")),
        )?;
    let tenant = tenant_of(&state, &key.tenant_id)?;
    let (plugin, version) = state.plugins.upload(key, &tenant, &name, kind, body).await?;
    tracing::info!(tenant = %key.tenant_id, plugin = %name, version = version.version, "plugin uploaded");
    super::report(&state, key, "plugin.uploaded", reported(&plugin, Some(version.version))).await?;
    state.cluster.changed(&key.tenant_id)?;
    state.store.flush().await?;
    Ok((StatusCode::CREATED, Json(json!({ "plugin": PluginView::new(&state, plugin, &tenant), "version": version }))))
}

async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Items<PluginView>>> {
    let key = caller.tenant(Resource::Plugins, Action::Read)?;
    let tenant = tenant_of(&state, &key.tenant_id)?;
    let items = state.plugins.list(&tenant.id)?.into_iter().map(|p| PluginView::new(&state, p, &tenant)).collect();
    Ok(Json(Items { items }))
}

async fn show(State(state): State<AppState>, caller: Caller, Path(name): Path<String>) -> ApiResult<Json<PluginView>> {
    let key = caller.tenant(Resource::Plugins, Action::Read)?;
    let tenant = tenant_of(&state, &key.tenant_id)?;
    Ok(Json(PluginView::new(&state, state.plugins.find(&tenant.id, &name)?, &tenant)))
}

async fn versions(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Items<PluginVersion>>> {
    let key = caller.tenant(Resource::Plugins, Action::Read)?;
    Ok(Json(Items { items: state.plugins.versions(&key.tenant_id, &name)? }))
}

async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<PluginView>> {
    let key = caller.tenant(Resource::Plugins, Action::Update)?;
    let patch: PluginPatch = parse_json(&body)?;
    let tenant = tenant_of(&state, &key.tenant_id)?;
    let (pinning, disabling) = (patch.pinned_version, patch.enabled == Some(false));
    let before = state.plugins.find(&tenant.id, &name)?;
    let plugin = state.plugins.patch(key, &tenant, &name, patch).await?;
    if let Some(pinned) = pinning.filter(|pinned| *pinned != before.pinned_version) {
        super::report(&state, key, "plugin.pinned", reported(&plugin, pinned)).await?;
    }
    if disabling && before.enabled {
        super::report(&state, key, "plugin.disabled", reported(&plugin, Some(plugin.active_version()))).await?;
    }
    state.cluster.changed(&key.tenant_id)?;
    state.store.flush().await?;
    Ok(Json(PluginView::new(&state, plugin, &tenant)))
}

async fn remove(State(state): State<AppState>, caller: Caller, Path(name): Path<String>) -> ApiResult<StatusCode> {
    let key = caller.tenant(Resource::Plugins, Action::Delete)?;
    let plugin = state.plugins.find(&key.tenant_id, &name)?;
    state.plugins.delete(key, &name).await?;
    super::report(&state, key, "plugin.deleted", reported(&plugin, None)).await?;
    state.cluster.changed(&key.tenant_id)?;
    state.store.flush().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/plugins/{name}/logs`: what the plugin logged in its calls (real ones and dry runs),
/// newest first, with each failed call's error; `level`, `since`, `until` and `limit` filter.
async fn logs(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    query: Result<Query<LogQuery>, QueryRejection>,
) -> ApiResult<Json<Items<KeptLine>>> {
    let key = caller.tenant(Resource::Plugins, Action::Read)?;
    let Query(query) = query.map_err(|e| ApiError::field("query", e.body_text()))?;
    Ok(Json(Items { items: state.plugins.logs(&key.tenant_id, &name, &query)? }))
}

/// A dry run: the body is the call's input (for a condition, an evaluation, or
/// `{"function": "validate", "config": ...}`; for a template, a context). The answer carries
/// the output or the error, with the fuel used, the time taken and the plugin's log.
async fn invoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let key = caller.tenant(Resource::Plugins, Action::Test)?;
    let tenant = tenant_of(&state, &key.tenant_id)?;
    let plugin = state.plugins.find(&tenant.id, &name)?;
    key.check_may(Resource::Plugins, Action::Test, &plugin.created_by, &format!("plugin `{name}`"))?;
    if !plugin.enabled {
        return Err(ApiError::Conflict(format!("plugin `{name}` is disabled; enable it to invoke it")));
    }
    let plugins = &state.plugins;
    let response = match plugin.kind {
        PluginKind::Condition => {
            let mut input: serde_json::Map<String, Value> = parse_json(&body)?;
            match input.remove("function").as_ref().map(|f| f.as_str()) {
                None | Some(Some("evaluate")) => {
                    let evaluation: Evaluation = parse_json(&serde_json::to_vec(&input).expect("JSON"))?;
                    report(plugins.evaluate(&tenant, &plugin, &evaluation).await?)
                }
                Some(Some("validate")) => {
                    #[derive(Deserialize)]
                    #[serde(deny_unknown_fields)]
                    struct Validate {
                        config: Value,
                    }
                    let v: Validate = parse_json(&serde_json::to_vec(&input).expect("JSON"))?;
                    report(
                        plugins.validate(&tenant, &plugin, &v.config).await?.map_output(|()| json!({ "valid": true })),
                    )
                }
                Some(_) => return Err(ApiError::field("function", "must be `evaluate` or `validate`")),
            }
        }
        PluginKind::Template => {
            let context: Context = parse_json(&body)?;
            report(plugins.render(&tenant, &plugin, &context).await?)
        }
        PluginKind::Channel => match parse_json::<ChannelCall>(&body)? {
            ChannelCall::Validate { config } => {
                report(plugins.validate(&tenant, &plugin, &config).await?.map_output(|()| json!({ "valid": true })))
            }
            ChannelCall::Requests { context, config } => report(
                plugins
                    .requests(&tenant, &plugin, &context, &config, &[])
                    .await?
                    .map_output(|requests| requests.iter().map(request_view).collect::<Vec<_>>()),
            ),
            ChannelCall::Classify { index, response, config } => {
                let response = HttpResponse {
                    status: response.status,
                    headers: response.headers,
                    body: response.body.into_bytes(),
                };
                report(
                    plugins.classify(&tenant, &plugin, index, &response, &config, &[]).await?.map_output(outcome_view),
                )
            }
        },
    };
    Ok(response)
}

/// What a channel plugin's dry run calls: `requests`, `classify` or `validate`.
#[derive(Deserialize)]
#[serde(tag = "function", rename_all = "snake_case", deny_unknown_fields)]
enum ChannelCall {
    Requests {
        context: Box<Context>,
        #[serde(default)]
        config: Value,
    },
    Classify {
        #[serde(default)]
        index: u32,
        response: ResponseInput,
        #[serde(default)]
        config: Value,
    },
    Validate {
        config: Value,
    },
}

/// An answer to classify, its body as text.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResponseInput {
    status: u16,
    #[serde(default)]
    headers: Vec<(String, String)>,
    #[serde(default)]
    body: String,
}

/// A request a channel asked for, its body as text.
pub fn request_view(request: &HttpRequest) -> Value {
    json!({ "method": request.method, "url": request.url, "headers": request.headers,
            "body": String::from_utf8_lossy(&request.body) })
}

/// What a channel made of an answer.
pub fn outcome_view(outcome: DeliveryOutcome) -> Value {
    match outcome {
        DeliveryOutcome::Delivered => json!({ "outcome": "delivered" }),
        DeliveryOutcome::Retry(after) => json!({ "outcome": "retry", "after_seconds": after }),
        DeliveryOutcome::Failed(reason) => json!({ "outcome": "failed", "reason": reason }),
    }
}

/// The dry run's answer: 200 with the output, or the error's status with the error; both with
/// fuel, time, whether a warm instance served it, and the log.
fn report<T: Serialize>(report: CallReport<T>) -> Response {
    let CallReport { result, fuel_used, duration_us, warm, logs } = report;
    let (status, key, value) = match result {
        Ok(output) => (StatusCode::OK, "output", serde_json::to_value(output).expect("outputs serialize")),
        Err(error) => {
            let (status, body) = ApiError::from(error).to_json();
            (status, "error", body)
        }
    };
    let body = json!({ key: value, "fuel_used": fuel_used, "duration_us": duration_us, "warm": warm, "logs": logs });
    (status, Json(body)).into_response()
}

/// What a `plugin.*` system event says of the plugin.
fn reported(plugin: &Plugin, version: Option<u32>) -> Value {
    json!({ "plugin": plugin.name, "kind": plugin.kind, "version": version })
}

fn tenant_of(state: &AppState, id: &str) -> ApiResult<Tenant> {
    state.tenants.get(id)?.ok_or_else(|| ApiError::Unauthorized("the key's tenant no longer exists".into()))
}
