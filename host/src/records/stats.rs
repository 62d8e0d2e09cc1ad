//! What Klaxon counts of a tenant in each minute, for `GET /v1/stats`: events kept,
//! notifications made, delivery attempts by outcome with the latency of those delivered, the
//! net change of alerts in alarm by rule, and failed attempts by channel. Counted where they
//! happen and added together per minute, never read back from history.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The latency buckets grow by this factor: a quantile read from them is within 25% of the
/// true one.
const GROWTH: f64 = 1.25;
/// The last bucket (about 3.8 days): every latency above falls in it.
const LAST_BUCKET: u8 = 96;

/// One tenant's minute (on one node, or added over nodes).
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Minute {
    pub events: u64,
    pub notifications: u64,
    /// Attempts the channel took.
    pub delivered: u64,
    /// Attempts that failed (whether or not another follows).
    pub failed: u64,
    /// Delivered attempts by latency bucket (`bucket`): the time from when the delivery fell
    /// due (the notification's making, or a digest's sending) to the channel's answer.
    pub latency: BTreeMap<u8, u64>,
    /// Alerts that went into alarm less those that left it, by rule.
    pub alarms: BTreeMap<String, i64>,
    /// Failed attempts by channel.
    pub failures: BTreeMap<String, u64>,
}

impl Minute {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &Minute) {
        self.events += other.events;
        self.notifications += other.notifications;
        self.delivered += other.delivered;
        self.failed += other.failed;
        for (bucket, n) in &other.latency {
            *self.latency.entry(*bucket).or_default() += n;
        }
        for (rule, n) in &other.alarms {
            self.alarms_changed(rule, *n);
        }
        for (channel, n) in &other.failures {
            *self.failures.entry(channel.clone()).or_default() += n;
        }
    }

    /// A delivered attempt, `ms` milliseconds after its delivery fell due.
    pub fn delivered_after(&mut self, ms: f64) {
        self.delivered += 1;
        *self.latency.entry(bucket(ms)).or_default() += 1;
    }

    /// A failed attempt to `channel`.
    pub fn failed_at(&mut self, channel: &str) {
        self.failed += 1;
        *self.failures.entry(channel.to_string()).or_default() += 1;
    }

    /// `change` more of `rule`'s alerts in alarm (fewer when negative).
    pub fn alarms_changed(&mut self, rule: &str, change: i64) {
        *self.alarms.entry(rule.to_string()).or_default() += change;
    }

    /// The net change of the alerts in alarm: of `rule`'s, or of all.
    pub fn alarm_change(&self, rule: Option<&str>) -> i64 {
        match rule {
            Some(rule) => self.alarms.get(rule).copied().unwrap_or(0),
            None => self.alarms.values().sum(),
        }
    }
}

/// The bucket of a latency of `ms` milliseconds: 0 up to 1 ms, then bucket `b` up to
/// `GROWTH^b` ms.
pub fn bucket(ms: f64) -> u8 {
    if ms <= 1.0 {
        return 0;
    }
    let b = ms.log(GROWTH).ceil();
    if b >= f64::from(LAST_BUCKET) { LAST_BUCKET } else { b as u8 }
}

/// The latency below which the fraction `q` of a histogram's counts lie, in milliseconds (the
/// upper bound of its bucket); none for an empty histogram.
pub fn quantile(histogram: &BTreeMap<u8, u64>, q: f64) -> Option<f64> {
    let total: u64 = histogram.values().sum();
    if total == 0 {
        return None;
    }
    let rank = ((q * total as f64).ceil() as u64).max(1);
    let mut seen = 0;
    for (bucket, n) in histogram {
        seen += n;
        if seen >= rank {
            return Some((GROWTH.powi(i32::from(*bucket)) * 10.0).round() / 10.0);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_a_bucket_of_the_truth() {
        let mut minute = Minute::default();
        for ms in 1..=1000 {
            minute.delivered_after(f64::from(ms));
        }
        let p50 = quantile(&minute.latency, 0.5).unwrap();
        let p99 = quantile(&minute.latency, 0.99).unwrap();
        assert!((500.0..=625.0).contains(&p50), "{p50}");
        assert!((990.0..=1240.0).contains(&p99), "{p99}");
        assert_eq!(quantile(&BTreeMap::new(), 0.5), None);
        assert_eq!(bucket(0.2), 0);
        assert_eq!(bucket(1e12), LAST_BUCKET);
    }

    #[test]
    fn minutes_add_up() {
        let mut a = Minute { events: 2, ..Minute::default() };
        a.failed_at("c1");
        a.alarms.insert("r1".into(), 1);
        let mut b = Minute { events: 3, ..Minute::default() };
        b.failed_at("c1");
        b.delivered_after(5.0);
        b.alarms.insert("r1".into(), -1);
        b.alarms.insert("r2".into(), 1);
        a.add(&b);
        assert_eq!((a.events, a.delivered, a.failed), (5, 1, 2));
        assert_eq!(a.failures["c1"], 2);
        assert_eq!((a.alarm_change(Some("r1")), a.alarm_change(None)), (0, 1));
    }
}
