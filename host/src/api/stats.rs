//! `GET /v1/stats` and `GET /v1/rules/{id}/stats`: a tenant's activity over time, step by step,
//! from the counts kept per minute (`store::stats`), never from history. Alerts in alarm are
//! worked back from how many are in alarm now and each minute's change.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::extract::Caller;
use super::{AppState, blocking};
use crate::duration::Duration;
use crate::error::{ApiError, ApiResult};
use crate::records::stats::{Minute, quantile};
use crate::store::stats::{self, minute_of};
use crate::tenants::roles::{Action, Resource};

/// The most points one answer holds.
const MAX_POINTS: i64 = 1440;
/// The channels listed as failing most.
const FAILING_LISTED: usize = 5;

/// The range and step asked for: by default the last hour, in about 60 steps.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Asked {
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    /// The span before `until`, instead of `since`.
    last: Option<Duration>,
    step: Option<Duration>,
}

/// The range as answered: whole minutes from `first` up to `end` (minutes since the epoch), in
/// steps of `step` minutes (the last may be shorter).
struct Steps {
    first: i64,
    end: i64,
    step: i64,
}

impl Steps {
    fn of(asked: Result<Query<Asked>, QueryRejection>, now: Timestamp) -> ApiResult<Steps> {
        let Query(asked) = asked.map_err(|e| ApiError::field("query", e.body_text()))?;
        let until = asked.until.unwrap_or(now);
        let since = match (asked.since, asked.last) {
            (Some(_), Some(_)) => return Err(ApiError::field("last", "cannot be given with since")),
            (Some(since), None) => since,
            (None, Some(Duration(last))) if last.is_positive() => until - last,
            (None, Some(_)) => return Err(ApiError::field("last", "must be a positive duration")),
            (None, None) => until - SignedDuration::from_hours(1),
        };
        if since >= until {
            return Err(ApiError::field("since", "must be before until"));
        }
        if until.duration_since(since) > stats::KEPT {
            return Err(ApiError::field("since", "must be at most 31 days before until (the counts are kept 31 days)"));
        }
        let first = minute_of(since);
        let end = minute_of(until - SignedDuration::from_micros(1)) + 1;
        let step = match asked.step {
            Some(Duration(step)) => {
                let seconds = step.as_secs();
                if seconds < 60 || seconds % 60 != 0 || step.subsec_nanos() != 0 {
                    return Err(ApiError::field("step", "must be a whole number of minutes, at least 1m"));
                }
                seconds / 60
            }
            None => {
                let minutes = (until.duration_since(since).as_secs() as u64).div_ceil(60);
                minutes.div_ceil(60) as i64
            }
        };
        let points = ((end - first) as u64).div_ceil(step as u64) as i64;
        if points > MAX_POINTS {
            return Err(ApiError::field(
                "step",
                format!("gives {points} points; at most {MAX_POINTS} are answered: take a longer step"),
            ));
        }
        Ok(Steps { first, end, step })
    }

    /// Each step's first minute and its end.
    fn each(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        (self.first..self.end).step_by(self.step as usize).map(|start| (start, (start + self.step).min(self.end)))
    }

    fn minute(minute: i64) -> Timestamp {
        Timestamp::from_second(minute * 60).expect("minutes of the kept range")
    }

    fn step(&self) -> Duration {
        Duration(SignedDuration::from_mins(self.step))
    }
}

/// Each step of `steps`: its start, its counts added up, and the alerts in alarm (`rule`'s, or
/// all the tenant's) at its end. Read from the minutes' counts from the first step to now,
/// every count this node tallied written first; the alerts in alarm are worked back from how
/// many are in alarm now, taking off each later minute's change.
fn series(state: &AppState, tenant: &str, rule: Option<&str>, steps: &Steps, now: Timestamp) -> ApiResult<Vec<Step>> {
    state.store.flush_stats()?;
    let minutes = state.store.stats_between(tenant, steps.first, steps.end.max(minute_of(now) + 1))?;
    let mut in_alarm = state.alerts.in_alarm(tenant, rule)? as i64;
    let mut series = Vec::new();
    let mut position = minutes.len();
    let ends: Vec<(i64, i64)> = steps.each().collect();
    for &(start, end) in ends.iter().rev() {
        while position > 0 && minutes[position - 1].0 >= end {
            position -= 1;
            in_alarm -= minutes[position].1.alarm_change(rule);
        }
        let at_end = in_alarm.max(0) as u64;
        let mut sum = Minute::default();
        while position > 0 && minutes[position - 1].0 >= start {
            position -= 1;
            sum.add(&minutes[position].1);
            in_alarm -= minutes[position].1.alarm_change(rule);
        }
        series.push(Step { at: Steps::minute(start), sum, in_alarm: at_end });
    }
    series.reverse();
    Ok(series)
}

