//! Cohorts end to end: membership kept as events arrive and time passes (the test moves the
//! clock), batches of entries and exits sent by cohort rules, a restart with a batch pending, a
//! new cohort computed in the background over stored customers, and bad definitions refused.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::delivery::Setup;
use crate::receivers::Receiver;

/// `Setup` starts the clock here: a Monday, midnight UTC.
const MONDAY: &str = "2030-01-07T00:00:00Z";

/// `span` (ISO 8601, days allowed, may be negative) after `MONDAY`.
fn at(span: &str) -> String {
    let start: jiff::Timestamp = MONDAY.parse().unwrap();
    let span: jiff::Span = span.parse().unwrap();
    start.to_zoned(jiff::tz::TimeZone::UTC).checked_add(span).unwrap().timestamp().to_string()
}

fn post(s: &Setup, path: &str, body: Value) -> Value {
    let (status, body) = s.server.call(Method::POST, path, &s.key, Some(body));
    assert_eq!(status, 201, "{body}");
    body
}

fn get(s: &Setup, path: &str) -> Value {
    let (status, body) = s.server.call(Method::GET, path, &s.key, None);
    assert_eq!(status, 200, "{body}");
    body
}

/// Creates a cohort and waits for its first membership.
fn cohort(s: &Setup, spec: Value) -> String {
    let created = post(s, "/v1/cohorts", spec);
    assert_eq!(created["status"], "computing", "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    wait_ready(s, &id);
    id
}

fn wait_ready(s: &Setup, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let cohort = get(s, &format!("/v1/cohorts/{id}"));
        if cohort["status"] == "ready" {
            return cohort;
        }
        assert!(Instant::now() < deadline, "cohort not computed: {cohort}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn cohort_rule(s: &Setup, cohort: &str, batch_interval: &str, channels: &[&Value]) -> String {
    let channels: Vec<&Value> = channels.iter().map(|c| &c["id"]).collect();
    let rule = post(
        s,
        "/v1/rules",
        json!({ "name": "Cohort changes", "scope": { "type": "all" }, "channels": channels,
                "condition": { "kind": "cohort", "cohort": cohort, "batch_interval": batch_interval } }),
    );
    rule["id"].as_str().unwrap().to_string()
}

fn send(s: &Setup, events: Vec<Value>) {
    let (status, body) = s.server.call(Method::POST, "/v1/events", &s.key, Some(json!({ "events": events })));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rejected"], json!([]), "{body}");
}

fn event(id: &str, customer: &str, kind: &str, timestamp: &str, properties: Value) -> Value {
    json!({ "id": id, "customer_id": customer, "type": kind, "timestamp": timestamp, "properties": properties })
}

/// The rule's notifications, oldest first.
fn batches(s: &Setup, rule: &str) -> Vec<Value> {
    let mut items = get(s, &format!("/v1/notifications?rule_id={rule}"))["items"].as_array().unwrap().clone();
    items.reverse();
    items
}

fn ids(members: &Value) -> Vec<String> {
    let mut ids: Vec<String> = members.as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().into()).collect();
    ids.sort();
    ids
}

fn member_ids(s: &Setup, cohort: &str) -> Vec<String> {
    let page = get(s, &format!("/v1/cohorts/{cohort}/members"));
    page["items"].as_array().unwrap().iter().map(|m| m["customer_id"].as_str().unwrap().to_string()).collect()
}

#[test]
fn first_seen_today_with_a_failed_call_enters_in_one_batch_and_leaves_the_next_day() {
    let s = Setup::start("");
    let receiver = Receiver::start();
    let channel = s.webhook(&receiver.url);
    let cohort = cohort(
        &s,
        json!({ "name": "New and failing", "criteria": [
            { "kind": "first_seen", "within": { "calendar": "day" } },
            { "kind": "performed", "event_type": "api_call", "within": { "calendar": "day" },
              "filters": [{ "field": "event.status", "op": "=", "value": 400 }] },
        ] }),
    );
    let rule = cohort_rule(&s, &cohort, "15m", &[&channel]);

    // Seen yesterday already: not new today, whatever it does now.
    send(&s, vec![event("old", "cus_old", "login", &at("-PT2H"), json!({}))]);
    s.clock(&at("PT1M"));
    for (i, customer) in ["cus_a", "cus_b", "cus_c"].iter().enumerate() {
        send(&s, vec![event(&format!("e{i}"), customer, "api_call", &at("PT1M"), json!({ "status": 400 }))]);
    }
    send(
        &s,
        vec![
            event("ok", "cus_fine", "api_call", &at("PT1M"), json!({ "status": 200 })),
            event("old400", "cus_old", "api_call", &at("PT1M"), json!({ "status": 400 })),
        ],
    );
    assert_eq!(member_ids(&s, &cohort), ["cus_a", "cus_b", "cus_c"]);
    let (_, memberships) = s.server.call(Method::GET, "/v1/customers/cus_a/cohorts", &s.key, None);
    assert_eq!(memberships["items"][0]["cohort_id"], cohort.as_str(), "{memberships}");
    assert!(batches(&s, &rule).is_empty(), "nothing before the batch interval");

    s.clock(&at("PT16M"));
    let sent = batches(&s, &rule);
    assert_eq!(sent.len(), 1, "{sent:#?}");
    let context = &sent[0]["context"];
    assert_eq!(sent[0]["kind"], "cohort");
    assert_eq!(ids(&context["entered"]), ["cus_a", "cus_b", "cus_c"]);
    assert_eq!((context["entered_count"].as_u64(), context["exited_count"].as_u64()), (Some(3), Some(0)));
    assert_eq!(context["cohort"], json!({ "id": cohort, "name": "New and failing" }));
    let webhook = receiver.wait_for(1)[0].json();
    assert_eq!(webhook["type"], "alert.cohort");
    assert_eq!(ids(&webhook["data"]["entered"]), ["cus_a", "cus_b", "cus_c"]);
    assert!(
        webhook["data"]["headline"].as_str().unwrap().contains("3 entered and 0 left New and failing"),
        "{webhook}"
    );

    // An interval without change sends nothing.
    s.clock(&at("PT40M"));
    assert_eq!(batches(&s, &rule).len(), 1);

    // "Today" ends: they all leave, in one batch.
    s.clock(&at("P1DT1M"));
    assert!(member_ids(&s, &cohort).is_empty());
    s.clock(&at("P1DT20M"));
    let sent = batches(&s, &rule);
    assert_eq!(sent.len(), 2, "{sent:#?}");
    assert_eq!(ids(&sent[1]["context"]["exited"]), ["cus_a", "cus_b", "cus_c"]);
    assert_eq!(sent[1]["context"]["entered"], json!([]));
    s.clock(&at("P1DT2H"));
    assert_eq!(batches(&s, &rule).len(), 2, "no change, no batch");
}

#[test]
fn no_traffic_for_three_days_enters_with_time_and_a_pending_batch_survives_a_kill() {
    let mut s = Setup::start("");
    let cohort = cohort(
        &s,
        json!({ "name": "Quiet for 3 days", "criteria": [{ "kind": "not_performed", "within": { "rolling": "3d" } }] }),
    );
    let rule = cohort_rule(&s, &cohort, "1h", &[]);
    send(&s, vec![event("a1", "cus_a", "usage", MONDAY, json!({})), event("b1", "cus_b", "usage", MONDAY, json!({}))]);
    s.clock(&at("P2D"));
    assert!(member_ids(&s, &cohort).is_empty(), "two days is not three");

    s.clock(&at("P3DT2H"));
    assert_eq!(member_ids(&s, &cohort), ["cus_a", "cus_b"]);
    s.clock(&at("P3DT3H1M"));
    let sent = batches(&s, &rule);
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(ids(&sent[0]["context"]["entered"]), ["cus_a", "cus_b"]);

    // Traffic again: out at once; the batch is pending when the server is killed.
    send(&s, vec![event("b2", "cus_b", "usage", &at("P3DT3H1M"), json!({}))]);
    assert_eq!(member_ids(&s, &cohort), ["cus_a"]);
    s.server.crash_and_restart();
    s.clock(&at("P3DT4H5M"));
    let sent = batches(&s, &rule);
    assert_eq!(sent.len(), 2, "{sent:#?}");
    assert_eq!(ids(&sent[1]["context"]["exited"]), ["cus_b"]);
    s.clock(&at("P3DT6H"));
    assert_eq!(batches(&s, &rule).len(), 2, "sent once");
}

#[test]
fn a_new_cohort_over_ten_thousand_customers_is_computed_in_the_background_and_announces_nothing() {
    let s = Setup::start("");
    for batch in 0..10 {
        let events = (0..1000)
            .map(|i| {
                let n = batch * 1000 + i;
                let kind = if n % 2 == 0 { "api_call" } else { "login" };
                event(&format!("e{n}"), &format!("cus_{n:05}"), kind, MONDAY, json!({ "status": 500 }))
            })
            .collect();
        send(&s, events);
    }
    let created = post(
        &s,
        "/v1/cohorts",
        json!({ "name": "Erroring this week", "criteria": [
            { "kind": "performed", "event_type": "api_call", "within": { "rolling": "7d" },
              "filters": [{ "field": "event.status", "op": ">=", "value": 500 }] },
        ] }),
    );
    assert_eq!(created["status"], "computing");
    let id = created["id"].as_str().unwrap();
    let rule = cohort_rule(&s, id, "1m", &[]);
    // Ingest answers while the cohort is computed.
    let started = Instant::now();
    send(&s, (0..100).map(|i| event(&format!("late{i}"), &format!("new_{i}"), "login", MONDAY, json!({}))).collect());
    assert!(started.elapsed() < Duration::from_secs(5), "ingest waited {:?}", started.elapsed());

    let ready = wait_ready(&s, id);
    assert_eq!(ready["members"], 5000, "{ready}");
    assert!(ready["computed_at"].is_string());
    let (_, customer) = s.server.call(Method::GET, "/v1/customers/cus_00002/cohorts", &s.key, None);
    assert_eq!(customer["items"][0]["cohort_id"], id);
    s.clock(&at("PT5M"));
    assert!(batches(&s, &rule).is_empty(), "the first membership is not announced");
}

#[test]
fn bad_cohorts_are_refused_with_their_field_and_used_ones_are_kept() {
    let s = Setup::start("");
    let window = json!({ "rolling": "1d" });
    for (spec, field) in [
        (json!({ "name": "", "filters": [{ "field": "customer.tier", "op": "=", "value": "x" }] }), "name"),
        (json!({ "name": "c" }), "criteria"),
        (
            json!({ "name": "c", "timezone": "Mars/Olympus", "criteria": [{ "kind": "last_seen", "within": window }] }),
            "timezone",
        ),
        (json!({ "name": "c", "filters": [{ "field": "event.x", "op": "=", "value": 1 }] }), "filters[0].field"),
        (json!({ "name": "c", "filters": [{ "field": "customer.x", "op": "in", "value": "a" }] }), "filters[0].value"),
        (
            json!({ "name": "c", "criteria": [{ "kind": "performed", "within": { "rolling": "200d" } }] }),
            "criteria[0].within",
        ),
        (
            json!({ "name": "c", "criteria": [{ "kind": "performed", "within": { "calendar": "quarter" } }] }),
            "criteria[0].within",
        ),
        (
            json!({ "name": "c", "criteria": [{ "kind": "performed", "within": { "rolling": "0s" } }] }),
            "criteria[0].within.rolling",
        ),
        (
            json!({ "name": "c", "criteria": [{ "kind": "performed", "event_type": "customer.updated", "within": window }] }),
            "criteria[0].event_type",
        ),
        (
            json!({ "name": "c", "criteria": [{ "kind": "performed", "count": { "op": "exists", "value": 1 }, "within": window }] }),
            "criteria[0].count.op",
        ),
        (json!({ "name": "c", "criteria": [{ "kind": "first_seen" }] }), "criteria[0]"),
        (
            json!({ "name": "c", "criteria": [{ "kind": "not_performed", "within": window,
                                              "filters": [{ "field": "customer.tier", "op": "exists" }] }] }),
            "criteria[0].filters[0].field",
        ),
        (json!({ "name": "c", "criteria": [], "colour": "red" }), "colour"),
    ] {
        let (status, body) = s.server.call(Method::POST, "/v1/cohorts", &s.key, Some(spec.clone()));
        assert_eq!(status, 400, "{spec}: {body}");
        assert_eq!(body["error"]["field"], field, "{spec}: {body}");
    }
    let (status, body) = s.server.call(
        Method::POST,
        "/v1/rules",
        &s.key,
        Some(
            json!({ "name": "r", "scope": { "type": "all" }, "condition": { "kind": "cohort", "cohort": "coh_nope" } }),
        ),
    );
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("condition.cohort")), "{body}");

    let id = cohort(
        &s,
        json!({ "name": "Enterprise", "filters": [{ "field": "customer.tier", "op": "=", "value": "Enterprise" }] }),
    );
    for (condition, scope, field) in [
        (
            json!({ "kind": "cohort", "cohort": id, "batch_interval": "10s" }),
            json!({ "type": "all" }),
            "condition.batch_interval",
        ),
        (json!({ "kind": "cohort", "cohort": id, "on": [] }), json!({ "type": "all" }), "condition.on"),
        (json!({ "kind": "cohort", "cohort": id }), json!({ "type": "each" }), "scope"),
    ] {
        let rule = json!({ "name": "r", "scope": scope, "condition": condition });
        let (status, body) = s.server.call(Method::POST, "/v1/rules", &s.key, Some(rule));
        assert_eq!((status, body["error"]["field"].as_str()), (400, Some(field)), "{body}");
    }
    let rule = cohort_rule(&s, &id, "15m", &[]);
    let (status, body) = s.server.call(Method::DELETE, &format!("/v1/cohorts/{id}"), &s.key, None);
    assert_eq!(status, 409, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains(&rule), "{body}");
    s.server.call(Method::DELETE, &format!("/v1/rules/{rule}"), &s.key, None);
    let (status, _) = s.server.call(Method::DELETE, &format!("/v1/cohorts/{id}"), &s.key, None);
    assert_eq!(status, 204);
}

