//! The rules engine end to end: the design's seed examples as scenarios on a server whose clock
//! the test moves, with the notifications each one queues asserted.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{ADMIN, Server, guests};

/// A Monday, midnight UTC: the start of a calendar week.
pub const MONDAY: &str = "2030-01-07T00:00:00Z";

pub struct Scenario {
    pub server: Server,
    pub key: String,
}

pub fn at(offset: &str) -> String {
    let start: jiff::Timestamp = MONDAY.parse().unwrap();
    let span: jiff::Span = offset.parse().unwrap();
    let moved = start.to_zoned(jiff::tz::TimeZone::UTC).checked_add(span).unwrap();
    moved.timestamp().to_string()
}

impl Scenario {
    pub fn start() -> Scenario {
        let server = Server::start_with(None, &["--manual-clock"]);
        let (_, key) = server.tenant("acme");
        let scenario = Scenario { server, key };
        scenario.clock(MONDAY);
        scenario
    }

    /// Moves the clock (to a time given as an ISO 8601 offset from `MONDAY`, or absolute);
    /// what fell due runs before it answers.
    pub fn clock(&self, to: &str) {
        let to = if to.starts_with('P') { at(to) } else { to.to_string() };
        let (status, body) = self.server.call(Method::PUT, "/v1/clock", ADMIN, Some(json!({ "now": to })));
        assert_eq!(status, 200, "{body}");
    }

    pub fn rule(&self, rule: Value) -> String {
        let (status, body) = self.server.call(Method::POST, "/v1/rules", &self.key, Some(rule));
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    pub fn customer(&self, id: &str, fields: Value) {
        let (status, body) =
            self.server.call(Method::PUT, &format!("/v1/customers/{id}"), &self.key, Some(json!({ "fields": fields })));
        assert!(status == 200 || status == 201, "{body}");
    }

    pub fn send(&self, events: Vec<Value>) -> Value {
        let (status, body) = self.server.call(Method::POST, "/v1/events", &self.key, Some(json!({ "events": events })));
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["rejected"], json!([]), "{body}");
        body
    }

    /// How many of the rule's alerts are in each state, as the rule list shows them.
    pub fn counts(&self, rule: &str) -> Value {
        let (status, rules) = self.server.call(Method::GET, "/v1/rules", &self.key, None);
        assert_eq!(status, 200, "{rules}");
        let listed = rules["items"].as_array().unwrap().iter().find(|r| r["id"] == rule).unwrap();
        assert_eq!(
            self.server.call(Method::GET, &format!("/v1/rules/{rule}"), &self.key, None).1["alerts"],
            listed["alerts"]
        );
        listed["alerts"].clone()
    }

    /// The rule's notifications, oldest first.
    pub fn notifications(&self, rule: &str) -> Vec<Value> {
        let (status, body) =
            self.server.call(Method::GET, &format!("/v1/notifications?rule_id={rule}"), &self.key, None);
        assert_eq!(status, 200, "{body}");
        let mut items = body["items"].as_array().unwrap().clone();
        items.reverse();
        items
    }

    pub fn kinds(&self, rule: &str) -> Vec<String> {
        self.notifications(rule).iter().map(|n| n["kind"].as_str().unwrap().to_string()).collect()
    }

    pub fn states(&self, rule: &str) -> Value {
        let (status, body) = self.server.call(Method::GET, &format!("/v1/rules/{rule}/states"), &self.key, None);
        assert_eq!(status, 200, "{body}");
        body
    }
}

/// An event `offset` after `MONDAY`.
pub fn event(id: &str, customer: &str, event_type: &str, offset: &str, properties: Value) -> Value {
    json!({ "id": id, "customer_id": customer, "type": event_type, "timestamp": at(offset), "properties": properties })
}

pub fn usage(id: &str, customer: &str, offset: &str, hours: f64) -> Value {
    event(id, customer, "usage", offset, json!({ "hours": hours }))
}

