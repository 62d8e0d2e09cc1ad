//! The web console: its pages and scripts (built into the binary), signing in and out, the
//! tenants' public status pages (`status`), the customer portal (`portal`), and the security
//! headers every response carries.
//! The console's scripts speak only to the public API (`/v1/...`), with the session cookie in
//! place of a bearer token.

mod portal;
mod status;

use std::sync::LazyLock;

use axum::extract::{Path, Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::AppState;
use crate::api::extract::{Caller, SESSION_COOKIE, over_tls, parse_json, session_token};
use crate::api::failures::Client;
use crate::error::{ApiError, ApiResult};
use crate::tenants::keys::sha256_hex;
use crate::tenants::{Principal, Session, customer_tokens};

/// The console's files: name, content type, contents.
const ASSETS: &[(&str, &str, &str)] = &[
    ("index.html", "text/html; charset=utf-8", include_str!("assets/index.html")),
    ("app.css", "text/css; charset=utf-8", include_str!("assets/app.css")),
    ("status.css", "text/css; charset=utf-8", include_str!("assets/status.css")),
    ("app.js", "text/javascript; charset=utf-8", include_str!("assets/app.js")),
    ("api.js", "text/javascript; charset=utf-8", include_str!("assets/api.js")),
    ("dom.js", "text/javascript; charset=utf-8", include_str!("assets/dom.js")),
    ("rules.js", "text/javascript; charset=utf-8", include_str!("assets/rules.js")),
    ("backtest.js", "text/javascript; charset=utf-8", include_str!("assets/backtest.js")),
    ("charts.js", "text/javascript; charset=utf-8", include_str!("assets/charts.js")),
    ("overview.js", "text/javascript; charset=utf-8", include_str!("assets/overview.js")),
    ("channels.js", "text/javascript; charset=utf-8", include_str!("assets/channels.js")),
    ("notifications.js", "text/javascript; charset=utf-8", include_str!("assets/notifications.js")),
    ("filters.js", "text/javascript; charset=utf-8", include_str!("assets/filters.js")),
    ("configform.js", "text/javascript; charset=utf-8", include_str!("assets/configform.js")),
    ("incidents.js", "text/javascript; charset=utf-8", include_str!("assets/incidents.js")),
    ("subscriptions.js", "text/javascript; charset=utf-8", include_str!("assets/subscriptions.js")),
    ("silences.js", "text/javascript; charset=utf-8", include_str!("assets/silences.js")),
    ("customers.js", "text/javascript; charset=utf-8", include_str!("assets/customers.js")),
    ("plugins.js", "text/javascript; charset=utf-8", include_str!("assets/plugins.js")),
    ("keys.js", "text/javascript; charset=utf-8", include_str!("assets/keys.js")),
    ("tenants.js", "text/javascript; charset=utf-8", include_str!("assets/tenants.js")),
    ("audit.js", "text/javascript; charset=utf-8", include_str!("assets/audit.js")),
    ("portal.html", "text/html; charset=utf-8", include_str!("assets/portal.html")),
    ("portal.js", "text/javascript; charset=utf-8", include_str!("assets/portal.js")),
];

/// Scripts, styles and requests only from Klaxon itself; no inline script, no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

/// The API's routes with the console's beside them, every response with the security headers.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(|headers: HeaderMap| async move { asset("index.html", &headers) }))
        .route("/console/session", get(current).post(sign_in).delete(sign_out))
        .route(
            "/console/{file}",
            get(|Path(file): Path<String>, headers: HeaderMap| async move { asset(&file, &headers) }),
        )
        .route("/portal", get(portal::page))
        .route("/portal/confirm", get(portal::confirm))
        .route("/status/{page}", get(status::page))
        .route("/status/{slug}/feed.atom", get(status::feed))
        .with_state(state.clone())
        .merge(crate::api::router(state))
        .layer(middleware::from_fn(security_headers))
}

/// A console file, revalidated on every load by its content's digest: an unchanged file is a
/// bodiless 304.
fn asset(name: &str, headers: &HeaderMap) -> Response {
    let Some(index) = ASSETS.iter().position(|(file, ..)| *file == name) else {
        return ApiError::NotFound(format!("the console has no file `{name}`")).into_response();
    };
    let (_, content_type, body) = ASSETS[index];
    let etag = &ETAGS[index];
    let cached = headers.get(IF_NONE_MATCH).is_some_and(|v| v == etag.as_str());
    let kept = [(CACHE_CONTROL, "no-cache".to_string()), (ETAG, etag.clone())];
    if cached {
        return (StatusCode::NOT_MODIFIED, kept).into_response();
    }
    (kept, [(CONTENT_TYPE, content_type)], body).into_response()
}

