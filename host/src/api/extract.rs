//! Request extractors that fail with the API's JSON errors: the caller behind the bearer token,
//! and JSON bodies whose errors name the field. Handlers take a body as bytes and parse it
//! after the caller's role is checked, so a caller without the role is refused whatever it sent.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, COOKIE, HOST};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{AppState, failures};
use crate::error::{ApiError, ApiResult};
use crate::tenants::keys::digests_equal;
use crate::tenants::{Action, Permission, Principal, Resource, TenantKey};

/// The authenticated caller.
pub struct Caller(pub Principal);

/// The cookie a console session travels in.
pub const SESSION_COOKIE: &str = "klaxon_session";
/// The header a console request that changes anything carries its session's CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let client = failures::client(parts);
        state.failures.check(client)?;
        let caller = authenticate(parts, state);
        if matches!(caller, Err(ApiError::Unauthorized(_))) {
            state.failures.failed(client);
        }
        caller
    }
}

/// The caller behind the request's bearer token or console session (failures not counted).
pub fn authenticate(parts: &Parts, state: &AppState) -> ApiResult<Caller> {
    let Some(header) = parts.headers.get(AUTHORIZATION) else {
        return match session_token(&parts.headers) {
            Some(token) => from_session(parts, state, token).map(Caller),
            None => Err(ApiError::Unauthorized(
                "missing `Authorization: Bearer <key>` header (or a console session)".into(),
            )),
        };
    };
    let token = header
        .to_str()
        .ok()
        .and_then(|h| h.strip_prefix("Bearer "))
        .ok_or_else(|| ApiError::Unauthorized("the Authorization header must read `Bearer <key>`".into()))?;
    let principal = state
        .tenants
        .authenticate(token.trim(), state.clock.now())?
        .ok_or_else(|| ApiError::Unauthorized("unknown or revoked API key".into()))?;
    Ok(Caller(principal))
}

/// The console session token in the request's cookies, if any.
pub fn session_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(SESSION_COOKIE)?.strip_prefix('='))
}

/// The principal of a live console session. A request that may change something (any method
/// but GET and HEAD) must also carry the session's CSRF token.
fn from_session(parts: &Parts, state: &AppState, token: &str) -> ApiResult<Principal> {
    let (session, principal) = state
        .tenants
        .session(token, state.clock.now())?
        .ok_or_else(|| ApiError::Unauthorized("the console session has expired or was signed out".into()))?;
    if !parts.method.is_safe() {
        let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
        if !digests_equal(sent, &session.csrf) {
            return Err(ApiError::Forbidden(format!(
                "a console request that changes anything needs the `{CSRF_HEADER}` header of its session"
            )));
        }
    }
    Ok(principal)
}

impl Caller {
    /// Only the platform admin passes.
    pub fn platform_admin(&self) -> ApiResult<()> {
        match self.0 {
            Principal::PlatformAdmin => Ok(()),
            Principal::Tenant(_) => Err(ApiError::Forbidden("this route is for the platform admin token".into())),
        }
    }

    /// A tenant key whose role grants `action` on `resource` (for every object or only its
    /// own: a change to an object checks the owner with `TenantKey::check_may`).
    pub fn tenant(&self, resource: Resource, action: Action) -> ApiResult<&TenantKey> {
        match &self.0 {
            Principal::PlatformAdmin => {
                Err(ApiError::Forbidden("this route needs a tenant API key, not the platform admin token".into()))
            }
            Principal::Tenant(key) => {
                key.check(Permission { resource, action })?;
                Ok(key)
            }
        }
    }
}

/// Whether the request reached a TLS-terminating proxy in front of Klaxon as HTTPS: cookies are
/// then marked `Secure`, links start `https`.
pub fn over_tls(headers: &HeaderMap) -> bool {
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_ascii_lowercase();
    value("x-forwarded-proto") == "https" || value("forwarded").contains("proto=https")
}

/// Klaxon's address as the caller reached it (`https://alerts.example.com`), for links in what
/// it sends back; `None` without a `Host` header.
pub fn origin(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(HOST)?.to_str().ok()?;
    let scheme = if over_tls(headers) { "https" } else { "http" };
    Some(format!("{scheme}://{host}"))
}

/// Parses JSON, naming the path of the first bad field (`limits.fuel`, `rule.name`).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let inner = e.inner().to_string();
        let mut path = e.path().to_string();
        if let Some(missing) = inner.strip_prefix("missing field `").and_then(|r| r.split('`').next()) {
            path = if path == "." { missing.to_string() } else { format!("{path}.{missing}") };
        }
        if let Some(deeper) = within_tagged_enum(bytes, e.path(), &inner) {
            path = if path == "." { deeper } else { format!("{path}.{deeper}") };
        }
        let field = (path != ".").then_some(path);
        ApiError::Invalid { field, message: format!("invalid JSON body: {inner}") }
    })
}

