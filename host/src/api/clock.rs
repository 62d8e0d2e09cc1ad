//! `/v1/clock`: the server's time, and moving it when the server runs with `--manual-clock`
//! (platform admin; for tests). Moving it runs the scheduled evaluations that fell due.

use axum::Json;
use axum::extract::State;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::extract::{Caller, parse_json};
use crate::error::{ApiError, ApiResult};

pub async fn get(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.platform_admin()?;
    Ok(Json(json!({ "now": state.clock.now(), "manual": state.manual_clock.is_some() })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetClock {
    now: jiff::Timestamp,
}

pub async fn set(State(state): State<AppState>, caller: Caller, body: Bytes) -> ApiResult<Json<Value>> {
    caller.platform_admin()?;
    let input: SetClock = parse_json(&body)?;
    let manual = state.manual_clock.as_ref().ok_or_else(|| {
        ApiError::Conflict("the server keeps the system's time; start it with --manual-clock to move time".into())
    })?;
    manual.set(input.now).map_err(|now| ApiError::field("now", format!("time only moves forward; it is {now}")))?;
    // Everything that fell due runs before the answer, so a test sees its effects at once.
    let ran = state.alerts.run_due().await?;
    state.deliverer.wake();
    Ok(Json(json!({ "now": input.now, "manual": true, "timers_run": ran })))
}
