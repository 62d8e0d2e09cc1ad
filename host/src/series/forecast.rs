//! Run-rate forecasts: where a metric summed since its period began is heading, from its hourly
//! buckets, and when it crosses a target. `linear` takes the mean rate over the last `lookback`;
//! `holt` smooths the hourly amounts with a level and a trend (Holt's double exponential
//! smoothing), so a rate that is climbing or falling is carried forward as it moves.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

pub use crate::context::ForecastMethod as Method;

/// The width of a forecast's buckets.
pub const HOUR: i64 = 3600;
/// Holt's smoothing of the level and of the trend.
const ALPHA: f64 = 0.5;
const BETA: f64 = 0.3;
/// The furthest ahead a crossing is looked for.
const MAX_HOURS_AHEAD: i64 = 400 * 24;

/// What a forecast found.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Projection {
    /// The sum since the period began, now.
    pub current: f64,
    /// The sum expected at the target time.
    pub projected: f64,
    /// When the sum reaches the target value, if it does within 400 days (now if it has).
    pub crossing_at: Option<Timestamp>,
}

/// The hourly amounts a forecast reads: `(bucket start in Unix seconds, amount)`, oldest first.
pub struct History<'a> {
    pub buckets: &'a [(i64, f64)],
    /// The period's start: the sum counts from here.
    pub period_start: i64,
    /// The first moment anything was counted.
    pub first_seen: i64,
}

