//! Anomaly rules: each completed bucket of a metric judged against its history, on a server
//! whose clock the test moves a day at a time.

use reqwest::Method;
use serde_json::{Value, json};

use crate::alerts::{Scenario, usage};

const DAYS: i64 = 35;
/// Days (from Monday `MONDAY`) given values far from their weekday's: up, down, down.
const ANOMALIES: [(i64, f64); 3] = [(23, 1500.0), (26, 20.0), (31, 100.0)];

/// A weekly pattern: Mondays peak at 1000 hours, Tuesday to Friday 600, weekends 200, each
/// moved up to 4% by a fixed wobble; and the three anomalies.
fn hours(day: i64) -> f64 {
    if let Some((_, value)) = ANOMALIES.iter().find(|(d, _)| *d == day) {
        return *value;
    }
    let base = match day % 7 {
        0 => 1000.0,
        5 | 6 => 200.0,
        _ => 600.0,
    };
    base * (1.0 + 0.02 * ((day * 7 % 5) - 2) as f64)
}

fn anomaly_rule(s: &Scenario, name: &str, condition: Value) -> String {
    let mut full = json!({ "kind": "anomaly", "bucket": "1d", "sensitivity": 3,
                           "metric": { "event_types": ["usage"], "aggregate": "sum", "property": "hours" } });
    full.as_object_mut().unwrap().extend(condition.as_object().unwrap().clone());
    s.rule(json!({ "name": name, "scope": { "type": "all" }, "notify_on_resolve": true, "condition": full }))
}

/// The day (from `MONDAY`) a notification's judged bucket starts.
fn day_of(notification: &Value) -> i64 {
    let start: jiff::Timestamp = notification["context"]["window"]["start"].as_str().unwrap().parse().unwrap();
    let monday: jiff::Timestamp = crate::alerts::MONDAY.parse().unwrap();
    start.duration_since(monday).as_hours() / 24
}

#[test]
fn exactly_the_injected_anomalies_alarm_and_the_weekly_peak_does_not() {
    let s = Scenario::start();
    let weekly = anomaly_rule(
        &s,
        "Usage unlike this weekday",
        json!({ "seasonality": "weekly", "history": 3, "min_history": 3, "direction": "both" }),
    );
    let plain =
        anomaly_rule(&s, "Usage unlike recent days", json!({ "history": 7, "min_history": 3, "direction": "up" }));
    for day in 0..DAYS {
        let noon = format!("PT{}H", day * 24 + 12);
        s.clock(&noon);
        s.send(vec![usage(&format!("u{day}"), "alpha", &noon, hours(day))]);
    }
    s.clock(&format!("PT{}H", DAYS * 24 + 12));

    let notifications = s.notifications(&weekly);
    let alarms: Vec<&Value> = notifications.iter().filter(|n| n["kind"] == "alarm").collect();
    let days: Vec<i64> = alarms.iter().map(|n| day_of(n)).collect();
    assert_eq!(days, ANOMALIES.map(|(day, _)| day), "{notifications:#?}");
    assert_eq!(notifications.iter().filter(|n| n["kind"] == "resolved").count(), 3, "each resolves the next day");

    // The alarm carries the bucket's value, what was expected and the band around it.
    let up = &alarms[0]["context"];
    assert_eq!(up["value"], 1500.0);
    let (expected, lower, upper) = (
        up["anomaly"]["expected"].as_f64().unwrap(),
        up["anomaly"]["lower"].as_f64().unwrap(),
        up["anomaly"]["upper"].as_f64().unwrap(),
    );
    assert!((570.0..=630.0).contains(&expected), "{up:#}");
    assert!(lower < expected && expected < upper && upper < 1500.0, "{up:#}");
    let down = &alarms[1]["context"];
    assert!(down["value"].as_f64().unwrap() < down["anomaly"]["lower"].as_f64().unwrap(), "{down:#}");

    // Without seasons, Monday's peak stands out against the days before it (until the
    // injected anomalies widen the band of the last week).
    let plain_days: Vec<i64> = s.notifications(&plain).iter().filter(|n| n["kind"] == "alarm").map(day_of).collect();
    for monday in [7, 14, 21] {
        assert!(plain_days.contains(&monday), "day {monday} in {plain_days:?}");
    }

    // The dry run shows the judged day with its band.
    let (status, dry) = s.server.call(Method::POST, &format!("/v1/rules/{weekly}/evaluate"), &s.key, Some(json!({})));
    assert_eq!(status, 200, "{dry}");
    let text = dry.to_string();
    assert!(text.contains("\"expected\"") && text.contains("\"upper\""), "{dry:#}");
}

#[test]
fn anomaly_rules_that_cannot_work_are_refused_with_the_field() {
    let s = Scenario::start();
    for (condition, field) in [
        (json!({ "bucket": "2h" }), "condition.bucket"),
        (json!({ "history": 2 }), "condition.history"),
        (json!({ "bucket": "1h", "seasonality": "weekly", "history": 13, "min_history": 3 }), "condition.history"),
        (json!({ "sensitivity": 0 }), "condition.sensitivity"),
        (json!({ "history": 5, "min_history": 6 }), "condition.min_history"),
        (json!({ "bucket": "1d", "seasonality": "daily" }), "condition.seasonality"),
    ] {
        let mut full = json!({ "kind": "anomaly", "bucket": "1d",
                               "metric": { "event_types": ["usage"], "aggregate": "count" } });
        full.as_object_mut().unwrap().extend(condition.as_object().unwrap().clone());
        let (status, error) = s.server.call(
            Method::POST,
            "/v1/rules",
            &s.key,
            Some(json!({ "name": "Odd", "scope": { "type": "all" }, "condition": full })),
        );
        assert_eq!(status, 400, "{error}");
        assert!(error["error"]["field"].as_str().unwrap_or_default().starts_with(field), "{field}: {error}");
    }
}
