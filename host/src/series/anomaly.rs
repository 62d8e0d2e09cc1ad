//! Anomalies: a bucket's value against what its history leads one to expect. The history is
//! the same bucket of the previous seasons (days or weeks), or simply the buckets before it; the
//! expectation is their median, and the band around it is `sensitivity` robust deviations
//! (1.4826 × the median absolute deviation, which estimates a standard deviation without being
//! swayed by the anomalies the history itself holds).

use serde::{Deserialize, Serialize};

use super::aggregate::{Aggregate, Series};
use crate::context::Expected;

/// The size of the buckets a metric is judged in (aligned to UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Bucket {
    #[serde(rename = "5m")]
    FiveMinutes,
    #[serde(rename = "1h")]
    Hour,
    #[serde(rename = "1d")]
    Day,
}

impl Bucket {
    pub fn seconds(self) -> i64 {
        match self {
            Bucket::FiveMinutes => 300,
            Bucket::Hour => 3600,
            Bucket::Day => 86_400,
        }
    }
}

/// Which earlier buckets a bucket is compared with: those just before it, or the same bucket of
/// previous days or weeks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Seasonality {
    #[default]
    None,
    Daily,
    Weekly,
}

/// Which side of the band counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Deviation {
    Up,
    Down,
    #[default]
    Both,
}

/// The most buckets the history of an anomaly rule may span (12 weeks of hours).
pub const MAX_HISTORY_BUCKETS: i64 = 2016;

/// How a rule judges its buckets.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub bucket: Bucket,
    pub seasonality: Seasonality,
    /// How many earlier buckets (or seasons) make the history.
    pub history: u32,
    pub aggregate: Aggregate,
}

/// One bucket judged against its history.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Judgement {
    pub value: f64,
    /// How many earlier buckets the history had (of `Plan::history`).
    pub history: u32,
    /// None when the history is empty.
    pub expected: Option<Expected>,
}

impl Plan {
    /// The distance between a bucket and its first earlier counterpart.
    pub fn step(&self) -> i64 {
        match self.seasonality {
            Seasonality::None => self.bucket.seconds(),
            Seasonality::Daily => 86_400,
            Seasonality::Weekly => 7 * 86_400,
        }
    }

    /// How many buckets the history of one bucket spans.
    pub fn history_buckets(&self) -> i64 {
        i64::from(self.history) * self.step() / self.bucket.seconds()
    }

    /// The oldest bucket the judgement of `judged` reads.
    pub fn oldest(&self, judged: i64) -> i64 {
        judged - i64::from(self.history) * self.step()
    }

    /// Judges bucket `judged` of `series`: its value and the band its history sets, counting
    /// only earlier buckets since the series began (an empty bucket counts and sums to 0; for
    /// min, max and avg it is no value). None when the bucket itself has no value.
    pub fn judge(&self, series: &Series, judged: i64, sensitivity: f64) -> Option<Judgement> {
        let began = series.first_bucket()?;
        let value_at = |bucket: i64| series.bucket(bucket).value(self.aggregate);
        let value = value_at(judged)?;
        let mut history: Vec<f64> = (1..=i64::from(self.history))
            .map(|k| judged - k * self.step())
            .take_while(|bucket| *bucket >= began)
            .filter_map(value_at)
            .collect();
        let expected = band(&mut history, sensitivity);
        Some(Judgement { value, history: history.len() as u32, expected })
    }
}

impl Deviation {
    /// Whether `value` lies outside the band on the side that counts.
    pub fn breached(self, value: f64, band: &Expected) -> bool {
        match self {
            Deviation::Up => value > band.upper,
            Deviation::Down => value < band.lower,
            Deviation::Both => value > band.upper || value < band.lower,
        }
    }
}

/// The median of `values` (sorted in place); none for no values.
fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

/// The band `history` sets: its median, and `sensitivity` robust deviations either side (a
/// deviation of at least 5% of the median, so a perfectly steady history still tolerates
/// small wobbles).
fn band(history: &mut [f64], sensitivity: f64) -> Option<Expected> {
    let expected = median(history)?;
    let mut distances: Vec<f64> = history.iter().map(|x| (x - expected).abs()).collect();
    let mad = median(&mut distances).unwrap_or(0.0);
    let deviation = (1.4826 * mad).max(0.05 * expected.abs());
    Some(Expected { expected, lower: expected - sensitivity * deviation, upper: expected + sensitivity * deviation })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn plan(seasonality: Seasonality, history: u32) -> Plan {
        Plan { bucket: Bucket::Day, seasonality, history, aggregate: Aggregate::Sum }
    }

    #[test]
    fn the_band_is_the_median_and_robust_deviations_of_the_history() {
        let mut history = [10.0, 12.0, 11.0, 9.0, 100.0];
        let found = band(&mut history, 3.0).unwrap();
        // Median 11; distances 1, 1, 0, 2, 89: MAD 1, deviation 1.4826, but at least 0.55.
        assert_eq!(found.expected, 11.0);
        assert!((found.upper - (11.0 + 3.0 * 1.4826)).abs() < 1e-9, "{found:?}");
        assert!((found.lower - (11.0 - 3.0 * 1.4826)).abs() < 1e-9, "the outlier does not widen it");
        let steady = band(&mut [50.0, 50.0, 50.0], 2.0).unwrap();
        assert_eq!((steady.lower, steady.upper), (45.0, 55.0), "5% of the median at least");
        assert_eq!(band(&mut [], 3.0), None);
    }

    #[test]
    fn a_bucket_is_judged_against_the_same_bucket_of_earlier_seasons() {
        let mut series = Series::default();
        // Four weeks of days: Mondays (day 0 of each week) are ten times busier.
        for day in 0..28 {
            let value = if day % 7 == 0 { 1000.0 } else { 100.0 + (day % 3) as f64 };
            series.add(day * DAY, value, 0);
        }
        series.add(28 * DAY, 1010.0, 0);
        let weekly = plan(Seasonality::Weekly, 4).judge(&series, 28 * DAY, 3.0).unwrap();
        assert_eq!((weekly.value, weekly.history), (1010.0, 4));
        assert!(!Deviation::Both.breached(weekly.value, &weekly.expected.unwrap()), "{weekly:?}");
        let plain = plan(Seasonality::None, 6).judge(&series, 28 * DAY, 3.0).unwrap();
        assert!(Deviation::Up.breached(plain.value, &plain.expected.unwrap()), "without seasons a Monday stands out");
        assert!(!Deviation::Down.breached(plain.value, &plain.expected.unwrap()));

        // A new series has only the history it has seen; an empty day sums to 0.
        let mut young = Series::default();
        young.add(10 * DAY, 5.0, 0);
        young.add(12 * DAY, 7.0, 0);
        let judged = plan(Seasonality::None, 8).judge(&young, 12 * DAY, 3.0).unwrap();
        assert_eq!(judged.history, 2);
        assert_eq!(judged.expected.unwrap().expected, 2.5, "median of 0 and 5");
        assert_eq!(plan(Seasonality::None, 8).judge(&Series::default(), 0, 3.0), None);
    }
}
