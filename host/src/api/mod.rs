//! The HTTP API: routes, shared state, and one module per resource.

mod api_keys;
mod as_customer;
mod audit;
mod backtests;
mod backup;
mod categories;
mod channels;
mod clock;
mod cluster;
mod cohorts;
mod customers;
mod errors;
mod events;
pub mod extract;
pub mod failures;
pub mod forward;
mod incidents;
mod notifications;
mod owned;
mod plugins;
mod portal;
mod recipients;
mod roles;
mod rules;
mod service;
mod silences;
mod stats;
mod status_page;
mod subscriptions;
mod tenants;
mod time_intervals;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;

use crate::alerts::Alerts;
use crate::backtests::Backtests;
use crate::channels::Channels;
use crate::clock::{ManualClock, SharedClock};
use crate::cluster::Cluster;
use crate::cohorts::Cohorts;
use crate::config::Config;
use crate::delivery::Deliverer;
use crate::error::{ApiError, ApiResult};
use crate::ingest::Ingest;
use crate::metrics::Metrics;
use crate::notifications::Notifications;
use crate::plugins::Plugins;
use crate::records::system;
use crate::rules::Rules;
use crate::store::Store;
use crate::tenants::{TenantKey, Tenants, UsageLimits};

/// The OpenAPI description of every route, served at `/openapi.json`; the `klaxon` command line
/// reads its operations from it too.
pub const OPENAPI: &str = include_str!("../../openapi.json");

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub tenants: Tenants,
    pub plugins: Arc<Plugins>,
    pub ingest: Ingest,
    pub rules: Rules,
    pub alerts: Arc<Alerts>,
    pub backtests: Arc<Backtests>,
    pub cohorts: Arc<Cohorts>,
    pub notifications: Arc<Notifications>,
    pub cluster: Arc<Cluster>,
    /// Sends batches of events on to the node holding their tenant.
    pub forwarder: Arc<forward::Forwarder>,
    pub channels: Channels,
    pub deliverer: Arc<Deliverer>,
    pub clock: SharedClock,
    /// Set when the server runs with `--manual-clock`: `clock` is this one.
    pub manual_clock: Option<Arc<ManualClock>>,
    pub metrics: Arc<Metrics>,
    /// False once shutdown has begun, so load balancers stop sending traffic.
    pub ready: Arc<AtomicBool>,
    /// Failed authentication per client address.
    pub failures: Arc<failures::Failures>,
    /// Events each tenant may still ingest (`[tenant_limits] events_per_second`).
    pub event_rates: Arc<crate::tenants::buckets::Buckets<String>>,
}

pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/healthz", get(service::healthz))
        .route("/readyz", get(service::readyz))
        .route("/metrics", get(service::metrics))
        .route("/openapi.json", get(service::openapi))
        .route("/v1/tenants", post(tenants::create).get(tenants::list))
        .route("/v1/tenants/{id}", get(tenants::get).patch(tenants::update).delete(tenants::delete))
        .route("/v1/clock", get(clock::get).put(clock::set))
        .route("/v1/cluster", get(cluster::get))
        .route("/v1/admin/backup", post(backup::take))
        .route("/v1/api-keys", post(api_keys::create).get(api_keys::list))
        .route("/v1/api-keys/{id}", axum::routing::delete(api_keys::delete))
        .route("/v1/roles", post(roles::create).get(roles::list))
        .route("/v1/roles/{name}", get(roles::get).put(roles::replace).delete(roles::delete))
        .merge(plugins::routes(state.config.max_plugin_bytes))
        .route("/v1/customers", get(customers::list))
        .route("/v1/customers/{id}", get(customers::get).put(customers::put).delete(customers::delete))
        .route("/v1/customers/{id}/cohorts", get(customers::cohorts))
        .route("/v1/customers/{id}/tokens", post(portal::mint))
        .route("/v1/customer-tokens/revoke", post(portal::revoke))
        .route("/v1/portal", get(portal::get).put(portal::put))
        .merge(events::routes(state.config.ingest.max_batch_bytes))
        .route("/v1/event-types", get(events::types))
        .route("/v1/cohorts", post(cohorts::create).get(cohorts::list))
        .route("/v1/cohorts/{id}", get(cohorts::get).put(cohorts::replace).delete(cohorts::delete))
        .route("/v1/cohorts/{id}/members", get(cohorts::members))
        .route("/v1/rules", post(rules::create).get(rules::list))
        .route("/v1/rules/{id}", get(rules::get).put(rules::replace).delete(rules::delete))
        .route("/v1/rules/{id}/states", get(rules::states))
        .route("/v1/rules/{id}/stats", get(stats::rule))
        .route("/v1/stats", get(stats::tenant))
        .route("/v1/rules/{id}/evaluate", post(rules::evaluate))
        .route("/v1/rules/backtest", post(backtests::start))
        .route("/v1/backtests/{id}", get(backtests::get).delete(backtests::cancel))
        .route("/v1/channels", post(channels::create).get(channels::list))
        .route("/v1/channels/{id}", get(channels::get).put(channels::replace).delete(channels::delete))
        .route("/v1/channels/check", post(channels::check_unsaved))
        .route("/v1/channels/{id}/preview", post(channels::preview))
        .route("/v1/channels/{id}/test", post(channels::test))
        .route("/v1/channels/{id}/rotate-secret", post(channels::rotate_secret))
        .route("/v1/recipients", post(recipients::create).get(recipients::list))
        .route("/v1/recipients/{id}", get(recipients::get).put(recipients::replace).delete(recipients::delete))
        .route("/v1/categories", get(categories::list))
        .route("/v1/categories/{name}", get(categories::get).put(categories::put).delete(categories::delete))
        .route("/v1/subscriptions", post(subscriptions::create).get(subscriptions::list))
        .route(
            "/v1/subscriptions/{id}",
            get(subscriptions::get).put(subscriptions::replace).delete(subscriptions::delete),
        )
        .route("/v1/subscriptions/{id}/test", post(subscriptions::test))
        .route("/v1/silences", post(silences::create).get(silences::list))
        .route("/v1/silences/{id}", get(silences::get).delete(silences::delete))
        .route("/v1/time-intervals", post(time_intervals::create).get(time_intervals::list))
        .route(
            "/v1/time-intervals/{name}",
            get(time_intervals::get).put(time_intervals::replace).delete(time_intervals::delete),
        )
        .route("/v1/incidents", post(incidents::create).get(incidents::list))
        .route("/v1/incidents/{id}", get(incidents::get))
        .route("/v1/incidents/{id}/updates", post(incidents::update))
        .route("/v1/status-page", get(status_page::get).put(status_page::put))
        .route("/v1/notifications", get(notifications::list))
        .route("/v1/notifications/{id}", get(notifications::get))
        .route("/v1/notifications/{id}/attempts", get(notifications::attempts))
        .route("/v1/notifications/{id}/resend", post(notifications::resend))
        .route("/v1/audit", get(audit::tenant))
        .route("/v1/admin/audit", get(audit::platform))
        .fallback(|| async { ApiError::NotFound("no such route".into()) });
    // The audit trail reads what a change changed through the API itself, without the trail.
    let (reader, auditing) = (routes.clone().with_state(state.clone()), state.clone());
    routes
        .layer(middleware::from_fn(move |request, next| audit::record(auditing.clone(), reader.clone(), request, next)))
        .layer(CatchPanicLayer::custom(failed_on_a_bug))
        .layer(middleware::from_fn_with_state(state.clone(), count_responses))
        .with_state(state)
}