#[test]
fn customers_show_their_activity_and_the_catalogue_lists_event_types() {
    let s = Setup::start("");
    send(
        &s,
        vec![
            event("e1", "cus_a", "api_call", &at("-PT1H"), json!({ "status": 400, "path": "/v1/x" })),
            event("e2", "cus_a", "api_call", MONDAY, json!({ "status": "teapot" })),
            event("e3", "cus_a", "login", MONDAY, json!({})),
        ],
    );
    let customer = get(&s, "/v1/customers/cus_a");
    assert_eq!(customer["first_seen"], at("-PT1H"));
    assert_eq!(customer["last_seen"], MONDAY);
    assert_eq!(customer["activity"]["api_call"], json!({ "count": 2, "first_seen": at("-PT1H"), "last_seen": MONDAY }));
    assert!(customer.get("cohorts").is_none(), "{customer}");

    // Activity is a field filters can read.
    let cohort = cohort(
        &s,
        json!({ "name": "Callers", "filters": [{ "field": "customer.activity.api_call.count", "op": ">=", "value": 2 }] }),
    );
    assert_eq!(member_ids(&s, &cohort), ["cus_a"]);
    send(&s, vec![event("e4", "cus_b", "api_call", MONDAY, json!({}))]);
    assert_eq!(member_ids(&s, &cohort), ["cus_a"]);
    send(&s, vec![event("e5", "cus_b", "api_call", MONDAY, json!({}))]);
    assert_eq!(member_ids(&s, &cohort), ["cus_a", "cus_b"], "judged again as its activity grows");

    let types = get(&s, "/v1/event-types");
    let api_call = types["items"].as_array().unwrap().iter().find(|t| t["type"] == "api_call").unwrap();
    assert_eq!(api_call["count"], 4);
    assert_eq!(api_call["properties"], json!({ "path": ["string"], "status": ["number", "string"] }));
    let system = types["system"].as_array().unwrap();
    let updated = system.iter().find(|t| t["type"] == "customer.updated").unwrap();
    assert!(updated["properties"].as_array().unwrap().iter().any(|p| p[0] == "changed"), "{updated}");

    // Events older than the retention are refused.
    let old = event("ancient", "cus_a", "login", &at("-P100D"), json!({}));
    let (_, body) = s.server.call(Method::POST, "/v1/events", &s.key, Some(json!({ "events": [old] })));
    assert_eq!(body["rejected"][0]["field"], "timestamp", "{body}");
}