/// Each file's entity tag (the start of its SHA-256), in the order of `ASSETS`, worked out once.
static ETAGS: LazyLock<Vec<String>> =
    LazyLock::new(|| ASSETS.iter().map(|(_, _, body)| format!("\"{}\"", &sha256_hex(body)[..24])).collect());

/// The security headers, on every response. A response that brings its own policy (the portal,
/// which may be framed by the tenant's origins) keeps it, without `X-Frame-Options`.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if !headers.contains_key("content-security-policy") {
        headers.insert("content-security-policy", HeaderValue::from_static(CONTENT_SECURITY_POLICY));
        headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    }
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    /// A tenant API key or the platform admin token.
    token: String,
}

async fn sign_in(
    State(state): State<AppState>,
    client: Client,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    state.failures.check(client)?;
    let input: SignIn = parse_json(&body)?;
    let token = input.token.trim();
    if token.is_empty() {
        return Err(ApiError::field("token", "enter an API key or the platform admin token"));
    }
    if customer_tokens::claimed_tenant(token).is_some() {
        return Err(ApiError::field(
            "token",
            "this is a customer's token: it opens the customer portal (/portal?token=...)",
        ));
    }
    let Some((session_token, session, principal)) = state.tenants.open_session(token, state.clock.now())? else {
        state.failures.failed(client);
        return Err(ApiError::field("token", "this is not a valid API key or admin token (or it was revoked)"));
    };
    let cookie = session_cookie(&session_token, &session, state.clock.now(), &headers, false);
    let body = view(&state, &session, &principal)?;
    Ok(([(SET_COOKIE, cookie)], Json(body)).into_response())
}

async fn current(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let (session, principal) = session_token(&headers)
        .map(|token| state.tenants.session(token, state.clock.now()))
        .transpose()?
        .flatten()
        .ok_or_else(|| ApiError::Unauthorized("not signed in".into()))?;
    Ok(Json(view(&state, &session, &principal)?))
}

/// The cookie a new session travels in, for as long as the session lasts. A session used in a
/// frame on another site (the portal) needs `SameSite=None`, which browsers take only with
/// `Secure`: such embedding needs HTTPS.
fn session_cookie(
    token: &str,
    session: &Session,
    now: jiff::Timestamp,
    headers: &HeaderMap,
    cross_site: bool,
) -> String {
    let max_age = session.expires_at.duration_since(now).as_secs().max(0);
    let same_site = if cross_site {
        "None; Secure"
    } else if over_tls(headers) {
        "Strict; Secure"
    } else {
        "Strict"
    };
    format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite={same_site}; Max-Age={max_age}")
}

/// Signing out needs the session's CSRF token, like any change (`Caller` checks it).
async fn sign_out(State(state): State<AppState>, _caller: Caller, headers: HeaderMap) -> ApiResult<Response> {
    if let Some(token) = session_token(&headers) {
        state.tenants.close_session(token)?;
    }
    let expired = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    Ok((StatusCode::NO_CONTENT, [(SET_COOKIE, expired)]).into_response())
}

/// What the console is told about its session: who it is, and the CSRF token for changes.
fn view(state: &AppState, session: &Session, principal: &Principal) -> ApiResult<Value> {
    let Principal::Tenant(key) = principal else {
        return Ok(
            json!({ "principal": { "kind": "platform_admin" }, "csrf": session.csrf, "expires_at": session.expires_at }),
        );
    };
    let tenant = state.tenants.get(&key.tenant_id)?.map(|t| t.name).unwrap_or_default();
    let who = match &key.customer {
        Some(claims) => json!({ "kind": "customer", "tenant_name": tenant, "customer_id": claims.customer_id,
                                "key_id": key.key_id, "allowed": claims.allowed, "max_rules": claims.max_rules,
                                "permissions": key.permissions.table() }),
        None => json!({ "kind": "tenant", "tenant_id": key.tenant_id, "tenant_name": tenant,
                        "key_id": key.key_id, "role": key.role, "permissions": key.permissions.table() }),
    };
    Ok(json!({ "principal": who, "csrf": session.csrf, "expires_at": session.expires_at }))
}

#[cfg(test)]
mod tests {
    use super::ASSETS;

    #[test]
    fn the_page_preloads_every_module_so_none_waits_for_another() {
        let index = ASSETS.iter().find(|(name, ..)| *name == "index.html").unwrap().2;
        let console_modules = |name: &&str| name.ends_with(".js") && !["app.js", "portal.js"].contains(name);
        for (name, ..) in ASSETS.iter().filter(|(name, ..)| console_modules(name)) {
            let link = format!(r#"<link rel="modulepreload" href="/console/{name}">"#);
            assert!(index.contains(&link), "index.html lacks {link}");
        }
    }
}
