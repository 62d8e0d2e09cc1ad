//! `POST /v1/events`: a batch of events, each validated on its own.

use std::collections::BTreeSet;

use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

use super::AppState;
use super::extract::{Caller, parse_json};
use super::forward::FORWARDED_BY;
use crate::error::{ApiError, ApiResult};
use crate::ingest::EventTypes;
use crate::store::Kept;
use crate::tenants::UsageLimits;
use crate::tenants::buckets::{Rate, seconds};
use crate::tenants::{Action, Resource};

pub fn routes(max_batch_bytes: usize) -> Router<AppState> {
    // Room over the limit, so an oversized batch gets our own error naming the limit.
    Router::new().route("/v1/events", post(ingest).layer(DefaultBodyLimit::max(max_batch_bytes + 1)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Batch {
    events: Vec<Value>,
}

/// Answers how many events were accepted and how many were duplicates, and each refused event
/// by its index. Accepted events are on disk before the answer. In a cluster, a batch for a
/// tenant another node holds is sent on to that node, which answers (see `forward`).
async fn ingest(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let key = caller.tenant(Resource::Events, Action::Create)?;
    let limits = state.config.ingest;
    let too_large = || ApiError::TooLarge(format!("a batch may be at most {} bytes", limits.max_batch_bytes));
    let body = body.map_err(|_| too_large())?;
    if body.len() > limits.max_batch_bytes {
        return Err(too_large());
    }
    if !headers.contains_key(FORWARDED_BY)
        && let Some(holder) = state.cluster.holder_address(&key.tenant_id)
    {
        match state.forwarder.events(&holder, &headers, body.clone()).await {
            Ok(answer) => {
                state.metrics.ingest_forwarded("answered");
                return Ok(answer);
            }
            Err(e) => {
                state.metrics.ingest_forwarded("failed");
                tracing::warn!(tenant = %key.tenant_id, %holder, error = %e, "the tenant's node did not answer; ingesting here");
            }
        }
    }
    let Batch { events } = parse_json(&body)?;
    if events.is_empty() {
        return Err(ApiError::field("events", "must hold at least one event"));
    }
    if events.len() > limits.max_batch_events {
        return Err(ApiError::TooLarge(format!(
            "the batch holds {} events; the limit is {}",
            events.len(),
            limits.max_batch_events
        )));
    }
    let usage = super::usage_limits(&state, &key.tenant_id)?;
    let count = events.len() as u64;
    if count > usage.events_burst {
        return Err(ApiError::Described {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "too_large",
            message: format!("the batch holds {count} events; the tenant may send {} at once", usage.events_burst),
            limit: Some("events_burst"),
        });
    }
    within_kept(&state, &key.tenant_id, &usage, &events)?;
    let rate = Rate { per_second: usage.events_per_second, burst: usage.events_burst as f64 };
    state.event_rates.try_take(key.tenant_id.clone(), count as f64, rate).map_err(|wait| ApiError::RateLimited {
        limit: "events_per_second",
        message: format!("the tenant sends events faster than its {} a second", usage.events_per_second),
        retry_after: seconds(wait),
    })?;
    let outcome = state.ingest.ingest(&key.tenant_id, &key.key_id, events).await?;
    if outcome.accepted > 0 {
        state.store.flush().await?;
    }
    Ok(Json(outcome).into_response())
}

/// Refuses a batch when the tenant keeps `max_events` events already, or keeps `max_customers`
/// customers and the batch names a new one (a batch that starts under a limit goes whole).
fn within_kept(state: &AppState, tenant: &str, usage: &UsageLimits, events: &[Value]) -> ApiResult<()> {
    let kept = |what| state.store.kept(tenant, what).map(|n| n as usize);
    super::within("max_events", kept(Kept::Events)?, usage.max_events, "events")?;
    let customers = kept(Kept::Customers)?;
    if (customers as u64) < usage.max_customers {
        return Ok(());
    }
    let named: BTreeSet<&str> = events.iter().filter_map(|e| e["customer_id"].as_str()).collect();
    for id in named {
        if state.store.customer::<IgnoredAny>(tenant, id)?.is_none() {
            return Err(super::limit_reached(
                "max_customers",
                format!(
                    "the tenant has {customers} customers, the most its limits allow (max_customers), and the batch \
                     names a new one, `{id}`"
                ),
            ));
        }
    }
    Ok(())
}

/// `GET /v1/event-types`: the tenant's event types as seen, and the system types.
pub async fn types(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<EventTypes>> {
    let key = caller.tenant(Resource::EventTypes, Action::Read)?;
    Ok(Json(state.ingest.event_types(&key.tenant_id)?))
}
