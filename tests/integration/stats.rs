//! `GET /v1/stats` and `GET /v1/rules/{id}/stats`: what a tenant sent and what came of it, minute
//! by minute, on a server whose clock the test moves: events, notifications, deliveries that
//! went and failed, their latency, alerts in alarm, the channels failing most; kept across a
//! restart, and each tenant's its own.

use reqwest::Method;
use serde_json::{Value, json};

use crate::browser::Browser;
use crate::delivery::{START, Setup};
use crate::receivers::Receiver;

fn usage(s: &Setup, id: &str, customer: &str) -> Value {
    let now = s.server.call(Method::GET, "/v1/clock", crate::support::ADMIN, None).1["now"].clone();
    json!({ "id": id, "customer_id": customer, "type": "usage", "timestamp": now })
}

fn send(s: &Setup, events: Vec<Value>) -> Value {
    let (status, body) = s.server.call(Method::POST, "/v1/events", &s.key, Some(json!({ "events": events })));
    assert_eq!(status, 200, "{body}");
    body
}

fn stats(s: &Setup, key: &str, query: &str) -> (u16, Value) {
    s.server.call(Method::GET, &format!("/v1/stats?{query}"), key, None)
}

/// The range of the test's first ten minutes, in steps of `step`.
fn range(s: &Setup, step: &str) -> String {
    format!("since={START}&until={}&step={step}", s.at("PT10M"))
}

fn column(points: &Value, field: &str) -> Vec<Value> {
    points.as_array().unwrap().iter().map(|p| p[field].clone()).collect()
}

/// Every attempt on the channel `channel`, over the tenant's notifications, once none is due
/// before `now`.
fn attempts_on(s: &Setup, channel: &str, now: &str) -> usize {
    let now: jiff::Timestamp = now.parse().unwrap();
    let (_, page) = s.server.call(Method::GET, "/v1/notifications?limit=100", &s.key, None);
    let mut attempts = 0;
    for n in page["items"].as_array().unwrap() {
        let waiting =
            |n: &Value| {
                n["deliveries"].as_array().unwrap().iter().filter(|d| d["channel_id"] == channel).all(|d| {
                    d["next_attempt_at"].as_str().is_none_or(|at| at.parse::<jiff::Timestamp>().unwrap() > now)
                })
            };
        let n = s.wait(n["id"].as_str().unwrap(), waiting, "the due retries");
        let deliveries = n["deliveries"].as_array().unwrap().iter().filter(|d| d["channel_id"] == channel);
        attempts += deliveries.map(|d| d["attempts"].as_array().unwrap().len()).sum::<usize>();
    }
    // The attempt's record is written just before it is counted.
    std::thread::sleep(std::time::Duration::from_millis(200));
    attempts
}

