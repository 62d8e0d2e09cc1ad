//! The audit trail. Every change made through the API (a POST, PUT, PATCH or DELETE that
//! succeeded, but for the operations that change nothing: ingest, checks, previews, test sends,
//! dry runs, backtests, backups) is kept with who made it (an API key, a console session, a
//! customer's token, the platform admin), from which address, the operation, the object, and
//! each field it changed with the old and the new value, as the API showed the object before
//! and after (values of secrets redacted). `GET /v1/audit` reads a tenant's trail (permission
//! `audit:read`, the admin role's), `GET /v1/admin/audit` the platform's (its tenants).

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::Json;
use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tower::ServiceExt;

use super::extract::{Caller, authenticate};
use super::{AppState, blocking, failures};
use crate::error::{ApiError, ApiResult};
use crate::tenants::Principal;
use crate::tenants::roles::{Action, Resource};

/// Operations that change nothing a tenant configured, though they are not reads.
const NOT_CHANGES: &[&str] = &[
    "/v1/events",
    "/v1/plugins/{name}/invoke",
    "/v1/clock",
    "/v1/admin/backup",
    "/v1/rules/{id}/evaluate",
    "/v1/rules/backtest",
    "/v1/backtests/{id}",
    "/v1/channels/check",
    "/v1/channels/{id}/preview",
    "/v1/channels/{id}/test",
    "/v1/subscriptions/{id}/test",
    "/console/session",
];

/// Fields that change with every write, whatever was asked.
const NOT_COMPARED: &[&str] = &["updated_at"];

/// The largest answer read to learn what a change made.
const MAX_VIEW_BYTES: usize = 4 << 20;

/// An operation's path in the OpenAPI description, and what its methods need.
struct Route {
    template: String,
    segments: Vec<String>,
    /// Method (lower case) -> `x-permission`.
    methods: HashMap<String, String>,
}

static ROUTES: LazyLock<Vec<Route>> = LazyLock::new(|| {
    let api: Value = serde_json::from_str(super::OPENAPI).expect("the OpenAPI description is JSON");
    let paths = api["paths"].as_object().expect("paths");
    paths
        .iter()
        .map(|(template, methods)| Route {
            template: template.clone(),
            segments: template.split('/').map(str::to_string).collect(),
            methods: methods
                .as_object()
                .expect("methods")
                .iter()
                .map(|(method, op)| (method.clone(), op["x-permission"].as_str().unwrap_or_default().to_string()))
                .collect(),
        })
        .collect()
});

/// The operation `path` is an instance of.
fn route_of(path: &str) -> Option<&'static Route> {
    let segments: Vec<&str> = path.split('/').collect();
    ROUTES.iter().find(|route| {
        route.segments.len() == segments.len()
            && route.segments.iter().zip(&segments).all(|(t, s)| t == s || (t.starts_with('{') && !s.is_empty()))
    })
}

fn readable(path: &str) -> bool {
    route_of(path).is_some_and(|route| route.methods.contains_key("get"))
}