/// A handler that panicked (a bug) answers 500 with the API's error body, and the panic is
/// logged, instead of the connection being cut without an answer.
fn failed_on_a_bug(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let what = panic.downcast_ref::<String>().map(String::as_str).or_else(|| panic.downcast_ref::<&str>().copied());
    tracing::error!(panic = what.unwrap_or("(not text)"), "a request failed on a bug");
    ApiError::Described {
        status: axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        code: "internal",
        message: "the server failed on this request (a bug; it is logged)".into(),
        limit: None,
    }
    .into_response()
}

async fn count_responses(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    state.metrics.http_response(response.status().as_u16());
    response
}

/// What `tenant` may use: its own limits where set, the configuration's elsewhere.
pub fn usage_limits(state: &AppState, tenant: &str) -> ApiResult<UsageLimits> {
    let record = state.tenants.get(tenant)?.ok_or_else(|| ApiError::not_found(format_args!("tenant `{tenant}`")))?;
    Ok(record.limits.over(state.config.tenant_limits))
}

/// Refuses one more of the `what` a tenant holds `held` of when `limit` allows at most `most`.
pub fn within(limit: &'static str, held: usize, most: u64, what: &str) -> ApiResult<()> {
    if (held as u64) < most {
        return Ok(());
    }
    Err(limit_reached(limit, format!("the tenant has {held} {what}, the most its limits allow ({limit})")))
}

/// The refusal of what a count limit, `limit`, does not allow.
pub fn limit_reached(limit: &'static str, message: String) -> ApiError {
    ApiError::Described {
        status: axum::http::StatusCode::FORBIDDEN,
        code: "limit_reached",
        message,
        limit: Some(limit),
    }
}

/// A record's view as JSON.
pub fn json(view: impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(view).expect("records serialize")
}

/// Refuses to delete `what` while `users` (rules, subscriptions) name it.
pub fn refuse_while_used(what: &str, users: &[String]) -> ApiResult<()> {
    if users.is_empty() {
        return Ok(());
    }
    Err(ApiError::Conflict(format!("{what} is used by {}; take it out of them first", users.join(", "))))
}

/// A list response: `{"items": [...]}`.
#[derive(serde::Serialize)]
pub struct Items<T> {
    pub items: Vec<T>,
}

/// Runs blocking work (store transactions, plugin-free evaluation) off the async threads.
pub async fn blocking<T: Send + 'static>(work: impl FnOnce() -> ApiResult<T> + Send + 'static) -> ApiResult<T> {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

/// Reports a change the caller made as a system event, and matches it before the answer.
pub async fn report(
    state: &AppState,
    key: &TenantKey,
    event_type: &str,
    properties: serde_json::Value,
) -> ApiResult<()> {
    let event = system::event(event_type, None, properties, Some(&key.key_id), state.clock.now());
    state.store.emit(&key.tenant_id, event)?;
    let ingest = state.ingest.clone();
    blocking(move || Ok(ingest.run_system_events()?)).await?;
    Ok(())
}

/// After a subscription, silence or channel changed: routing reads them again, from the next
/// notification on, and the change is made durable.
pub async fn routing_changed(state: &AppState, key: &TenantKey) -> ApiResult<()> {
    state.notifications.routing_changed(&key.tenant_id)?;
    state.cluster.changed(&key.tenant_id)?;
    state.store.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn boom() -> &'static str {
        panic!("a bug")
    }

    #[tokio::test]
    async fn a_handler_that_panics_answers_500_with_the_error_body() {
        let app: Router = Router::new().route("/boom", get(boom)).layer(CatchPanicLayer::custom(failed_on_a_bug));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let response = reqwest::get(format!("http://{addr}/boom")).await.unwrap();
        assert_eq!(response.status(), 500);
        let body: serde_json::Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
        assert_eq!(body["error"]["code"], "internal", "{body}");
    }
}