#[test]
fn the_stats_count_what_was_sent_minute_by_minute_and_survive_a_restart() {
    let mut s = Setup::start("");
    let receiver = Receiver::start();
    let ok = s.channel(json!({ "name": "ops", "kind": "webhook", "url": receiver.url }));
    // Nothing listens on port 9: every attempt fails and is retried.
    let broken = s.channel(json!({ "name": "broken", "kind": "webhook", "url": "http://127.0.0.1:9/hook" }));
    s.rule(&[&ok, &broken]);
    let (status, threshold) = s.server.call(
        Method::POST,
        "/v1/rules",
        &s.key,
        Some(json!({
            "name": "Heavy use", "scope": { "type": "each" }, "channels": [ok["id"]],
            "condition": { "kind": "threshold", "window": { "calendar": "day" }, "operator": ">", "value": 2,
                           "metric": { "event_types": ["usage"], "aggregate": "count" } },
        })),
    );
    assert_eq!(status, 201, "{threshold}");
    let threshold = threshold["id"].as_str().unwrap().to_string();

    // Minute 0: three signups, each delivered to `ops` and failing on `broken`.
    let signups: Vec<String> = ["c1", "c2", "c3"].iter().map(|c| s.signup(c)).collect();
    receiver.wait_for(3);
    for id in &signups {
        let tried = |n: &Value| n["deliveries"].as_array().unwrap().iter().all(|d| d["attempts"] != json!([]));
        s.wait(id, tried, "both attempts");
    }
    // Minute 2: c1 goes into alarm (three uses), c2 not yet (two).
    s.clock(&s.at("PT2M"));
    let events = ["a", "b", "c"].iter().map(|i| usage(&s, &format!("u1{i}"), "c1"));
    let events = events.chain(["a", "b"].iter().map(|i| usage(&s, &format!("u2{i}"), "c2"))).collect();
    assert_eq!(send(&s, events)["notifications"], 1);
    receiver.wait_for(4);
    // Minute 5: c2 goes into alarm too.
    s.clock(&s.at("PT5M"));
    assert_eq!(send(&s, vec![usage(&s, "u2c", "c2")])["notifications"], 1);
    receiver.wait_for(5);

    // The rule's own alerts over time, before it goes.
    let (status, rule) =
        s.server.call(Method::GET, &format!("/v1/rules/{threshold}/stats?{}", range(&s, "1m")), &s.key, None);
    assert_eq!(status, 200, "{rule}");
    assert_eq!(column(&rule["points"], "in_alarm"), [0, 0, 1, 1, 1, 2, 2, 2, 2, 2].map(Value::from));
    // Minute 8: the console's overview of the last hour, and the rule's page.
    s.clock(&s.at("PT8M"));
    let failed = attempts_on(&s, broken["id"].as_str().unwrap(), &s.at("PT8M"));
    assert!(failed >= 3, "{failed}");
    console(&s, &threshold);
    // Then the rule is deleted, and its alerts with it.

    let (status, _) = s.server.call(Method::DELETE, &format!("/v1/rules/{threshold}"), &s.key, None);
    assert_eq!(status, 204);

    let check = |s: &Setup| {
        let (status, body) = stats(s, &s.key, &range(s, "1m"));
        assert_eq!(status, 200, "{body}");
        assert_eq!((body["since"].as_str(), body["step"].as_str()), (Some(START), Some("1m")), "{body}");
        let points = &body["points"];
        assert_eq!(points.as_array().unwrap().len(), 10, "{body}");
        assert_eq!(column(points, "events"), [3, 0, 5, 0, 0, 1, 0, 0, 0, 0].map(Value::from));
        assert_eq!(column(points, "notifications"), [3, 0, 1, 0, 0, 1, 0, 0, 0, 0].map(Value::from));
        assert_eq!(column(points, "delivered"), [3, 0, 1, 0, 0, 1, 0, 0, 0, 0].map(Value::from));
        assert_eq!(column(points, "in_alarm"), [0, 0, 1, 1, 1, 2, 2, 2, 0, 0].map(Value::from));
        let totals = &body["totals"];
        assert_eq!((totals["events"].as_u64(), totals["notifications"].as_u64()), (Some(9), Some(5)), "{body}");
        assert_eq!((totals["delivered"].as_u64(), totals["failed"].as_u64()), (Some(5), Some(failed as u64)));
        assert_eq!(
            body["failing_channels"],
            json!([{ "channel_id": broken["id"], "name": "broken", "failed": failed }]),
            "{body}"
        );
        // Latency where something was delivered, none elsewhere; the clock stood still while
        // sending, so it is the send's own time.
        let p50 = points[0]["latency_p50_ms"].as_f64().expect("a latency where deliveries went");
        let p99 = points[0]["latency_p99_ms"].as_f64().unwrap();
        assert!(0.0 < p50 && p50 <= p99 && p99 < 5_000.0, "{body}");
        assert_eq!(points[1]["latency_p50_ms"], Value::Null);

        // Five-minute steps add the minutes up.
        let (_, coarse) = stats(s, &s.key, &range(s, "5m"));
        assert_eq!(column(&coarse["points"], "events"), [8, 1].map(Value::from), "{coarse}");
        assert_eq!(column(&coarse["points"], "in_alarm"), [1, 0].map(Value::from), "{coarse}");
    };
    check(&s);
    s.server.restart();
    check(&s);

    // Another tenant has counted nothing; a viewer of this one reads it.
    let (_, other) = s.server.tenant("globex");
    let (_, theirs) = stats(&s, &other, &range(&s, "1m"));
    assert!(column(&theirs["points"], "events").iter().all(|n| n == 0), "{theirs}");
    assert_eq!(theirs["failing_channels"], json!([]));
    let viewer = s.server.key(&s.key, "viewer");
    assert_eq!(stats(&s, &viewer, &range(&s, "1m")).0, 200);
}