/// Records the change a request makes, around the handler that makes it. `reader` is the API
/// without this layer, for reading the object before and after.
pub async fn record(state: AppState, reader: Router, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let changes = [Method::POST, Method::PUT, Method::PATCH, Method::DELETE].contains(&method);
    // Reads are passed on at once, without looking their route up.
    let route = changes
        .then(|| route_of(request.uri().path()))
        .flatten()
        .filter(|route| !NOT_CHANGES.contains(&route.template.as_str()));
    let Some(route) = route else { return next.run(request).await };
    let (parts, body) = request.into_parts();
    // Who: as the handler will see it; a request it refuses changes nothing.
    let Ok(Caller(principal)) = authenticate(&parts, &state) else {
        return next.run(Request::from_parts(parts, body)).await;
    };
    let path = parts.uri.path().to_string();
    // A POST to a list makes an object, which the answer shows; anything else changes the
    // object at its path (or, for an action on it, at its parent's).
    let creates = method == Method::POST && readable(&path) && !route.template.ends_with('}');
    let object_path = if creates {
        None
    } else if readable(&path) {
        Some(path.clone())
    } else {
        path.rsplit_once('/').map(|(parent, _)| parent.to_string()).filter(|parent| readable(parent))
    };
    let credentials: Vec<_> = [AUTHORIZATION, COOKIE]
        .into_iter()
        .filter_map(|name| parts.headers.get(&name).map(|value| (name, value.clone())))
        .collect();
    let read = |path: Option<String>| {
        let (reader, credentials) = (reader.clone(), credentials.clone());
        async move {
            let path = path?;
            let mut request = Request::get(&path);
            for (name, value) in credentials {
                request = request.header(name, value);
            }
            let response = reader.oneshot(request.body(Body::empty()).ok()?).await.ok()?;
            if response.status() != StatusCode::OK {
                return None;
            }
            serde_json::from_slice::<Value>(&to_bytes(response.into_body(), MAX_VIEW_BYTES).await.ok()?).ok()
        }
    };
    let address = failures::client(&parts).0.map(|address| address.to_string());
    let via_session = !parts.headers.contains_key(AUTHORIZATION);
    let before = read(object_path.clone()).await;
    let response = next.run(Request::from_parts(parts, body)).await;
    if !response.status().is_success() {
        return response;
    }
    let (response, after) = if creates {
        let (head, body) = response.into_parts();
        let Ok(bytes) = to_bytes(body, MAX_VIEW_BYTES).await else {
            return Response::from_parts(head, Body::empty());
        };
        let shown = serde_json::from_slice::<Value>(&bytes).ok();
        (Response::from_parts(head, Body::from(bytes)), shown)
    } else {
        (response, read(object_path.clone()).await)
    };
    let (tenant, actor) = match &principal {
        Principal::PlatformAdmin => (String::new(), json!({ "kind": "platform" })),
        Principal::Tenant(key) => {
            let actor = match (&key.customer, via_session) {
                (Some(claims), _) => json!({ "kind": "customer", "id": claims.customer_id }),
                (None, true) => json!({ "kind": "session", "id": key.key_id }),
                (None, false) => json!({ "kind": "key", "id": key.key_id }),
            };
            (key.tenant_id.clone(), actor)
        }
    };
    let permission = route.methods.get(&method.as_str().to_ascii_lowercase()).cloned().unwrap_or_default();
    let (resource, action) = match permission.split_once(':') {
        Some((resource, action)) => (resource.to_string(), action.split(':').next().unwrap_or(action).to_string()),
        None => (
            path.split('/').nth(2).unwrap_or_default().to_string(),
            match method {
                Method::POST if creates => "create",
                Method::DELETE => "delete",
                _ => "update",
            }
            .to_string(),
        ),
    };
    let object = object_path
        .as_deref()
        .and_then(|p| p.rsplit('/').next())
        .map(str::to_string)
        .or_else(|| after.as_ref().and_then(object_id));
    let mut changed = Vec::new();
    diff("", before.as_ref(), after.as_ref(), &mut changed);
    let now = state.clock.now();
    let entry = json!({
        "at": now,
        "actor": actor,
        "address": address,
        "operation": format!("{} {}", method, route.template),
        "resource": resource,
        "action": action,
        "object": object,
        "changes": changed,
    });
    let store = state.store.clone();
    let kept = tokio::task::spawn_blocking(move || store.keep_audit(&tenant, now, &entry)).await;
    if !matches!(kept, Ok(Ok(_))) {
        tracing::error!(operation = %route.template, "keeping the audit entry of a change failed");
    }
    response
}

/// The id of an object the API shows (its `id`, its `name`, or a tenant's in `tenant.id`).
fn object_id(view: &Value) -> Option<String> {
    [&view["id"], &view["name"], &view["tenant"]["id"]].into_iter().find_map(|v| v.as_str().map(str::to_string))
}

/// The fields that differ between `before` and `after` (objects compared field by field, other
/// values whole), each with both values; secrets' values redacted.
fn diff(at: &str, before: Option<&Value>, after: Option<&Value>, out: &mut Vec<Value>) {
    let field = |name: &str| if at.is_empty() { name.to_string() } else { format!("{at}.{name}") };
    match (before, after) {
        (Some(Value::Object(old)), Some(Value::Object(new))) => {
            let mut names: Vec<&String> = old.keys().chain(new.keys().filter(|k| !old.contains_key(*k))).collect();
            names.retain(|name| !NOT_COMPARED.contains(&name.as_str()));
            for name in names {
                diff(&field(name), old.get(name), new.get(name), out);
            }
        }
        (Some(Value::Object(old)), None) => {
            for (name, value) in old.iter().filter(|(name, _)| !NOT_COMPARED.contains(&name.as_str())) {
                diff(&field(name), Some(value), None, out);
            }
        }
        (None, Some(Value::Object(new))) => {
            for (name, value) in new.iter().filter(|(name, _)| !NOT_COMPARED.contains(&name.as_str())) {
                diff(&field(name), None, Some(value), out);
            }
        }
        (old, new) if old != new && !(old.is_none_or(Value::is_null) && new.is_none_or(Value::is_null)) => {
            let secret = is_secret(at);
            let shown = |value: Option<&Value>| match value {
                None => Value::Null,
                Some(value) if secret || holds_secret(value) => json!("[redacted]"),
                Some(value) => value.clone(),
            };
            out.push(json!({ "field": at, "old": shown(old), "new": shown(new) }));
        }
        _ => {}
    }
}

