//! Fires when this window's value dropped by at least `drop_percent` against the previous
//! window's, e.g. usage 20% lower week over week.
//!
//! Config: `{"drop_percent": 20}`.

use klaxon_sdk::{Condition, Evaluation, Verdict};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub drop_percent: f64,
}

pub struct WeekOverWeekDrop;

impl Condition for WeekOverWeekDrop {
    type Config = Config;

    fn config_schema() -> serde_json::Value {
        serde_json::json!({
            "type": "object",
            "properties": {
                "drop_percent": {
                    "type": "number", "exclusiveMinimum": 0, "maximum": 100,
                    "description": "How far the value must fall against the previous window, in percent",
                },
            },
            "required": ["drop_percent"],
            "additionalProperties": false,
        })
    }

    fn validate(config: &Config) -> Result<(), String> {
        if config.drop_percent > 0.0 && config.drop_percent <= 100.0 {
            Ok(())
        } else {
            Err(format!("drop_percent must be above 0 and at most 100, not {}", config.drop_percent))
        }
    }

    fn evaluate(config: Config, input: &Evaluation) -> Result<Verdict, String> {
        let current = input.current_value().ok_or("this condition needs the window's value")?;
        let Some(previous) = input.previous_value().filter(|p| *p > 0.0) else {
            return Ok(Verdict::quiet(0.0).with_message("no previous window to compare with"));
        };
        let change = (current - previous) / previous * 100.0;
        let message = format!("{change:+.1}% against the previous window ({previous} to {current})");
        Ok(Verdict::when(-change >= config.drop_percent, change).with_message(message))
    }
}

klaxon_sdk::condition!(WeekOverWeekDrop);