#[test]
fn a_bad_range_or_step_is_refused_naming_it() {
    let s = Setup::start("");
    let refused = |query: &str| {
        let (status, body) = stats(&s, &s.key, query);
        assert_eq!(status, 400, "{query}: {body}");
        body["error"]["field"].as_str().unwrap().to_string()
    };
    assert_eq!(refused("step=30s"), "step");
    assert_eq!(refused("step=90s"), "step");
    assert_eq!(refused("step=-5m"), "step");
    assert_eq!(refused("step=soon"), "query");
    assert_eq!(refused(&format!("since={}&until={START}", s.at("PT1H"))), "since");
    assert_eq!(refused(&format!("since={START}&until={}", s.at("PT800H"))), "since");
    assert_eq!(refused(&format!("since={START}&until={}&step=1m", s.at("PT25H"))), "step");
    assert_eq!(refused("colour=red"), "query");
    assert_eq!(refused(&format!("since={START}&last=1h")), "last");
    assert_eq!(refused("last=-1h"), "last");

    // By default: the last hour, a point a minute.
    let (status, body) = stats(&s, &s.key, "");
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["points"].as_array().unwrap().len(), body["step"].as_str()), (60, Some("1m")), "{body}");
    let (_, day) = stats(&s, &s.key, "last=1d");
    assert_eq!((day["since"].as_str(), day["step"].as_str()), (Some("2030-01-06T00:00:00Z"), Some("24m")), "{day}");
    let (status, body) = s.server.call(Method::GET, "/v1/rules/nope/stats", &s.key, None);
    assert_eq!(status, 404, "{body}");
}

/// How many values the chart `chart` draws of `series`: a bar or a dot each, or a line's vertices.
const DRAWN: &str = "const [chart, series] = arguments; \
    return [...document.querySelectorAll(`#${chart} [data-series=\"${series}\"]`)].reduce((n, el) => \
      n + (el.tagName === 'polyline' ? el.getAttribute('points').trim().split(/\\s+/).length : 1), 0);";

fn drawn(browser: &Browser, chart: &str, series: &str) -> u64 {
    browser.script_with(DRAWN, json!([chart, series])).as_u64().unwrap()
}

/// The overview at minute 8 (the last hour: 60 minutes, the test's first eight at its end) and
/// the rule's page, in headless Chromium.
fn console(s: &Setup, rule: &str) {
    // The attempts of minute 8 fall outside the hour.
    let failed = stats(s, &s.key, "last=1h&step=1m").1["totals"]["failed"].clone();
    let browser = Browser::signed_in(&s.server.base, &s.key, "Overview");
    let totals = browser.wait_for_text("#overview-totals", "9 events");
    assert!(totals.contains(&format!("9 events · 5 notifications · 5 delivered · {failed} failed")), "{totals}");
    assert!(totals.ends_with("2 in alarm"), "{totals}");
    for (chart, series, count) in [
        ("chart-events", "events", 60),
        ("chart-deliveries", "delivered", 60),
        ("chart-deliveries", "failed", 60),
        ("chart-deliveries", "notifications", 60),
        // Latency only where something was delivered: minutes 0, 2 and 5.
        ("chart-latency", "p50", 3),
        ("chart-latency", "p99", 3),
        ("chart-alarms", "in_alarm", 60),
    ] {
        assert_eq!(drawn(&browser, chart, series), count, "{chart} {series}");
    }
    let scale = browser.script("return document.querySelector('#chart-alarms').textContent");
    assert!(scale.as_str().unwrap().starts_with('2'), "the scale reaches the 2 alerts in alarm: {scale}");
    browser.wait_for_text("main table", "broken");
    browser.screenshot("overview");
    browser.click("button[data-range=\"day\"]");
    browser.wait("the day's 72 points", || {
        (browser.script("return document.querySelector('#chart-events').dataset.points") == "72").then_some(())
    });
    assert_eq!(drawn(&browser, "chart-events", "events"), 72);

    browser.open(&format!("{}/#/rules/{rule}", s.server.base));
    browser.wait_for_text("h1", "Heavy use");
    browser.find("#chart-rule-alarms");
    assert_eq!(drawn(&browser, "chart-rule-alarms", "in_alarm"), 72, "the last day in 20-minute steps");
}
