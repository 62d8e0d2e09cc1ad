//! `POST /v1/rules/backtest`: an unsaved rule tried against the tenant's stored events; a long
//! one runs as a job (`GET` and `DELETE /v1/backtests/{id}`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use jiff::Timestamp;
use serde::Deserialize;

use super::AppState;
use super::extract::{Caller, parse_json};
use crate::backtests::{BacktestError, JobView, Request, Started};
use crate::duration::Duration;
use crate::error::{ApiError, ApiResult};
use crate::rules::RuleSpec;
use crate::tenants::{Action, Resource};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BacktestInput {
    /// The same body as `POST /v1/rules`.
    rule: RuleSpec,
    /// The range's start, or `last`: how far back from `until` it starts.
    #[serde(default)]
    since: Option<Timestamp>,
    #[serde(default)]
    last: Option<Duration>,
    /// Now when absent.
    #[serde(default)]
    until: Option<Timestamp>,
}

impl From<BacktestError> for ApiError {
    fn from(e: BacktestError) -> Self {
        match e {
            BacktestError::Invalid { field, message } => ApiError::field(field, message),
            BacktestError::TooManyJobs => ApiError::Described {
                status: StatusCode::TOO_MANY_REQUESTS,
                code: "too_many_jobs",
                message: e.to_string(),
                limit: Some("backtest_jobs"),
            },
            BacktestError::Store(e) => ApiError::Store(e),
            BacktestError::Cancelled | BacktestError::Sandbox(_) => ApiError::Described {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                code: "internal",
                message: e.to_string(),
                limit: None,
            },
        }
    }
}

/// `POST /v1/rules/backtest`: 200 with the report, or 202 with the job a long backtest became.
pub async fn start(State(state): State<AppState>, caller: Caller, body: Bytes) -> ApiResult<Response> {
    let key = caller.tenant(Resource::Rules, Action::Test)?;
    let input: BacktestInput = parse_json(&body)?;
    super::rules::check(&state, key, &input.rule).await.map_err(|e| match e {
        ApiError::Invalid { field, message } => {
            ApiError::Invalid { field: Some(field.map_or("rule".into(), |f| format!("rule.{f}"))), message }
        }
        other => other,
    })?;
    let until = input.until.unwrap_or_else(|| state.clock.now());
    let since = match (input.since, input.last) {
        (Some(since), None) => since,
        (None, Some(last)) if last.0.is_positive() => {
            until.checked_sub(last.0).map_err(|_| ApiError::field("last", "reaches before the earliest time"))?
        }
        (None, Some(_)) => return Err(ApiError::field("last", "must be positive, for example 7d")),
        (None, None) => return Err(ApiError::field("since", "give `since` (a time) or `last` (a duration)")),
        (Some(_), Some(_)) => return Err(ApiError::field("last", "give `since` or `last`, not both")),
    };
    let request = Request { tenant: key.tenant_id.clone(), spec: input.rule, since, until };
    Ok(match state.backtests.start(request).await? {
        Started::Done(report) => Json(report).into_response(),
        Started::Job(job) => {
            let location = format!("/v1/backtests/{}", job.id);
            (StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(job.view())).into_response()
        }
    })
}

/// `GET /v1/backtests/{id}`: a job's progress, and its report once done.
pub async fn get(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<JobView>> {
    let key = caller.tenant(Resource::Rules, Action::Test)?;
    let job = state.backtests.job(&key.tenant_id, &id).ok_or_else(|| ApiError::not_found("backtest"))?;
    Ok(Json(job.view()))
}

/// `DELETE /v1/backtests/{id}`: stops a running job, or forgets a finished one.
pub async fn cancel(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<JobView>> {
    let key = caller.tenant(Resource::Rules, Action::Test)?;
    let job = state.backtests.cancel(&key.tenant_id, &id).ok_or_else(|| ApiError::not_found("backtest"))?;
    Ok(Json(job.view()))
}
