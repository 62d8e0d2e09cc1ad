//! The customer portal: a small page a tenant embeds in its own product, where one of its
//! customers manages alerts on its own usage. `/portal?token=...` trades a customer token for a
//! session cookie and sends the browser on to `/portal`, so the token leaves the address bar;
//! the page then speaks to the public API as the console does. The page may be framed only by
//! the origins the tenant listed (`/v1/portal`). `/portal/confirm` is the link mailed to each
//! address a customer gives an email channel.

use std::cell::RefCell;

use axum::extract::{Query, State};
use axum::http::header::{CONTENT_TYPE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::status::escape;
use super::{CONTENT_SECURITY_POLICY, asset, session_cookie};
use crate::api::AppState;
use crate::api::extract::session_token;
use crate::error::ApiResult;
use crate::tenants::customer_tokens;
use crate::tenants::{Principal, Tenants};

#[derive(Deserialize)]
pub struct Entry {
    token: Option<String>,
    /// Whose portal this is, when the session cookie does not say (a browser that keeps no
    /// cookies in frames): only which origins may frame the page follows from it.
    tenant: Option<String>,
}

/// `GET /portal`: with a customer token, opens a session and sends the browser on without the
/// token; without one, the page, framed as its tenant allows.
pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(entry): Query<Entry>,
) -> ApiResult<Response> {
    let now = state.clock.now();
    if let Some(token) = entry.token {
        let tenant = customer_tokens::claimed_tenant(&token);
        let opened = match &tenant {
            Some(_) => state.tenants.open_session(&token, now)?,
            None => None,
        };
        let ancestors = frame_ancestors(&state.tenants, tenant.as_deref())?;
        let Some((session_token, session, _)) = opened else {
            let message =
                "This link has expired or was revoked. Open the alerts page again from the service you came from.";
            return Ok(framed(notice(StatusCode::UNAUTHORIZED, "Link expired", message), &ancestors));
        };
        let cookie = session_cookie(&session_token, &session, now, &headers, !ancestors.is_empty());
        let location = format!("/portal?tenant={}", tenant.unwrap_or_default());
        let redirect = (StatusCode::SEE_OTHER, [(LOCATION, location), (SET_COOKIE, cookie)]);
        return Ok(framed(redirect.into_response(), &ancestors));
    }
    let tenant = match session_token(&headers).map(|token| state.tenants.session(token, now)).transpose()?.flatten() {
        Some((_, Principal::Tenant(key))) if key.customer.is_some() => Some(key.tenant_id),
        _ => entry.tenant,
    };
    let ancestors = frame_ancestors(&state.tenants, tenant.as_deref())?;
    Ok(framed(asset("portal.html", &headers), &ancestors))
}

#[derive(Deserialize)]
pub struct Confirm {
    tenant: String,
    channel: String,
    token: String,
}

/// `GET /portal/confirm`: the link mailed to an address a customer gave; following it lets
/// alerts go there.
pub async fn confirm(State(state): State<AppState>, Query(link): Query<Confirm>) -> ApiResult<Response> {
    let now = state.clock.now();
    let confirmed = RefCell::new(None);
    state.channels.update(&link.tenant, &link.channel, |stored| {
        let address = stored.confirm(&link.token, now);
        let changed = address.is_some();
        *confirmed.borrow_mut() = address;
        changed
    })?;
    state.store.flush().await?;
    Ok(match confirmed.into_inner() {
        Some(address) => notice(StatusCode::OK, "Confirmed", &format!("Alerts will be sent to {address}.")),
        None => notice(
            StatusCode::NOT_FOUND,
            "Link not valid",
            "This confirmation link is not valid any more: the address or its channel was changed or removed.",
        ),
    })
}

/// The origins a tenant lets frame its portal.
fn frame_ancestors(tenants: &Tenants, tenant: Option<&str>) -> ApiResult<Vec<String>> {
    let portal = match tenant {
        Some(tenant) => tenants.portal_if_any(tenant)?,
        None => None,
    };
    Ok(portal.map(|portal| portal.frame_ancestors).unwrap_or_default())
}

/// `response` with the console's policy, framing allowed to `ancestors` alone (none when empty).
fn framed(mut response: Response, ancestors: &[String]) -> Response {
    let allowed = if ancestors.is_empty() { "'none'".to_string() } else { ancestors.join(" ") };
    let policy = CONTENT_SECURITY_POLICY.replace("frame-ancestors 'none'", &format!("frame-ancestors {allowed}"));
    let policy = HeaderValue::from_str(&policy).expect("origins are checked when saved");
    response.headers_mut().insert("content-security-policy", policy);
    response
}

/// A page of one short message.
fn notice(status: StatusCode, title: &str, message: &str) -> Response {
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <link rel=\"stylesheet\" href=\"/console/app.css\"></head><body><main id=\"main\">\
         <h1>{title}</h1><p>{}</p></main></body></html>",
        escape(message)
    );
    (status, [(CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response()
}
