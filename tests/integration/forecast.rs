//! Forecasts: a sum over the billing period projected at its run rate, firing before the limit
//! is reached, not at it.

use reqwest::Method;
use serde_json::{Value, json};

use crate::alerts::{MONDAY, Scenario, at, event};

/// A forecast that acme's credits this month reach 1,000 before the month ends.
fn forecast(s: &Scenario, method: &str) -> String {
    s.rule(json!({
        "name": "Credits run out this month", "scope": { "type": "customer", "customer_id": "acme" },
        "notify_on_resolve": true,
        "condition": { "kind": "forecast", "method": method, "window": { "calendar": "month" }, "lookback": "1d",
                       "min_history": "1d", "value": 1000, "before": "period_end",
                       "metric": { "event_types": ["usage"], "aggregate": "sum", "property": "credits" } },
    }))
}

/// Two credits an hour, on the hour, from hour `from` to hour `to` (both included).
fn spend(s: &Scenario, from: u32, to: u32) {
    for hour in from..=to {
        s.clock(&at(&format!("PT{hour}H")));
        s.send(vec![event(&format!("u{hour}"), "acme", "usage", &format!("PT{hour}H"), json!({ "credits": 2 }))]);
    }
}

fn hours_after_monday(timestamp: &Value) -> f64 {
    let at: jiff::Timestamp = timestamp.as_str().unwrap().parse().unwrap();
    let monday: jiff::Timestamp = MONDAY.parse().unwrap();
    (at.as_second() - monday.as_second()) as f64 / 3600.0
}

#[test]
fn a_steady_customer_is_warned_days_before_it_crosses_and_a_slowing_one_resolves() {
    for method in ["linear", "holt"] {
        let s = Scenario::start();
        s.customer("acme", json!({}));
        let rule = forecast(&s, method);
        // A day of history is asked for: nothing fires on the first day's events.
        spend(&s, 0, 23);
        assert!(s.notifications(&rule).is_empty(), "{method}: too little history");
        spend(&s, 24, 26);
        let alarms = s.notifications(&rule);
        assert_eq!(alarms.len(), 1, "{method}: {alarms:#?}");
        let context = &alarms[0]["context"];
        assert_eq!(alarms[0]["kind"], "alarm");
        assert_eq!(context["forecast"]["method"], method);
        // 2 an hour from hour 0: 1,000 is reached at hour 499 (the sum counts hour 0's too).
        let crossing = hours_after_monday(&context["forecast"]["crossing_at"]);
        assert!((crossing - 499.0).abs() <= 1.0, "{method}: crosses at hour {crossing}");
        assert_eq!(context["forecast"]["by"], "2030-02-01T00:00:00Z", "the period's end");
        assert_eq!(context["threshold"], 1000.0);
        assert!(context["forecast"]["projected"].as_f64().unwrap() > 1000.0, "{context}");

        // The customer stops: a day later the rate read is nothing, and the alert resolves.
        s.clock(&at("PT60H"));
        assert_eq!(s.kinds(&rule), ["alarm", "resolved"], "{method}");
    }
}

#[test]
fn a_forecast_that_does_not_sum_or_has_no_period_is_refused() {
    let s = Scenario::start();
    let refused = |condition: Value| {
        let rule = json!({ "name": "f", "scope": { "type": "each" }, "condition": condition });
        let (status, body) = s.server.call(Method::POST, "/v1/rules", &s.key, Some(rule));
        assert_eq!(status, 400, "{body}");
        body["error"]["field"].as_str().unwrap().to_string()
    };
    let metric = json!({ "event_types": ["usage"], "aggregate": "sum", "property": "credits" });
    let base = |extra: Value| {
        let mut condition =
            json!({ "kind": "forecast", "window": { "calendar": "month" }, "value": 10, "metric": metric });
        condition.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        condition
    };
    assert_eq!(refused(base(json!({ "window": { "rolling": "7d" } }))), "condition.window");
    assert_eq!(
        refused(base(json!({ "metric": { "event_types": ["usage"], "aggregate": "max", "property": "x" } }))),
        "condition.metric.aggregate"
    );
    assert_eq!(refused(base(json!({ "before": "someday" }))), "condition.before");
    assert_eq!(refused(base(json!({ "lookback": "100d" }))), "condition.lookback");
    assert_eq!(refused(base(json!({ "method": "magic" }))), "condition.method");
    let everyone = json!({ "name": "f", "scope": { "type": "all" },
                           "condition": base(json!({ "before": { "field": "contract_end" } })) });
    let (status, body) = s.server.call(Method::POST, "/v1/rules", &s.key, Some(everyone));
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("scope")), "{body}");
}