#[test]
fn any_customer_over_1000_hours_a_week_alarms_and_resolves() {
    let mut s = Scenario::start();
    let rule = s.rule(json!({
        "name": "Over 1000 hours a week", "scope": { "type": "each" }, "notify_on_resolve": true,
        "condition": { "kind": "threshold", "window": { "calendar": "week" }, "operator": ">", "value": 1000,
                       "metric": { "event_types": ["usage"], "aggregate": "sum", "property": "hours" } },
    }));
    s.clock("PT1H");
    s.send(vec![usage("u1", "alpha", "PT1H", 600.0), usage("u2", "beta", "PT1H", 300.0)]);
    assert!(s.notifications(&rule).is_empty());

    let outcome = s.send(vec![usage("u3", "alpha", "PT1H", 500.0), usage("u4", "alpha", "PT1H", 1.0)]);
    assert_eq!(outcome["notifications"], 1, "{outcome}");
    let alarm = &s.notifications(&rule)[0];
    assert_eq!(alarm["kind"], "alarm");
    assert_eq!(alarm["customer_id"], "alpha");
    assert_eq!(alarm["status"], "unrouted");
    let context = &alarm["context"];
    assert_eq!(context["value"], 1100.0, "the value when it crossed");
    assert_eq!(context["threshold"], 1000.0);
    assert_eq!(context["state"], json!({ "previous": "ok", "current": "in_alarm" }));
    assert_eq!(context["window"], json!({ "start": MONDAY, "end": at("P7D") }));
    assert_eq!(context["rule"]["name"], "Over 1000 hours a week");
    assert_eq!(context["notification"]["url"], format!("/v1/notifications/{}", alarm["id"].as_str().unwrap()));
    assert_eq!(
        s.counts(&rule),
        json!({ "evaluating": 0, "ok": 1, "pending": 0, "in_alarm": 1, "flapping": 0 }),
        "the rule list's counts"
    );

    // A new week starts from zero: the alert resolves, and says so.
    s.clock("P7DT1M");
    assert_eq!(s.kinds(&rule), ["alarm", "resolved"]);
    let resolved = &s.notifications(&rule)[1];
    assert_eq!(resolved["context"]["state"], json!({ "previous": "in_alarm", "current": "ok" }));

    let states = s.states(&rule);
    let alpha = states["items"].as_array().unwrap().iter().find(|a| a["scope_key"] == "alpha").unwrap();
    assert_eq!(alpha["state"], "ok");
    let history: Vec<(&str, &str)> = states["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["scope_key"] == "alpha")
        .map(|t| (t["previous"].as_str().unwrap(), t["current"].as_str().unwrap()))
        .collect();
    assert_eq!(history, [("in_alarm", "ok"), ("ok", "in_alarm"), ("evaluating", "ok")], "newest first");
    let (status, one) =
        s.server.call(Method::GET, &format!("/v1/notifications/{}", resolved["id"].as_str().unwrap()), &s.key, None);
    assert_eq!((status, &one["kind"]), (200, &json!("resolved")));

    assert_eq!(s.counts(&rule), json!({ "evaluating": 0, "ok": 2, "pending": 0, "in_alarm": 0, "flapping": 0 }));
    let (status, _) = s.server.call(Method::DELETE, "/v1/customers/beta", &s.key, None);
    assert_eq!(status, 204);
    assert_eq!(
        s.counts(&rule),
        json!({ "evaluating": 0, "ok": 1, "pending": 0, "in_alarm": 0, "flapping": 0 }),
        "a deleted customer's alert goes"
    );
    s.server.restart();
    assert_eq!(
        s.counts(&rule),
        json!({ "evaluating": 0, "ok": 1, "pending": 0, "in_alarm": 0, "flapping": 0 }),
        "kept over a restart"
    );
}

#[test]
fn a_customer_using_20_percent_less_week_over_week_counting_late_events_in_their_week() {
    let s = Scenario::start();
    let rule = s.rule(json!({
        "name": "Usage down 20%", "scope": { "type": "customer", "customer_id": "cus_1" },
        "condition": { "kind": "percent_change", "window": { "calendar": "week" }, "direction": "down", "percent": 20,
                       "metric": { "event_types": ["usage"], "aggregate": "sum", "property": "hours" } },
    }));
    s.clock("P2DT1H");
    s.send(vec![
        usage("w1a", "cus_1", "P1D", 60.0),
        usage("w1b", "cus_1", "P2D", 40.0),
        usage("x", "cus_2", "P2D", 1.0),
    ]);
    s.clock("P8D");
    // Week 2: 70 hours, and 30 more hours that belong to week 1 arrive late.
    s.send(vec![usage("w2a", "cus_1", "P8D", 70.0), usage("late", "cus_1", "P3D", 30.0)]);
    assert!(s.notifications(&rule).is_empty(), "judged when the week is over");
    s.clock("P14DT1S");
    let notifications = s.notifications(&rule);
    assert_eq!(notifications.len(), 1);
    let context = &notifications[0]["context"];
    let change = context["value"].as_f64().unwrap();
    assert!(
        (change - (70.0 - 130.0) / 130.0 * 100.0).abs() < 1e-9,
        "week 2 against week 1 with its late event: {change}"
    );
    assert_eq!(context["threshold"], -20.0);
    assert_eq!(context["window"]["start"], at("P7D"));
}

#[test]
fn usage_past_the_prepaid_credits_in_a_customers_wallet() {
    let s = Scenario::start();
    s.customer("wallet", json!({ "prepaid_credits": 100 }));
    let rule = s.rule(json!({
        "name": "Past prepaid credits", "scope": { "type": "each" }, "severity": "critical",
        "condition": { "kind": "balance", "balance_field": "prepaid_credits",
                       "metric": { "event_types": ["usage"], "aggregate": "sum", "property": "credits" } },
    }));
    let spend =
        |id: &str, customer: &str, credits: f64| event(id, customer, "usage", "PT1M", json!({ "credits": credits }));
    s.send(vec![spend("c1", "wallet", 60.0), spend("c2", "no-wallet", 500.0)]);
    assert!(s.notifications(&rule).is_empty(), "within credit; a customer without the field never alarms");
    s.send(vec![spend("c3", "wallet", 50.0)]);
    let notifications = s.notifications(&rule);
    assert_eq!(notifications.len(), 1);
    assert_eq!(notifications[0]["context"]["value"], 110.0);
    assert_eq!(notifications[0]["context"]["threshold"], 100.0);
    assert_eq!(notifications[0]["context"]["rule"]["severity"], "critical");
    assert_eq!(notifications[0]["context"]["customer"]["fields"]["prepaid_credits"], 100);
}

#[test]
fn quarterly_revenue_steps_fire_once_each_per_quarter() {
    let s = Scenario::start();
    let rule = s.rule(json!({
        "name": "Quarterly revenue target", "scope": { "type": "all" },
        "condition": { "kind": "steps", "target": 1000, "steps": [25, 50, 75, 90], "window": { "calendar": "quarter" },
                       "metric": { "event_types": ["payment"], "aggregate": "sum", "property": "amount" } },
    }));
    let pay =
        |id: &str, customer: &str, amount: f64| event(id, customer, "payment", "PT1M", json!({ "amount": amount }));
    s.send(vec![pay("p1", "a", 300.0)]);
    s.send(vec![pay("p2", "b", 250.0)]);
    s.send(vec![pay("p3", "c", 400.0)]);
    s.send(vec![pay("p4", "a", 400.0)]);
    let steps: Vec<f64> = s.notifications(&rule).iter().map(|n| n["step"].as_f64().unwrap()).collect();
    assert_eq!(steps, [25.0, 50.0, 75.0, 90.0]);
    assert!(s.notifications(&rule).iter().all(|n| n["kind"] == "step" && n["customer_id"].is_null()));

    // Next quarter (2030-04-01) counts from zero and fires its steps again.
    s.clock("2030-04-01T00:00:01Z");
    s.send(vec![json!({ "id": "q2", "customer_id": "a", "type": "payment", "timestamp": "2030-04-01T00:00:01Z",
                        "properties": { "amount": 260 } })]);
    assert_eq!(s.notifications(&rule).len(), 5);
    assert_eq!(s.notifications(&rule)[4]["step"], 25.0);
}

#[test]
fn event_match_with_and_inside_an_event_and_or_across_events_and_values() {
    let s = Scenario::start();
    s.customer("big", json!({ "seats": 120, "tier": "Enterprise" }));
    s.customer("small", json!({ "seats": 10, "tier": "Enterprise" }));
    let pattern = |event_type: &str| {
        json!({ "event_type": event_type, "filters": [
            { "field": "customer.seats", "op": ">", "value": 99 },
            { "field": "customer.tier", "op": "=", "value": "Enterprise" },
            { "field": "event.license_type", "op": "in", "value": ["paid", "community"] },
        ] })
    };
    let rule = s.rule(json!({
        "name": "Large enterprise license", "scope": { "type": "each" },
        "condition": { "kind": "event_match", "matches": [pattern("license.activated"), pattern("license.renewed")] },
    }));
    let license = |id: &str, customer: &str, event_type: &str, license_type: &str| {
        event(id, customer, event_type, "PT1M", json!({ "license_type": license_type }))
    };
    s.send(vec![
        license("l1", "big", "license.activated", "paid"),
        license("l2", "big", "license.renewed", "community"),
        license("l3", "big", "license.activated", "trial"),
        license("l4", "small", "license.activated", "paid"),
        license("l5", "big", "license.revoked", "paid"),
    ]);
    let matched: Vec<String> =
        s.notifications(&rule).iter().map(|n| n["context"]["event"]["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(matched, ["l1", "l2"]);
    assert!(s.notifications(&rule).iter().all(|n| n["kind"] == "match"));
}

#[test]
fn no_traffic_for_3_days_alarms_survives_a_restart_and_clears_with_traffic() {
    let mut s = Scenario::start();
    s.customer("quiet", json!({ "tier": "Enterprise" }));
    s.customer("free", json!({ "tier": "Free" }));
    s.customer("gone", json!({ "tier": "Enterprise" }));
    let rule = s.rule(json!({
        "name": "Quiet for 3 days", "scope": { "type": "group", "filters": [{ "field": "customer.tier", "op": "=", "value": "Enterprise" }] },
        "notify_on_resolve": true,
        "condition": { "kind": "inactivity", "duration": "3d" },
    }));
    s.send(vec![event("e1", "quiet", "login", "PT1H", json!({}))]);
    let (status, _) = s.server.call(Method::DELETE, "/v1/customers/gone", &s.key, None);
    assert_eq!(status, 204, "a deleted customer is no longer watched");
    s.clock("P3DT59M");
    assert!(s.notifications(&rule).is_empty());

    // Down across the deadline: the restarted server catches up.
    s.server.crash_and_restart();
    s.clock(MONDAY);
    s.clock("P3DT2H");
    let notifications = s.notifications(&rule);
    assert_eq!(notifications.len(), 1, "{notifications:?}");
    assert_eq!(notifications[0]["customer_id"], "quiet");
    assert_eq!(notifications[0]["kind"], "alarm");

    s.send(vec![event("e2", "quiet", "login", "P3DT2H", json!({}))]);
    assert_eq!(s.kinds(&rule), ["alarm", "resolved"]);
}

#[test]
fn seven_days_before_a_contract_ends() {
    let s = Scenario::start();
    s.customer("ending", json!({ "contract_end": "2030-01-17" }));
    s.customer("open-ended", json!({}));
    let rule = s.rule(json!({
        "name": "Contract ends in 7 days", "scope": { "type": "each" },
        "condition": { "kind": "offset", "field": "contract_end", "offset": "-7d" },
    }));
    s.clock("P2DT23H");
    assert!(s.notifications(&rule).is_empty());
    s.clock("P3DT1M");
    let notifications = s.notifications(&rule);
    assert_eq!(notifications.len(), 1);
    assert_eq!(
        (notifications[0]["kind"].as_str(), notifications[0]["customer_id"].as_str()),
        (Some("offset"), Some("ending"))
    );
    s.clock("P5D");
    assert_eq!(s.notifications(&rule).len(), 1, "once per moment");

    // A renewed contract brings a new moment.
    s.customer("ending", json!({ "contract_end": "2030-02-17T00:00:00Z" }));
    s.clock("2030-02-10T00:00:01Z");
    assert_eq!(s.notifications(&rule).len(), 2);
}

#[test]
fn a_plugin_condition_rule_fires_on_the_plugins_verdict() {
    let s = Scenario::start();
    let (status, body) = s.server.upload(&s.key, "wow", "condition", &guests().week_over_week_drop);
    assert_eq!(status, 201, "{body}");
    let rule = s.rule(json!({
        "name": "Plugin: weekly drop", "scope": { "type": "each" },
        "condition": { "kind": "plugin", "plugin": "wow", "config": { "drop_percent": 20 }, "window": { "calendar": "week" },
                       "metric": { "event_types": ["usage"], "aggregate": "sum", "property": "hours" } },
    }));
    // Last week's usage arrives late, with this week's.
    s.clock("P8D");
    s.send(vec![usage("a", "cus_1", "P1D", 100.0), usage("b", "cus_1", "P8D", 50.0)]);
    // The plugin runs in the scheduler; moving the clock (even by nothing) waits for it.
    s.clock("P8D");
    let notifications = s.notifications(&rule);
    assert_eq!(notifications.len(), 1, "{notifications:?}");
    assert_eq!(notifications[0]["context"]["value"], -50.0);
    assert!(notifications[0]["message"].as_str().unwrap().contains("-50.0%"), "{}", notifications[0]);
}

#[test]
fn duplicates_count_once_and_a_restart_mid_window_keeps_the_count() {
    let mut s = Scenario::start();
    let rule = s.rule(json!({
        "name": "More than 3 errors a day", "scope": { "type": "all" },
        "condition": { "kind": "threshold", "window": { "calendar": "day" }, "operator": ">", "value": 3,
                       "metric": { "event_types": ["error"], "aggregate": "count" } },
    }));
    let error = |id: &str| event(id, "cus", "error", "PT1M", json!({}));
    let outcome = s.send(vec![error("e1"), error("e2"), error("e1")]);
    assert_eq!((outcome["accepted"].as_u64(), outcome["duplicates"].as_u64()), (Some(2), Some(1)));
    s.send(vec![error("e2")]);

    s.server.crash_and_restart();
    s.clock("PT2M");
    let (status, dry) = s.server.call(Method::POST, &format!("/v1/rules/{rule}/evaluate"), &s.key, Some(json!({})));
    assert_eq!(status, 200, "{dry}");
    assert_eq!(dry["items"][0]["value"], 2.0, "two distinct events survived the crash: {dry}");
    assert_eq!(dry["items"][0]["firing"], false);

    s.send(vec![error("e3")]);
    assert!(s.notifications(&rule).is_empty());
    s.send(vec![error("e4")]);
    assert_eq!(s.kinds(&rule), ["alarm"]);
}

#[test]
fn a_dry_run_shows_value_threshold_and_verdict_without_notifying() {
    let s = Scenario::start();
    let rule = s.rule(json!({
        "name": "Heavy user", "scope": { "type": "each" },
        "condition": { "kind": "threshold", "window": { "rolling": "1h" }, "operator": ">=", "value": 10,
                       "metric": { "event_types": ["usage"], "aggregate": "max", "property": "hours" } },
    }));
    s.clock("PT30M");
    s.send(vec![usage("a", "cus_1", "PT10M", 4.0), usage("b", "cus_2", "PT20M", 2.0)]);
    let dry = |body: Value| s.server.call(Method::POST, &format!("/v1/rules/{rule}/evaluate"), &s.key, Some(body));
    let (status, body) = dry(json!({ "customer_id": "cus_1" }));
    assert_eq!(status, 200, "{body}");
    let item = &body["items"][0];
    assert_eq!(
        (item["scope_key"].as_str(), item["value"].as_f64(), item["threshold"].as_f64()),
        (Some("cus_1"), Some(4.0), Some(10.0))
    );
    assert_eq!((item["firing"].as_bool(), item["would_notify"].as_bool()), (Some(false), Some(false)));
    let (_, whole) = dry(json!({}));
    assert_eq!(whole["items"].as_array().unwrap().len(), 2, "every alert of the scope: {whole}");

    let (status, body) = dry(json!({ "customer_id": "nobody" }));
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("customer_id")), "{body}");
    assert!(s.notifications(&rule).is_empty());

    // The rolling hour moves on: the 4-hour sample leaves it.
    s.clock("PT1H15M");
    let (_, body) = dry(json!({ "customer_id": "cus_1" }));
    assert!(body["items"][0]["value"].is_null(), "no sample in the last hour: {body}");
}

#[test]
fn rules_that_cannot_work_are_refused_with_the_field() {
    let s = Scenario::start();
    let (status, body) = s.server.call(
        Method::POST,
        "/v1/rules",
        &s.key,
        Some(json!({ "name": "x", "scope": { "type": "all" },
                     "condition": { "kind": "balance", "balance_field": "credits",
                                    "metric": { "event_types": ["usage"], "aggregate": "count" } } })),
    );
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("scope")), "{body}");
    // A wrong type inside the condition names the condition's field, not just `condition`.
    let metric = json!({ "event_types": ["usage"], "aggregate": "sum", "property": "hours" });
    for (condition, field) in [
        (
            json!({ "kind": "threshold", "metric": metric, "window": { "calendar": "day" }, "operator": ">", "value": "lots" }),
            "condition.value",
        ),
        (
            json!({ "kind": "thresold", "metric": metric, "window": { "calendar": "day" }, "operator": ">", "value": 1 }),
            "condition.kind",
        ),
    ] {
        let spec = json!({ "name": "x", "scope": { "type": "each" }, "condition": condition });
        let (status, body) = s.server.call(Method::POST, "/v1/rules", &s.key, Some(spec));
        assert_eq!((status, body["error"]["field"].as_str()), (400, Some(field)), "{body}");
    }
    let (status, body) = s.server.call(Method::GET, "/v1/notifications?limit=0", &s.key, None);
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("limit")), "{body}");
}

#[test]
fn an_alarm_reminds_every_hour_up_to_the_cap_per_window() {
    let s = Scenario::start();
    let rule = s.rule(json!({
        "name": "Errors today", "scope": { "type": "each" },
        "frequency": { "every": "1h" }, "max_per_window": 2,
        "condition": { "kind": "threshold", "window": { "calendar": "day" }, "operator": ">=", "value": 1,
                       "metric": { "event_types": ["error"], "aggregate": "count" } },
    }));
    s.send(vec![event("e1", "cus", "error", "PT1M", json!({}))]);
    s.clock("PT59M");
    assert_eq!(s.kinds(&rule), ["alarm"]);
    s.clock("PT1H1M");
    assert_eq!(s.kinds(&rule), ["alarm", "reminder"], "the scheduler reminds while the alarm lasts");
    s.clock("PT5H");
    assert_eq!(s.kinds(&rule), ["alarm", "reminder"], "two per day at most");
}