/// One step of a series.
struct Step {
    at: Timestamp,
    sum: Minute,
    in_alarm: u64,
}

#[derive(Serialize)]
struct Point {
    at: Timestamp,
    events: u64,
    notifications: u64,
    delivered: u64,
    failed: u64,
    latency_p50_ms: Option<f64>,
    latency_p99_ms: Option<f64>,
    in_alarm: u64,
}

#[derive(Serialize)]
struct Failing {
    channel_id: String,
    name: Option<String>,
    failed: u64,
}

#[derive(Serialize)]
pub struct TenantStats {
    since: Timestamp,
    until: Timestamp,
    step: Duration,
    points: Vec<Point>,
    /// The counts over the whole range, latency quantiles included.
    totals: Point,
    failing_channels: Vec<Failing>,
}

#[derive(Serialize)]
struct RulePoint {
    at: Timestamp,
    in_alarm: u64,
}

#[derive(Serialize)]
pub struct RuleStats {
    rule_id: String,
    since: Timestamp,
    until: Timestamp,
    step: Duration,
    points: Vec<RulePoint>,
}

fn point(at: Timestamp, sum: &Minute, in_alarm: u64) -> Point {
    Point {
        at,
        events: sum.events,
        notifications: sum.notifications,
        delivered: sum.delivered,
        failed: sum.failed,
        latency_p50_ms: quantile(&sum.latency, 0.5),
        latency_p99_ms: quantile(&sum.latency, 0.99),
        in_alarm,
    }
}

pub async fn tenant(
    State(state): State<AppState>,
    caller: Caller,
    asked: Result<Query<Asked>, QueryRejection>,
) -> ApiResult<Json<TenantStats>> {
    let key = caller.tenant(Resource::Notifications, Action::Read)?;
    let now = state.clock.now();
    let steps = Steps::of(asked, now)?;
    let tenant = key.tenant_id.clone();
    blocking(move || {
        let series = series(&state, &tenant, None, &steps, now)?;
        let mut total = Minute::default();
        let points = series
            .iter()
            .map(|step| {
                total.add(&step.sum);
                point(step.at, &step.sum, step.in_alarm)
            })
            .collect();
        let mut failing: Vec<(String, u64)> = total.failures.iter().map(|(c, n)| (c.clone(), *n)).collect();
        failing.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let failing_channels = failing
            .into_iter()
            .take(FAILING_LISTED)
            .map(|(channel_id, failed)| {
                let name =
                    state.store.channels.get::<crate::channels::Channel>(&tenant, &channel_id)?.map(|c| c.spec.name);
                Ok(Failing { channel_id, name, failed })
            })
            .collect::<ApiResult<_>>()?;
        let last_in_alarm = series.last().map_or(0, |step| step.in_alarm);
        Ok(Json(TenantStats {
            since: Steps::minute(steps.first),
            until: Steps::minute(steps.end),
            step: steps.step(),
            points,
            totals: point(Steps::minute(steps.first), &total, last_in_alarm),
            failing_channels,
        }))
    })
    .await
}

pub async fn rule(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    asked: Result<Query<Asked>, QueryRejection>,
) -> ApiResult<Json<RuleStats>> {
    let key = caller.tenant(Resource::Rules, Action::Read)?;
    super::rules::find(&state, key, &id)?;
    let now = state.clock.now();
    let steps = Steps::of(asked, now)?;
    let tenant = key.tenant_id.clone();
    blocking(move || {
        let series = series(&state, &tenant, Some(&id), &steps, now)?;
        let points = series.into_iter().map(|step| RulePoint { at: step.at, in_alarm: step.in_alarm }).collect();
        Ok(Json(RuleStats {
            rule_id: id.clone(),
            since: Steps::minute(steps.first),
            until: Steps::minute(steps.end),
            step: steps.step(),
            points,
        }))
    })
    .await
}