#[test]
fn a_batch_over_a_thousand_customers_is_sent_in_parts_that_say_so() {
    let s = Setup::start("");
    let cohort = cohort(
        &s,
        json!({ "name": "New today", "criteria": [{ "kind": "first_seen", "within": { "calendar": "day" } }] }),
    );
    let rule = cohort_rule(&s, &cohort, "15m", &[]);
    for batch in 0..3 {
        let events = (0..850)
            .map(|i| event(&format!("e{batch}-{i}"), &format!("cus_{batch}_{i:03}"), "signup", MONDAY, json!({})))
            .collect();
        send(&s, events);
    }
    s.clock(&at("PT16M"));
    let sent = batches(&s, &rule);
    assert_eq!(sent.len(), 3, "2,550 customers in parts of at most 1000");
    let parts: Vec<Value> = sent.iter().map(|n| n["context"]["part"].clone()).collect();
    let mut numbers: Vec<u64> = parts.iter().map(|p| p["number"].as_u64().unwrap()).collect();
    numbers.sort();
    assert_eq!(numbers, [1, 2, 3]);
    assert!(parts.iter().all(|p| p["of"] == 3), "{parts:?}");
    let total: u64 = sent.iter().map(|n| n["context"]["entered_count"].as_u64().unwrap()).sum();
    assert_eq!(total, 2550);
    assert!(sent.iter().all(|n| n["context"]["entered_count"].as_u64().unwrap() <= 1000));
}
