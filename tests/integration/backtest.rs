//! Backtests: an unsaved rule replayed against the events already sent, in a sandbox.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::alerts::{MONDAY, Scenario, at, event};
use crate::support::{evaluation, guests};

/// Each customer's credits over 10 in a day.
fn daily_rule() -> Value {
    json!({
        "name": "Heavy day", "scope": { "type": "each" }, "notify_on_resolve": true,
        "condition": { "kind": "threshold", "window": { "calendar": "day" }, "operator": ">", "value": 10,
                       "metric": { "event_types": ["usage"], "aggregate": "sum", "property": "credits" } },
    })
}

/// Sends, hour by hour over `days` days, what each customer uses: acme 3 credits at 9, 10, 11
/// and 12 o'clock on even days (12 a day: over), beta 6 at 8 and 20 o'clock on days 1 and 4.
fn a_week_of_usage(s: &Scenario, days: u32) {
    for day in 0..days {
        for hour in 0..24 {
            let offset = format!("P{day}DT{hour}H");
            s.clock(&offset);
            let mut events = Vec::new();
            if day % 2 == 0 && (9..=12).contains(&hour) {
                events.push(event(&format!("a{day}-{hour}"), "acme", "usage", &offset, json!({ "credits": 3 })));
            }
            if (day == 1 || day == 4) && (hour == 8 || hour == 20) {
                events.push(event(&format!("b{day}-{hour}"), "beta", "usage", &offset, json!({ "credits": 6 })));
            }
            if !events.is_empty() {
                s.send(events);
            }
        }
    }
    s.clock(&format!("P{days}D"));
}

/// What the tenant's stores hold, as the API lists them.
fn everything(s: &Scenario) -> Vec<Value> {
    ["/v1/rules", "/v1/notifications?limit=500", "/v1/customers", "/v1/event-types"]
        .iter()
        .map(|path| {
            let (status, body) = s.server.call(Method::GET, path, &s.key, None);
            assert_eq!(status, 200, "{path}: {body}");
            body
        })
        .collect()
}

fn backtest(s: &Scenario, body: Value) -> (u16, Value) {
    s.server.call(Method::POST, "/v1/rules/backtest", &s.key, Some(body))
}

#[test]
fn a_backtest_finds_the_alarms_a_live_rule_raised_and_leaves_no_trace() {
    let s = Scenario::start();
    let live = s.rule(daily_rule());
    a_week_of_usage(&s, 7);
    let raised: Vec<Value> = s
        .notifications(&live)
        .iter()
        .filter(|n| n["kind"] == "alarm")
        .map(|n| json!([n["created_at"], n["customer_id"], n["context"]["value"], n["context"]["state"]]))
        .collect();
    assert_eq!(raised.len(), 6, "acme on days 0, 2, 4 and 6, beta on days 1 and 4: {raised:#?}");
    let before = everything(&s);

    let (status, report) = backtest(&s, json!({ "rule": daily_rule(), "since": MONDAY, "until": at("P7D") }));
    assert_eq!(status, 200, "{report}");
    let found: Vec<Value> = report["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "alarm")
        .map(|n| json!([n["at"], n["customer_id"], n["value"], n["state"]]))
        .collect();
    assert_eq!(found, raised, "{report:#}");
    assert_eq!(report["events"], 20);
    assert_eq!(report["counts"], json!({ "alarm": 6, "resolved": 6 }));
    assert_eq!(
        report["per_customer"],
        json!([{ "customer_id": "acme", "count": 8 }, { "customer_id": "beta", "count": 4 }])
    );
    let per_day: Vec<i64> =
        report["per_day"].as_array().unwrap().iter().map(|d| d["count"].as_i64().unwrap()).collect();
    // Alarms by day, and each resolves as its day ends (the last day's on the eighth day).
    assert_eq!(per_day, [1, 2, 2, 1, 2, 2, 1, 1], "{report:#}");
    assert_eq!(report["notifications"][0]["threshold"], 10.0);

    assert_eq!(everything(&s), before, "a backtest writes nothing the tenant can see");
    let leftovers: Vec<_> = std::fs::read_dir(s.server.data())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("backtest-"))
        .collect();
    assert!(leftovers.is_empty(), "the sandbox is removed: {leftovers:?}");

    // The same events against a higher threshold: 12 a day is not over 12.
    let mut higher = daily_rule();
    higher["condition"]["value"] = json!(12);
    let (_, report) = backtest(&s, json!({ "rule": higher, "since": MONDAY, "until": at("P7D") }));
    assert_eq!((&report["counts"], &report["events"]), (&json!({}), &json!(20)), "{report:#}");
}

#[test]
fn a_backtest_refuses_what_it_cannot_replay_naming_the_field() {
    let s = Scenario::start();
    s.clock("P1D");
    let cases = [
        (json!({ "rule": daily_rule(), "since": at("P1D"), "until": MONDAY }), "until"),
        (json!({ "rule": daily_rule(), "since": MONDAY, "until": at("P2D") }), "until"),
        (json!({ "rule": daily_rule(), "since": "2029-09-01T00:00:00Z" }), "since"),
        (json!({ "rule": daily_rule() }), "since"),
        (json!({ "rule": daily_rule(), "since": MONDAY, "last": "1d" }), "last"),
        (json!({ "rule": daily_rule(), "last": "-1d" }), "last"),
        (
            json!({ "rule": { "name": "x", "scope": { "type": "each" }, "condition": { "kind": "threshold",
                    "window": { "calendar": "day" }, "operator": ">", "value": "lots",
                    "metric": { "event_types": ["usage"], "aggregate": "count" } } }, "since": MONDAY }),
            "rule.condition.value",
        ),
        (
            json!({ "rule": { "name": "x", "scope": { "type": "each" }, "channels": ["chn_missing"],
                    "condition": daily_rule()["condition"] }, "since": MONDAY }),
            "rule.channels[0]",
        ),
    ];
    for (body, field) in cases {
        let (status, error) = backtest(&s, body.clone());
        assert_eq!((status, error["error"]["field"].as_str()), (400, Some(field)), "{body}: {error}");
    }
}

