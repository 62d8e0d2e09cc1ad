//! System events end to end: Klaxon's own events (a customer changed, a channel disabled, a
//! delivery given up) matched by `event_match` rules with the usual filters, never sent by a
//! tenant, and never feeding themselves in a loop.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::delivery::{START, Setup};
use crate::receivers::{Receiver, Reply};

/// A rule matching events of `event_type` that pass `filters`, over all customers.
fn system_rule(s: &Setup, event_type: &str, filters: Value, channels: &[&Value]) -> String {
    let channels: Vec<&Value> = channels.iter().map(|c| &c["id"]).collect();
    let (status, body) = s.server.call(
        Method::POST,
        "/v1/rules",
        &s.key,
        Some(json!({ "name": format!("On {event_type}"), "scope": { "type": "all" }, "channels": channels,
                     "condition": { "kind": "event_match", "matches": [{ "event_type": event_type, "filters": filters }] } })),
    );
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_string()
}

fn notifications(s: &Setup, rule: &str) -> Vec<Value> {
    let (_, page) = s.server.call(Method::GET, &format!("/v1/notifications?rule_id={rule}"), &s.key, None);
    page["items"].as_array().unwrap().clone()
}

fn put_customer(s: &Setup, id: &str, fields: Value) {
    let (status, body) =
        s.server.call(Method::PUT, &format!("/v1/customers/{id}"), &s.key, Some(json!({ "fields": fields })));
    assert!(status == 200 || status == 201, "{body}");
}

#[test]
fn a_changed_contract_end_of_an_enterprise_customer_notifies_and_nothing_else_does() {
    let s = Setup::start("");
    let rule = system_rule(
        &s,
        "customer.updated",
        json!([{ "field": "event.changed", "op": "=", "value": "contract_end" },
               { "field": "customer.tier", "op": "=", "value": "Enterprise" }]),
        &[],
    );
    put_customer(&s, "globex", json!({ "tier": "Enterprise", "contract_end": "2030-06-30", "seats": 10 }));
    put_customer(&s, "initech", json!({ "tier": "Pro", "contract_end": "2030-06-30" }));
    assert!(notifications(&s, &rule).is_empty(), "creations are not updates");

    put_customer(&s, "globex", json!({ "tier": "Enterprise", "contract_end": "2030-06-30", "seats": 20 }));
    put_customer(&s, "initech", json!({ "tier": "Pro", "contract_end": "2031-06-30" }));
    assert!(notifications(&s, &rule).is_empty(), "another field, or another tier");

    put_customer(&s, "globex", json!({ "tier": "Enterprise", "contract_end": "2031-06-30", "seats": 20 }));
    let sent = notifications(&s, &rule);
    assert_eq!(sent.len(), 1, "{sent:#?}");
    let event = &sent[0]["context"]["event"];
    assert_eq!(event["type"], "customer.updated");
    assert_eq!(event["customer_id"], "globex");
    assert_eq!(event["properties"]["changes"]["contract_end"], json!({ "old": "2030-06-30", "new": "2031-06-30" }));
    assert!(event["properties"]["actor_key_id"].as_str().unwrap().starts_with("key_"), "{event}");
    assert_eq!(sent[0]["context"]["customer"]["fields"]["tier"], "Enterprise");
}

#[test]
fn tenants_cannot_send_system_events() {
    let s = Setup::start("");
    let event = json!({ "id": "e1", "customer_id": "c", "type": "customer.created", "timestamp": START });
    let (status, body) = s.server.call(Method::POST, "/v1/events", &s.key, Some(json!({ "events": [event] })));
    assert_eq!((status, body["accepted"].as_u64()), (200, Some(0)), "{body}");
    assert_eq!(body["rejected"][0]["field"], "type", "{body}");
    // Nor count them as usage.
    let (status, body) = s.server.call(
        Method::POST,
        "/v1/rules",
        &s.key,
        Some(json!({ "name": "r", "scope": { "type": "all" }, "condition": { "kind": "threshold", "operator": ">",
            "value": 1, "window": { "calendar": "day" },
            "metric": { "event_types": ["rule.created"], "aggregate": "count" } } })),
    );
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("condition.metric.event_types[0]")), "{body}");
}

#[test]
fn a_disabled_channel_is_reported_on_another_channel() {
    let s = Setup::start("disable_after = \"1h\"\n");
    let failing = Receiver::start();
    failing.script((0..20).map(|_| Reply::status(500)).collect());
    let ops = Receiver::start();
    let broken = s.webhook(&failing.url);
    let watch = s.channel(json!({ "name": "platform team", "kind": "webhook", "url": ops.url }));
    system_rule(&s, "channel.disabled", json!([]), &[&watch]);
    s.rule(&[&broken]);
    let id = s.signup("cus_1");
    s.wait_attempts(&id, 1);
    for (offset, attempts) in [("PT10S", 2), ("PT10M", 3), ("PT50M", 4), ("PT4H", 5)] {
        s.clock(&s.at(offset));
        s.wait_attempts(&id, attempts);
    }
    let report = ops.wait_for(1)[0].json();
    assert_eq!(report["type"], "alert.match");
    let event = &report["data"]["event"];
    assert_eq!(event["type"], "channel.disabled");
    assert_eq!(event["properties"]["channel_id"], broken["id"]);
    assert!(event["properties"]["reason"].as_str().unwrap().contains("500"), "{event}");
}

#[test]
fn a_failed_delivery_is_reported_once_and_never_feeds_itself() {
    let s = Setup::start("");
    let gone = Receiver::start();
    gone.script((0..20).map(|_| Reply::status(410)).collect());
    let also_gone = Receiver::start();
    also_gone.script((0..20).map(|_| Reply::status(410)).collect());
    let channel = s.webhook(&gone.url);
    let report_channel = s.channel(json!({ "name": "reports", "kind": "webhook", "url": also_gone.url }));
    let reports = system_rule(&s, "delivery.failed", json!([]), &[&report_channel]);
    s.rule(&[&channel]);
    let id = s.signup("cus_1");
    s.wait_status(&id, "failed");
    also_gone.wait_for(1);
    // The report's own delivery failed too; give a loop time to show itself.
    std::thread::sleep(Duration::from_millis(1500));
    let sent = notifications(&s, &reports);
    assert_eq!(sent.len(), 1, "{sent:#?}");
    let event = &sent[0]["context"]["event"];
    assert_eq!(event["properties"]["notification_id"], id.as_str());
    assert_eq!(event["customer_id"], "cus_1");
    assert_eq!(sent[0]["status"], "failed");
    assert_eq!(also_gone.requests().len(), 1);
}

#[test]
fn a_customer_created_by_its_first_event_is_reported() {
    let s = Setup::start("");
    let rule = system_rule(&s, "customer.created", json!([]), &[]);
    let event = json!({ "id": "e1", "customer_id": "cus_new", "type": "signup", "timestamp": START });
    let (status, body) = s.server.call(Method::POST, "/v1/events", &s.key, Some(json!({ "events": [event] })));
    assert_eq!(status, 200, "{body}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while notifications(&s, &rule).is_empty() {
        assert!(std::time::Instant::now() < deadline, "customer.created was not matched");
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent = notifications(&s, &rule);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["context"]["event"]["customer_id"], "cus_new");
    assert!(sent[0]["context"]["event"]["properties"]["actor_key_id"].is_string());
}
