//! Fires when a value is an outlier against the values seen before it for the same scope key:
//! its z-score (distance from the running mean in standard deviations) reaches `threshold`.
//!
//! The running count, mean and variance (Welford's method) are kept in the host's key-value
//! store, so every customer learns its own normal and the learning survives restarts.
//!
//! Config: `{"threshold": 3.0, "min_samples": 10}` (both optional).

use klaxon_sdk::{Condition, Evaluation, Verdict, kv};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "default_threshold")]
    pub threshold: f64,
    #[serde(default = "default_min_samples")]
    pub min_samples: u64,
}

fn default_threshold() -> f64 {
    3.0
}

fn default_min_samples() -> u64 {
    10
}

/// Running statistics of the values seen so far.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Stats {
    pub count: u64,
    pub mean: f64,
    /// Sum of squared distances from the mean.
    pub m2: f64,
}

impl Stats {
    pub fn add(&mut self, value: f64) {
        self.count += 1;
        let delta = value - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (value - self.mean);
    }

    pub fn stddev(&self) -> f64 {
        if self.count < 2 { 0.0 } else { (self.m2 / (self.count - 1) as f64).sqrt() }
    }
}

const STATS_KEY: &str = "stats";

pub struct ZScoreAnomaly;

impl Condition for ZScoreAnomaly {
    type Config = Config;

    fn config_schema() -> serde_json::Value {
        serde_json::json!({
            "type": "object",
            "properties": {
                "threshold": {
                    "type": "number", "exclusiveMinimum": 0, "default": 3.0,
                    "description": "How many standard deviations from the mean fire",
                },
                "min_samples": {
                    "type": "integer", "minimum": 2, "default": 10,
                    "description": "Values to learn from before firing",
                },
            },
            "additionalProperties": false,
        })
    }

    fn validate(config: &Config) -> Result<(), String> {
        if config.threshold <= 0.0 {
            return Err(format!("threshold must be above 0, not {}", config.threshold));
        }
        if config.min_samples < 2 {
            return Err(format!("min_samples must be at least 2, not {}", config.min_samples));
        }
        Ok(())
    }

    fn evaluate(config: Config, input: &Evaluation) -> Result<Verdict, String> {
        let value = input.current_value().ok_or("this condition needs the window's value")?;
        let mut stats: Stats = kv::get_json(STATS_KEY).unwrap_or_default();
        let stddev = stats.stddev();
        let verdict = if stats.count < config.min_samples || stddev == 0.0 {
            Verdict::quiet(0.0).with_message(format!("learning: {} of {} samples", stats.count, config.min_samples))
        } else {
            let z = (value - stats.mean) / stddev;
            Verdict::when(z.abs() >= config.threshold, z)
                .with_message(format!("{value} is {z:+.2} standard deviations from the mean {:.2}", stats.mean))
                .with_label("mean", format!("{:.4}", stats.mean))
                .with_label("stddev", format!("{stddev:.4}"))
        };
        stats.add(value);
        kv::set_json(STATS_KEY, &stats)?;
        Ok(verdict.with_label("samples", stats.count.to_string()))
    }
}

klaxon_sdk::condition!(ZScoreAnomaly);