fn job(s: &Scenario, id: &str) -> Value {
    let (status, body) = s.server.call(Method::GET, &format!("/v1/backtests/{id}"), &s.key, None);
    assert_eq!(status, 200, "{body}");
    body
}

#[test]
fn a_long_backtest_runs_as_a_job_that_reports_or_stops_when_cancelled() {
    let s = Scenario::start();
    // Twelve days, a batch an hour of 20 events: more than ten days, so a job.
    for hour in 0..12 * 24 {
        let offset = format!("PT{hour}H");
        s.clock(&offset);
        let events = (0..20)
            .map(|i| event(&format!("e{hour}-{i}"), &format!("cus_{i}"), "usage", &offset, json!({ "credits": 1 })))
            .collect();
        s.send(events);
    }
    s.clock("P12D");
    let body = json!({ "rule": daily_rule(), "since": MONDAY });

    let (status, started) = backtest(&s, body.clone());
    assert_eq!(status, 202, "{started}");
    let id = started["id"].as_str().unwrap().to_string();
    assert_eq!((&started["state"], &started["events_total"]), (&json!("running"), &json!(5760)));
    let (status, cancelled) = s.server.call(Method::DELETE, &format!("/v1/backtests/{id}"), &s.key, None);
    assert_eq!((status, &cancelled["state"]), (200, &json!("cancelled")), "{cancelled}");
    std::thread::sleep(Duration::from_millis(300));
    let stopped = job(&s, &id);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(job(&s, &id), stopped, "a cancelled job replays no more");
    assert!(stopped["events_replayed"].as_u64().unwrap() < 5760, "{stopped}");

    // Two at a time per tenant.
    let ids: Vec<String> = (0..2)
        .map(|_| {
            let (status, started) = backtest(&s, body.clone());
            assert_eq!(status, 202, "{started}");
            started["id"].as_str().unwrap().to_string()
        })
        .collect();
    let (status, refused) = backtest(&s, body.clone());
    assert_eq!((status, refused["error"]["limit"].as_str()), (429, Some("backtest_jobs")), "{refused}");

    // Each runs to its report.
    let deadline = Instant::now() + Duration::from_secs(120);
    for id in &ids {
        let done = loop {
            let state = job(&s, id);
            if state["state"] != "running" {
                break state;
            }
            assert!(Instant::now() < deadline, "the job is still running: {state}");
            std::thread::sleep(Duration::from_millis(100));
        };
        assert_eq!(done["state"], "done", "{done}");
        assert_eq!(done["events_replayed"], 5760);
        let report = &done["report"];
        assert_eq!(report["events"], 5760);
        // 24 credits a day for every customer: each alarms once a day (the 11th hour).
        assert_eq!(report["counts"]["alarm"], 20 * 12, "{report}");
        assert_eq!(report["notifications"][0]["at"], at("PT10H"));
    }
    let (status, _) = s.server.call(Method::GET, "/v1/backtests/bkt_unknown", &s.key, None);
    assert_eq!(status, 404);
}

/// The z-score plugin's sample count for acme, from a call that adds one.
fn zscore_samples(s: &Scenario) -> String {
    let mut input = evaluation(json!({}));
    input["customer"] = json!({ "id": "acme" });
    input["value"] = json!({ "current": 1.0 });
    let (status, body) = s.server.invoke(&s.key, "zscore", input);
    assert_eq!(status, 200, "{body}");
    body["output"]["labels"]["samples"].as_str().unwrap().to_string()
}

#[test]
fn a_plugin_condition_is_backtested_with_key_value_entries_of_its_own() {
    let s = Scenario::start();
    assert_eq!(s.server.upload(&s.key, "zscore", "condition", &guests().zscore_anomaly).0, 201);
    // Ten hours of one credit, then a hundred.
    for hour in 0..11 {
        let offset = format!("PT{hour}H");
        s.clock(&offset);
        let credits = if hour == 10 { 100 } else { 1 };
        s.send(vec![event(&format!("e{hour}"), "acme", "usage", &offset, json!({ "credits": credits }))]);
    }
    s.clock("PT12H");
    assert_eq!(zscore_samples(&s), "1");

    let rule = json!({
        "name": "Unusual hour", "scope": { "type": "each" },
        "condition": { "kind": "plugin", "plugin": "zscore", "config": { "threshold": 3.0, "min_samples": 5 },
                       "window": { "calendar": "hour" },
                       "metric": { "event_types": ["usage"], "aggregate": "sum", "property": "credits" } },
    });
    let (status, report) = backtest(&s, json!({ "rule": rule, "last": "12h" }));
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["counts"]["alarm"], 1, "the hundred stands out: {report:#}");
    assert_eq!(report["notifications"][0]["at"], at("PT10H"));
    assert_eq!(zscore_samples(&s), "2", "the plugin's own entries saw none of the backtest's samples");
}