/// Whether a field holds a secret by its name (`secrets`, `token`, `auth_token`, `password`).
fn is_secret(field: &str) -> bool {
    let name = field.rsplit('.').next().unwrap_or(field).to_ascii_lowercase();
    ["secret", "token", "password"].iter().any(|word| name.contains(word))
}

/// Whether a value holds a secret by its look (a signing secret, an API key, the admin token),
/// wherever it is.
fn holds_secret(value: &Value) -> bool {
    match value {
        Value::String(text) => ["whsec_", "klx_", "klxadm_"].iter().any(|prefix| text.contains(prefix)),
        Value::Array(items) => items.iter().any(holds_secret),
        Value::Object(fields) => fields.iter().any(|(name, value)| is_secret(name) || holds_secret(value)),
        _ => false,
    }
}

/// `GET /v1/audit` and `GET /v1/admin/audit`: the filters and the page.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filters {
    /// The actor's id (a key's, a customer's).
    actor: Option<String>,
    resource: Option<String>,
    object: Option<String>,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    /// The `id` of the last entry of the page before.
    before: Option<String>,
    limit: Option<usize>,
}

/// The query as sent: read once the caller's role is checked.
type Filtering = Result<Query<Filters>, QueryRejection>;

pub async fn tenant(State(state): State<AppState>, caller: Caller, filters: Filtering) -> ApiResult<Json<Value>> {
    let key = caller.tenant(Resource::Audit, Action::Read)?;
    page(state, key.tenant_id.clone(), filters).await
}

pub async fn platform(State(state): State<AppState>, caller: Caller, filters: Filtering) -> ApiResult<Json<Value>> {
    caller.platform_admin()?;
    page(state, String::new(), filters).await
}

/// Up to `limit` entries (100 by default, at most 1,000) matching the filters, newest first.
async fn page(state: AppState, tenant: String, filters: Filtering) -> ApiResult<Json<Value>> {
    let Query(filters) = filters.map_err(|e| ApiError::field("query", e.body_text()))?;
    let limit = filters.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::field("limit", "must be 1 to 1000"));
    }
    let before = match &filters.before {
        Some(id) => Some(unhex(id).ok_or_else(|| ApiError::field("before", "must be an entry's id"))?),
        None => None,
    };
    blocking(move || {
        let mut items = Vec::new();
        let mut full = false;
        for entry in state.store.audit_newest_first(&tenant, before.as_deref()) {
            let (id, mut entry) = entry?;
            let at: Option<Timestamp> = entry["at"].as_str().and_then(|at| at.parse().ok());
            if filters.since.zip(at).is_some_and(|(since, at)| at < since) {
                break;
            }
            if filters.until.zip(at).is_some_and(|(until, at)| at >= until) {
                continue;
            }
            let wanted = filters.actor.as_ref().is_none_or(|a| entry["actor"]["id"] == a.as_str())
                && filters.resource.as_ref().is_none_or(|r| entry["resource"] == r.as_str())
                && filters.object.as_ref().is_none_or(|o| entry["object"] == o.as_str());
            if wanted {
                if let Some(fields) = entry.as_object_mut() {
                    let mut shown = Map::new();
                    shown.insert("id".into(), id.into());
                    shown.extend(std::mem::take(fields));
                    *fields = shown;
                }
                items.push(entry);
                if items.len() == limit {
                    full = true;
                    break;
                }
            }
        }
        let next_before = full.then(|| items.last().map(|entry| entry["id"].clone())).flatten();
        Ok(Json(json!({ "items": items, "next_before": next_before })))
    })
    .await
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    (text.len().is_multiple_of(2) && text.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok()).collect())
        .flatten()
}
