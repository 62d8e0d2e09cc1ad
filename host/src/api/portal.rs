//! Customer tokens and the portal's settings: `POST /v1/customers/{id}/tokens` mints a token for
//! one customer, `POST /v1/customer-tokens/revoke` revokes them all, `/v1/portal` holds where
//! the portal page may be embedded.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bytes::Bytes;
use jiff::SignedDuration;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::AppState;
use super::extract::{Caller, optional_json, parse_json};
use crate::duration::Duration;
use crate::error::{ApiError, ApiResult};
use crate::tenants::{Action, Claims, Resource};

/// The condition kinds a customer may be allowed: none that names a tenant's object (a plugin,
/// a cohort).
const KINDS: &[&str] =
    &["threshold", "percent_change", "anomaly", "forecast", "steps", "balance", "event_match", "inactivity", "offset"];
const DEFAULT_KINDS: &[&str] = &["threshold", "balance", "percent_change"];
const MAX_TTL: SignedDuration = SignedDuration::from_hours(24);
const MAX_RULES: u32 = 1000;
const MAX_ANCESTORS: usize = 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mint {
    #[serde(default = "default_ttl")]
    ttl: Duration,
    #[serde(default = "default_kinds")]
    allowed: Vec<String>,
    #[serde(default = "default_max_rules")]
    max_rules: u32,
}

impl Default for Mint {
    fn default() -> Self {
        Mint { ttl: default_ttl(), allowed: default_kinds(), max_rules: default_max_rules() }
    }
}

fn default_ttl() -> Duration {
    Duration(SignedDuration::from_hours(1))
}

fn default_kinds() -> Vec<String> {
    DEFAULT_KINDS.iter().map(|k| k.to_string()).collect()
}

fn default_max_rules() -> u32 {
    10
}

/// A token minted: shown once, with where the customer's portal opens with it.
#[derive(Serialize)]
pub struct Minted {
    token: String,
    #[serde(flatten)]
    claims: Claims,
    portal_url: String,
}

/// `POST /v1/customers/{id}/tokens`: a signed token for one customer; nothing is written.
pub async fn mint(
    State(state): State<AppState>,
    caller: Caller,
    Path(customer): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Minted>)> {
    let key = caller.tenant(Resource::CustomerTokens, Action::Create)?;
    let input: Mint = optional_json(&body)?;
    if input.ttl.0 <= SignedDuration::ZERO || input.ttl.0 > MAX_TTL {
        return Err(ApiError::field("ttl", "must be above 0 and at most 24h"));
    }
    for (i, kind) in input.allowed.iter().enumerate() {
        if !KINDS.contains(&kind.as_str()) {
            return Err(ApiError::field(
                format!("allowed[{i}]"),
                format!("a customer may be allowed only these condition kinds: {}", KINDS.join(", ")),
            ));
        }
    }
    if input.allowed.is_empty() {
        return Err(ApiError::field("allowed", "must name at least one condition kind"));
    }
    if !(1..=MAX_RULES).contains(&input.max_rules) {
        return Err(ApiError::field("max_rules", format!("must be 1 to {MAX_RULES}")));
    }
    if state.ingest.customer(&key.tenant_id, &customer)?.is_none() {
        return Err(ApiError::not_found(format_args!("customer `{customer}`")));
    }
    let now = state.clock.now();
    let claims = Claims {
        tenant_id: key.tenant_id.clone(),
        customer_id: customer,
        expires_at: now + input.ttl.0,
        allowed: input.allowed,
        max_rules: input.max_rules,
    };
    let token = state.tenants.portal(&key.tenant_id, now)?.mint(&claims);
    state.store.flush().await?;
    let portal_url = format!("/portal?token={token}");
    Ok((StatusCode::CREATED, Json(Minted { token, claims, portal_url })))
}

/// `POST /v1/customer-tokens/revoke`: a new signing key; every customer token and portal
/// session of the tenant stops working at once.
pub async fn revoke(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    let key = caller.tenant(Resource::CustomerTokens, Action::Delete)?;
    let now = state.clock.now();
    let mut portal = state.tenants.portal(&key.tenant_id, now)?;
    portal.rotate(now);
    state.tenants.put_portal(&key.tenant_id, &portal)?;
    state.store.flush().await?;
    Ok(Json(json!({ "rotated_at": now })))
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Origins whose pages may show the portal in a frame.
    frame_ancestors: Vec<String>,
}

pub async fn get(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Settings>> {
    let key = caller.tenant(Resource::Portal, Action::Read)?;
    let portal = state.tenants.portal(&key.tenant_id, state.clock.now())?;
    Ok(Json(Settings { frame_ancestors: portal.frame_ancestors }))
}

pub async fn put(State(state): State<AppState>, caller: Caller, body: Bytes) -> ApiResult<Json<Settings>> {
    let key = caller.tenant(Resource::Portal, Action::Update)?;
    let settings: Settings = parse_json(&body)?;
    if settings.frame_ancestors.len() > MAX_ANCESTORS {
        return Err(ApiError::field("frame_ancestors", format!("at most {MAX_ANCESTORS} origins")));
    }
    for (i, origin) in settings.frame_ancestors.iter().enumerate() {
        if !is_origin(origin) {
            return Err(ApiError::field(
                format!("frame_ancestors[{i}]"),
                format!("`{origin}` is not an origin like https://app.example.com or https://*.example.com:8443"),
            ));
        }
    }
    let mut portal = state.tenants.portal(&key.tenant_id, state.clock.now())?;
    portal.frame_ancestors = settings.frame_ancestors;
    state.tenants.put_portal(&key.tenant_id, &portal)?;
    state.store.flush().await?;
    Ok(Json(Settings { frame_ancestors: portal.frame_ancestors }))
}

/// `scheme://host[:port]`, the host perhaps starting `*.`: nothing that could end or extend the
/// policy it is written into.
fn is_origin(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once("://") else { return false };
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (rest, None),
    };
    let host = host.strip_prefix("*.").unwrap_or(host);
    matches!(scheme, "http" | "https")
        && !host.is_empty()
        && host
            .split('.')
            .all(|label| !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        && port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::is_origin;

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        for good in ["https://app.example.com", "http://localhost:8080", "https://*.example.com", "http://127.0.0.1:1"]
        {
            assert!(is_origin(good), "{good}");
        }
        for bad in [
            "app.example.com",
            "https://a.com/path",
            "https://a.com; script-src *",
            "*",
            "ftp://a.com",
            "https://",
            "https://a..b",
            "https://a.com:",
        ] {
            assert!(!is_origin(bad), "{bad}");
        }
    }
}