/// Inside an internally tagged enum (`condition`, with its `kind`) serde reports the enum's
/// path, not the field's: it reads the enum's content before it knows the variant. When the
/// error quotes the bad value (`invalid type: string "lots"`, `unknown variant `bogus``, or our
/// own parsers' `` `someday` is not ... ``) or
/// names an unknown field, and exactly one place under that path holds it, that place is the
/// field (`value`, `kind`, `metric.property`).
fn within_tagged_enum(bytes: &[u8], at: &serde_path_to_error::Path, inner: &str) -> Option<String> {
    use serde_path_to_error::Segment;
    let mut node: Value = serde_json::from_slice(bytes).ok()?;
    for segment in at.iter() {
        node = match segment {
            Segment::Seq { index } => node.get_mut(*index)?.take(),
            Segment::Map { key } => node.get_mut(key)?.take(),
            _ => return None,
        };
    }
    node.as_object()?;
    let quoted = |prefix: &str, close: char| {
        let rest = inner.strip_prefix(prefix)?;
        Some(rest[..rest.find(close)?].to_string())
    };
    let mut found = Vec::new();
    if let Some(key) = quoted("unknown field `", '`') {
        search(&node, "", &mut |_, name| name == Some(key.as_str()), &mut found);
    } else if let Some(text) =
        quoted("invalid type: string \"", '"').or_else(|| quoted("unknown variant `", '`')).or_else(|| quoted("`", '`'))
    {
        search(&node, "", &mut |value, _| value.as_str() == Some(text.as_str()), &mut found);
    } else {
        let literal = quoted("invalid type: integer `", '`')
            .or_else(|| quoted("invalid type: floating point `", '`'))
            .or_else(|| quoted("invalid type: boolean `", '`'))?;
        let wanted: Value = serde_json::from_str(&literal).ok()?;
        search(&node, "", &mut |value, _| value == &wanted, &mut found);
    }
    (found.len() == 1).then(|| found.remove(0))
}

/// Every path under `node` (`a.b[0].c`) whose value, or whose key, `wanted` accepts.
fn search(node: &Value, path: &str, wanted: &mut dyn FnMut(&Value, Option<&str>) -> bool, found: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            for (key, value) in map {
                let here = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                if wanted(value, Some(key)) {
                    found.push(here.clone());
                }
                search(value, &here, wanted, found);
            }
        }
        Value::Array(items) => {
            for (i, value) in items.iter().enumerate() {
                let here = format!("{path}[{i}]");
                if wanted(value, None) {
                    found.push(here.clone());
                }
                search(value, &here, wanted, found);
            }
        }
        _ => {}
    }
}

/// A body that may be left empty: empty is `T::default()`, anything else is parsed as JSON.
pub fn optional_json<T: DeserializeOwned + Default>(bytes: &[u8]) -> ApiResult<T> {
    if bytes.is_empty() { Ok(T::default()) } else { parse_json(bytes) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        inner: Inner,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        fuel: u64,
    }

    fn field_of(body: &str) -> Option<String> {
        match parse_json::<Outer>(body.as_bytes()) {
            Err(ApiError::Invalid { field, .. }) => field,
            other => panic!("expected an invalid-body error, got {other:?}"),
        }
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Tagged {
        condition: Condition,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
    #[allow(dead_code)]
    enum Condition {
        Threshold { value: f64, metric: Metric },
        Other,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Metric {
        property: String,
        event_types: Vec<String>,
    }

    fn tagged_field_of(body: &str) -> Option<String> {
        match parse_json::<Tagged>(body.as_bytes()) {
            Err(ApiError::Invalid { field, .. }) => field,
            other => panic!("expected an invalid-body error, got {other:?}"),
        }
    }

    #[test]
    fn errors_inside_a_tagged_enum_name_the_field_not_the_enum() {
        let metric = r#""metric": {"property": "hours", "event_types": ["usage"]}"#;
        let field = |condition: &str| tagged_field_of(&format!(r#"{{"condition": {condition}}}"#));
        assert_eq!(
            field(&format!(r#"{{"kind": "threshold", "value": "lots", {metric}}}"#)).as_deref(),
            Some("condition.value")
        );
        assert_eq!(field(&format!(r#"{{"kind": "bogus", "value": 1, {metric}}}"#)).as_deref(), Some("condition.kind"));
        assert_eq!(
            field(&format!(r#"{{"kind": "threshold", "value": 1, "colour": 1, {metric}}}"#)).as_deref(),
            Some("condition.colour")
        );
        let deep = r#"{"kind": "threshold", "value": 1, "metric": {"property": 5, "event_types": []}}"#;
        assert_eq!(field(deep).as_deref(), Some("condition.metric.property"));
        // The same bad value in two places: no guess, the enum is named.
        let twice = r#"{"kind": "threshold", "value": true, "metric": {"property": "x", "event_types": [true]}}"#;
        assert_eq!(field(twice).as_deref(), Some("condition"));
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(field_of(r#"{"inner": {"fuel": 1}}"#).as_deref(), Some("name"));
        assert_eq!(field_of(r#"{"name": "a", "inner": {"fuel": "x"}}"#).as_deref(), Some("inner.fuel"));
        assert_eq!(field_of(r#"{"name": "a", "inner": {}}"#).as_deref(), Some("inner.fuel"));
        assert_eq!(field_of("not json"), None);
    }
}
