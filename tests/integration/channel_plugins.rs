//! Channels written by tenants (the `channel` world): the plugin says what to send, Klaxon
//! sends it to the hosts the channel allows, and the plugin judges the answers.

use reqwest::Method;
use serde_json::{Value, json};

use crate::delivery::Setup;
use crate::receivers::{Receiver, Reply};
use crate::support::guests;

fn pagerduty(s: &Setup) {
    let (status, body) = s.server.upload(&s.key, "pagerduty", "channel", &guests().pagerduty);
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["version"]["wit_version"], "0.3.0", "{body}");
}

/// A PagerDuty channel whose Events API is `receiver`, with its routing key a secret.
fn channel(s: &Setup, receiver: &Receiver, allow: &str) -> (u16, Value) {
    s.server.call(
        Method::POST,
        "/v1/channels",
        &s.key,
        Some(json!({
            "name": "pager", "kind": "plugin", "plugin": "pagerduty", "allow_hosts": [allow],
            "config": { "url": receiver.url }, "secret_config": { "routing_key": "R0UTING-KEY-42" },
        })),
    )
}

#[test]
fn a_pagerduty_channel_triggers_and_resolves_one_incident_per_alert() {
    let s = Setup::start("");
    pagerduty(&s);
    let receiver = Receiver::start();
    let (status, pager) = channel(&s, &receiver, "127.0.0.1");
    assert_eq!(status, 201, "{pager}");
    assert!(!pager.to_string().contains("R0UTING"), "the secret is never shown: {pager}");
    let (status, body) = s.server.call(
        Method::POST,
        "/v1/rules",
        &s.key,
        Some(json!({
            "name": "Heavy usage", "scope": { "type": "each" }, "channels": [pager["id"]], "notify_on_resolve": true,
            "severity": "critical",
            "condition": { "kind": "threshold", "window": { "calendar": "day" }, "operator": ">", "value": 10,
                           "metric": { "event_types": ["usage"], "aggregate": "sum", "property": "hours" } },
        })),
    );
    assert_eq!(status, 201, "{body}");
    // PagerDuty is busy at first: the plugin asks to try again, and the next attempt lands.
    receiver.script(vec![
        Reply::json(429, json!({ "status": "throttled" })),
        Reply::json(202, json!({ "status": "success" })),
    ]);
    let now = s.server.call(Method::GET, "/v1/clock", crate::support::ADMIN, None).1["now"].clone();
    let event =
        json!({ "id": "u1", "customer_id": "acme", "type": "usage", "timestamp": now, "properties": { "hours": 12 } });
    let (status, body) = s.server.call(Method::POST, "/v1/events", &s.key, Some(json!({ "events": [event] })));
    assert_eq!((status, &body["notifications"]), (200, &json!(1)), "{body}");
    let (_, page) = s.server.call(Method::GET, "/v1/notifications?limit=1", &s.key, None);
    let alarm = page["items"][0]["id"].as_str().unwrap().to_string();
    let first = s.wait_attempts(&alarm, 1);
    let attempt = &first["deliveries"][0]["attempts"][0];
    assert_eq!(attempt["verdict"], "retry", "{attempt}");
    s.clock(&s.at("PT1H"));
    s.wait_status(&alarm, "delivered");
    let sent = receiver.wait_for(2);
    let trigger = sent[1].json();
    assert_eq!(trigger["event_action"], "trigger", "{trigger}");
    assert_eq!(trigger["routing_key"], "R0UTING-KEY-42");
    assert_eq!(trigger["payload"]["severity"], "critical");
    assert_eq!(trigger["payload"]["summary"], "Heavy usage for acme");
    let dedup_key = trigger["dedup_key"].as_str().unwrap().to_string();
    assert_eq!(sent[0].json()["dedup_key"], dedup_key, "the retry sends the same event");

    // The day ends, the alert resolves, and so does PagerDuty's incident.
    receiver.script(vec![Reply::json(202, json!({ "status": "success" }))]);
    s.clock(&s.at("PT24H"));
    let resolve = receiver.wait_for(3)[2].json();
    assert_eq!(resolve, json!({ "routing_key": "R0UTING-KEY-42", "event_action": "resolve", "dedup_key": dedup_key }));

    // The secret is in no attempt, no line of the plugin's log and no payload shown.
    let (_, alarm_record) = s.server.call(Method::GET, &format!("/v1/notifications/{alarm}/attempts"), &s.key, None);
    let (_, logs) = s.server.call(Method::GET, "/v1/plugins/pagerduty/logs", &s.key, None);
    let (_, notification) = s.server.call(Method::GET, &format!("/v1/notifications/{alarm}"), &s.key, None);
    let request = &notification["deliveries"][0]["payload"]["requests"][0];
    assert!(request["body"].as_str().unwrap().contains("[redacted]"), "{notification}");
    for shown in [alarm_record.to_string(), logs.to_string(), notification.to_string()] {
        assert!(!shown.contains("R0UTING-KEY-42"), "{shown}");
    }
}

#[test]
fn a_channel_plugin_asking_for_a_host_not_allowed_is_refused() {
    let s = Setup::start("");
    pagerduty(&s);
    let receiver = Receiver::start();
    // The plugin would send to 127.0.0.1; the channel allows another host.
    let (status, body) = channel(&s, &receiver, "events.pagerduty.com");
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("allow_hosts")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("127.0.0.1"), "{body}");
    // Hosts must be names, and pass the deployment's address policy.
    for (allow, field) in [("https://127.0.0.1", "allow_hosts[0]"), ("10.1.2.3", "allow_hosts[0]")] {
        let (status, body) = channel(&s, &receiver, allow);
        assert_eq!((status, body["error"]["field"].as_str()), (400, Some(field)), "{allow}: {body}");
    }
    // A config the plugin refuses names `config`.
    let (status, body) = s.server.call(
        Method::POST,
        "/v1/channels",
        &s.key,
        Some(json!({ "name": "pager", "kind": "plugin", "plugin": "pagerduty", "allow_hosts": ["127.0.0.1"],
                     "config": { "url": receiver.url, "routing_key": " " } })),
    );
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("config")), "{body}");
    assert!(receiver.requests().is_empty());
}

#[test]
fn a_channel_plugin_that_traps_or_loops_fails_that_attempt_only() {
    let s = Setup::start("");
    let (status, body) = s.server.upload(&s.key, "hostile", "channel", &guests().hostile_channel);
    assert_eq!(status, 201, "{body}");
    let receiver = Receiver::start();
    let channel = s
        .channel(json!({ "name": "odd", "kind": "plugin", "plugin": "hostile", "allow_hosts": ["127.0.0.1"],
                                    "config": { "url": receiver.url } }));
    s.rule(&[&channel]);
    let trapped = s.signup("trap");
    let looped = s.signup("loop");
    let fine = s.signup("fine");
    s.wait_status(&fine, "delivered");
    assert_eq!(receiver.wait_for(1)[0].json(), json!({ "customer": "fine" }));
    for (id, words) in [(trapped, "trapped"), (looped, "time limit")] {
        let failed = s.wait_status(&id, "failed");
        let error = failed["deliveries"][0]["attempts"][0]["error"].as_str().unwrap_or_default().to_string();
        assert!(error.contains(words), "{id}: {failed}");
    }
    // The server goes on: another customer's notice is delivered after them.
    let after = s.signup("after");
    s.wait_status(&after, "delivered");
    assert_eq!(receiver.wait_for(2)[1].json(), json!({ "customer": "after" }));
}