impl History<'_> {
    /// The projection at `now` towards `target` by `by`, over the last `lookback` seconds; `None`
    /// with less than `min_history` seconds of history (nothing is guessed from a few points).
    pub fn project(
        &self,
        method: Method,
        now: Timestamp,
        lookback: i64,
        min_history: i64,
        target: f64,
        by: Timestamp,
    ) -> Option<Projection> {
        let t = now.as_second();
        if t - self.first_seen < min_history.max(1) {
            return None;
        }
        let current: f64 = self.buckets.iter().filter(|(start, _)| *start >= self.period_start).map(|(_, v)| v).sum();
        let ahead = |seconds: i64| Timestamp::from_second(t.saturating_add(seconds)).ok();
        let seconds_to_target = (by.as_second() - t).max(0);
        let (projected, crossing_at) = match method {
            Method::Linear => {
                let span = lookback.min(t - self.first_seen).max(1);
                let recent: f64 =
                    self.buckets.iter().filter(|(start, _)| *start + HOUR > t - span).map(|(_, v)| v).sum();
                let rate = recent / span as f64;
                let projected = current + rate * seconds_to_target as f64;
                let crossing = match () {
                    _ if current >= target => Some(now),
                    _ if rate > 0.0 => ahead(((target - current) / rate).ceil() as i64),
                    _ => None,
                };
                (projected, crossing)
            }
            Method::Holt => self.holt(t, lookback, current, target, seconds_to_target, now),
        };
        let crossing_at = crossing_at.filter(|at| at.as_second() - t <= MAX_HOURS_AHEAD * HOUR);
        Some(Projection { current, projected, crossing_at })
    }

    /// Holt's method over the complete hours of the lookback: the amount `h` hours ahead is
    /// `level + h × trend` (never below zero), summed hour by hour.
    fn holt(
        &self,
        t: i64,
        lookback: i64,
        current: f64,
        target: f64,
        seconds_to_target: i64,
        now: Timestamp,
    ) -> (f64, Option<Timestamp>) {
        let this_hour = t.div_euclid(HOUR) * HOUR;
        let first = (t - lookback).max(self.first_seen).div_euclid(HOUR) * HOUR;
        let amounts: Vec<f64> = (0..)
            .map(|i| first + i * HOUR)
            .take_while(|start| *start < this_hour)
            .map(|start| self.buckets.binary_search_by_key(&start, |(s, _)| *s).map_or(0.0, |i| self.buckets[i].1))
            .collect();
        let (mut level, mut trend) = match amounts.as_slice() {
            [] => (0.0, 0.0),
            [only] => (*only, 0.0),
            [a, b, ..] => (*a, b - a),
        };
        for amount in amounts.iter().skip(1) {
            let previous = level;
            level = ALPHA * amount + (1.0 - ALPHA) * (level + trend);
            trend = BETA * (level - previous) + (1.0 - BETA) * trend;
        }
        // The hour under way counts what it has; the forecast fills the rest of it.
        let elapsed = (t - this_hour) as f64 / HOUR as f64;
        let hours_to_target = seconds_to_target as f64 / HOUR as f64;
        let expected = |h: f64| (level + h * trend).max(0.0);
        let mut sum = current;
        let mut crossing = (current >= target).then_some(now);
        let mut projected = None;
        let mut position = 0.0;
        let mut h = 1.0;
        while position < MAX_HOURS_AHEAD as f64 && (crossing.is_none() || projected.is_none()) {
            let share = if position == 0.0 { 1.0 - elapsed } else { 1.0 };
            let amount = expected(h) * share;
            if projected.is_none() && position + share >= hours_to_target {
                projected = Some(sum + amount * ((hours_to_target - position) / share).clamp(0.0, 1.0));
            }
            if crossing.is_none() && amount > 0.0 && sum + amount >= target {
                let into = (target - sum) / amount * share;
                crossing = Timestamp::from_second(t + ((position + into) * HOUR as f64).ceil() as i64).ok();
            }
            sum += amount;
            position += share;
            h += 1.0;
            if trend <= 0.0 && expected(h) == 0.0 && projected.is_some() {
                break;
            }
        }
        (projected.unwrap_or(sum), crossing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(hours: i64) -> Timestamp {
        Timestamp::from_second(hours * HOUR).unwrap()
    }

    /// `per_hour` for each hour from hour 0 until `hours`.
    fn steady(per_hour: f64, hours: i64) -> Vec<(i64, f64)> {
        (0..hours).map(|h| (h * HOUR, per_hour)).collect()
    }

    #[test]
    fn a_steady_rate_crosses_where_the_arithmetic_says() {
        let buckets = steady(10.0, 48);
        let history = History { buckets: &buckets, period_start: 0, first_seen: 0 };
        // 480 by hour 48; 1000 is reached at hour 100.
        for method in [Method::Linear, Method::Holt] {
            let p = history.project(method, at(48), 24 * HOUR, HOUR, 1000.0, at(200)).unwrap();
            assert_eq!(p.current, 480.0);
            let crossing = p.crossing_at.unwrap().as_second();
            assert!((crossing - 100 * HOUR).abs() <= HOUR, "{method:?}: {crossing}");
            assert!((p.projected - 2000.0).abs() < 20.0, "{method:?}: {}", p.projected);
        }
    }

    #[test]
    fn a_slowing_rate_and_a_short_history_are_read_as_they_are() {
        // 10 an hour for a day, then nothing for a day.
        let buckets = steady(10.0, 24);
        let history = History { buckets: &buckets, period_start: 0, first_seen: 0 };
        let p = history.project(Method::Linear, at(48), 12 * HOUR, HOUR, 1000.0, at(200)).unwrap();
        assert_eq!((p.crossing_at, p.projected), (None, 240.0), "the last 12 hours had nothing");
        let holt = history.project(Method::Holt, at(48), 24 * HOUR, HOUR, 1000.0, at(200)).unwrap();
        assert_eq!(holt.crossing_at, None);
        // Two hours of history is too little when a day is asked for.
        let young = History { buckets: &buckets[..2], period_start: 0, first_seen: 0 };
        assert_eq!(young.project(Method::Linear, at(2), 24 * HOUR, 24 * HOUR, 10.0, at(200)), None);
    }

    #[test]
    fn holt_carries_a_rising_rate_forward() {
        // 1, 2, 3, ... an hour: a linear mean lags behind, Holt sees the trend.
        let buckets: Vec<(i64, f64)> = (0..24).map(|h| (h * HOUR, (h + 1) as f64)).collect();
        let history = History { buckets: &buckets, period_start: 0, first_seen: 0 };
        let linear = history.project(Method::Linear, at(24), 24 * HOUR, HOUR, 1000.0, at(100)).unwrap();
        let holt = history.project(Method::Holt, at(24), 24 * HOUR, HOUR, 1000.0, at(100)).unwrap();
        // The sum is 300; at 25, 26, ... an hour, 1000 comes after about 22 more hours.
        let holt_hours = (holt.crossing_at.unwrap().as_second() - 24 * HOUR) / HOUR;
        assert!((20..=24).contains(&holt_hours), "{holt_hours}");
        assert!(linear.crossing_at.unwrap() > holt.crossing_at.unwrap());
    }
}
