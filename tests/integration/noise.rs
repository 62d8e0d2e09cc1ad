//! Noise control: quiet hours hold what is below critical and release it as one digest; a
//! digest channel sends one summary per interval (none for an empty one); grouping sends a
//! group's notifications within `group_wait` as one; held and collecting notifications survive
//! a SIGKILL and go out once.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::delivery::Setup;
use crate::receivers::Receiver;

/// An `event_match` rule of `severity` on `signup` events, notifying `channel`.
fn rule(s: &Setup, channel: &Value, severity: &str, event_type: &str) {
    let (status, body) = s.server.call(
        Method::POST,
        "/v1/rules",
        &s.key,
        Some(json!({
            "name": format!("{event_type} ({severity})"), "scope": { "type": "each" }, "severity": severity,
            "channels": [channel["id"]],
            "condition": { "kind": "event_match", "matches": [{ "event_type": event_type }] },
        })),
    );
    assert_eq!(status, 201, "{body}");
}

/// Sends an event of `event_type` now; answers the notification made of it.
fn send(s: &Setup, n: &str, event_type: &str) -> Value {
    let now = s.server.call(Method::GET, "/v1/clock", crate::support::ADMIN, None).1["now"].clone();
    let event = json!({ "id": n, "customer_id": "cus_1", "type": event_type, "timestamp": now });
    let (status, body) = s.server.call(Method::POST, "/v1/events", &s.key, Some(json!({ "events": [event] })));
    assert_eq!((status, &body["notifications"]), (200, &json!(1)), "{body}");
    let (_, page) = s.server.call(Method::GET, "/v1/notifications?limit=20", &s.key, None);
    let made = page["items"].as_array().unwrap().iter().find(|n| n["context"]["event"]["id"] == event["id"]);
    made.unwrap_or_else(|| panic!("no notification of {event}: {page:#}")).clone()
}

/// The summary a digest or group webhook carried: its type, count and listed items.
fn summary(body: &Value) -> (String, u64, usize) {
    let digest = &body["data"]["digest"];
    (
        body["type"].as_str().unwrap().to_string(),
        digest["count"].as_u64().unwrap(),
        digest["items"].as_array().unwrap().len(),
    )
}

fn settle() {
    std::thread::sleep(Duration::from_millis(1500));
}

#[test]
fn quiet_hours_hold_a_warning_until_they_end_while_a_critical_goes_at_once() {
    let s = Setup::start("");
    let receiver = Receiver::start();
    // START is Monday 00:00 UTC: inside 22:00-06:00 quiet hours that began on Sunday.
    let channel = s.channel(json!({ "name": "on-call", "kind": "webhook", "url": receiver.url,
                                    "quiet_hours": { "timezone": "UTC", "days": ["sun"], "from": "22:00", "to": "06:00" } }));
    rule(&s, &channel, "warning", "usage.high");
    rule(&s, &channel, "critical", "db.down");
    let warning = send(&s, "w1", "usage.high");
    let until = s.at("PT6H");
    assert_eq!(warning["status"], "held", "{warning:#}");
    let reason = warning["reason"].as_str().unwrap();
    assert!(reason.starts_with(&format!("held for quiet hours until {until}")), "{reason}");
    let critical = send(&s, "c1", "db.down");
    s.wait_status(critical["id"].as_str().unwrap(), "delivered");
    let second = send(&s, "w2", "usage.high");
    assert_eq!(second["held"][0]["batch"], warning["held"][0]["batch"], "one digest");
    settle();
    assert_eq!(receiver.requests().len(), 1, "only the critical during quiet hours");

    s.clock(&until);
    let requests = receiver.wait_for(2);
    let digest = requests[1].json();
    assert_eq!(summary(&digest), ("alert.digest".to_string(), 2, 2), "{digest:#}");
    assert_eq!(digest["data"]["headline"], "2 notifications held during quiet hours");
    let listed: Vec<&str> =
        digest["data"]["digest"]["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(listed, [warning["id"].as_str().unwrap(), second["id"].as_str().unwrap()]);
    let batch = warning["held"][0]["batch"].as_str().unwrap();
    let after = s.notification(warning["id"].as_str().unwrap());
    assert_eq!(after["status"], "digested");
    assert!(after["reason"].as_str().unwrap().starts_with(&format!("sent in digest {batch}")), "{after:#}");
    let (_, digested) = s.server.call(Method::GET, "/v1/notifications?status=digested", &s.key, None);
    assert_eq!(digested["items"].as_array().unwrap().len(), 2);

    // Outside quiet hours a warning goes at once.
    let day = send(&s, "w3", "usage.high");
    s.wait_status(day["id"].as_str().unwrap(), "delivered");
}

#[test]
fn an_hourly_digest_sends_one_message_listing_its_notifications_and_nothing_when_empty() {
    let s = Setup::start("");
    let receiver = Receiver::start();
    let channel =
        s.channel(json!({ "name": "digest", "kind": "webhook", "url": receiver.url, "digest": { "every": "1h" } }));
    rule(&s, &channel, "info", "signup");
    s.clock(&s.at("PT10M"));
    for i in 0..5 {
        let n = send(&s, &format!("s{i}"), "signup");
        assert_eq!(n["status"], "held", "{n:#}");
        assert!(n["reason"].as_str().unwrap().contains(&format!("held until {}", s.at("PT1H"))), "{n:#}");
    }
    settle();
    assert!(receiver.requests().is_empty());
    s.clock(&s.at("PT1H"));
    let digest = receiver.wait_for(1)[0].json();
    assert_eq!(summary(&digest), ("alert.digest".to_string(), 5, 5), "{digest:#}");
    assert_eq!(digest["data"]["headline"], "Digest: 5 notifications");
    assert_eq!(digest["data"]["message"].as_str().unwrap().lines().count(), 5, "{digest:#}");
    // The next hour had nothing: nothing is sent.
    s.clock(&s.at("PT2H1M"));
    settle();
    assert_eq!(receiver.requests().len(), 1);
    // The digest itself is in the history, delivered.
    let (_, digests) = s.server.call(Method::GET, "/v1/notifications?kind=digest", &s.key, None);
    assert_eq!(digests["items"][0]["status"], "delivered", "{digests:#}");
}

#[test]
fn grouping_sends_ten_alerts_of_one_rule_within_group_wait_as_one() {
    let s = Setup::start("");
    let receiver = Receiver::start();
    let channel = s.channel(json!({ "name": "grouped", "kind": "webhook", "url": receiver.url,
                                    "group_by": ["rule.id"], "group_wait": "5m" }));
    rule(&s, &channel, "warning", "signup");
    rule(&s, &channel, "warning", "cancel");
    let first = send(&s, "g0", "signup");
    for i in 1..10 {
        let n = send(&s, &format!("g{i}"), "signup");
        assert_eq!(n["held"][0]["batch"], first["held"][0]["batch"]);
    }
    let other = send(&s, "x0", "cancel");
    assert_ne!(other["held"][0]["batch"], first["held"][0]["batch"], "another rule, another group");
    settle();
    assert!(receiver.requests().is_empty());
    s.clock(&s.at("PT5M"));
    let mut bodies: Vec<Value> = receiver.wait_for(2).iter().map(|r| r.json()).collect();
    bodies.sort_by_key(|b| b["data"]["digest"]["count"].as_u64());
    assert_eq!(summary(&bodies[1]), ("alert.group".to_string(), 10, 10));
    assert_eq!(bodies[1]["data"]["headline"], "signup (warning): 10 notifications grouped");
    assert_eq!(summary(&bodies[0]).1, 1);
    let grouped = s.notification(first["id"].as_str().unwrap());
    assert_eq!(grouped["status"], "grouped", "{grouped:#}");
    assert!(grouped["reason"].as_str().unwrap().starts_with("sent in group ntf_"));
}

#[test]
fn held_and_collecting_notifications_survive_a_kill_and_go_out_once() {
    let mut s = Setup::start("");
    let receiver = Receiver::start();
    let digest = s.channel(json!({ "name": "digest", "kind": "webhook", "url": format!("{}/digest", receiver.url),
                         "digest": { "every": "1h" } }));
    let quiet = s.channel(json!({ "name": "quiet", "kind": "webhook", "url": format!("{}/quiet", receiver.url),
                                  "quiet_hours": { "timezone": "UTC", "from": "00:00", "to": "01:00" } }));
    rule(&s, &digest, "warning", "signup");
    rule(&s, &quiet, "warning", "cancel");
    for i in 0..3 {
        send(&s, &format!("s{i}"), "signup");
    }
    send(&s, "c0", "cancel");
    s.server.crash_and_restart();
    s.clock(&s.at("PT10M"));
    send(&s, "s3", "signup");
    s.clock(&s.at("PT1H"));
    let requests = receiver.wait_for(2);
    settle();
    assert_eq!(receiver.requests().len(), 2, "each batch once");
    let by_path = |path: &str| requests.iter().find(|r| r.path == path).unwrap().json();
    assert_eq!(summary(&by_path("/hook/digest")).1, 4, "the three from before the kill and one after");
    assert_eq!(summary(&by_path("/hook/quiet")).1, 1);
}

#[test]
fn bad_quiet_hours_digests_and_grouping_are_refused_with_their_fields() {
    let s = Setup::start("");
    let receiver = Receiver::start();
    let refused = |path: &str, body: Value, field: &str| {
        let (status, answer) = s.server.call(Method::POST, path, &s.key, Some(body.clone()));
        assert_eq!(status, 400, "{body} -> {answer}");
        assert_eq!(answer["error"]["field"], field, "{body} -> {answer}");
    };
    let channel = |extra: Value| {
        let mut body = json!({ "name": "c", "kind": "webhook", "url": receiver.url });
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    let quiet =
        |timezone: &str, from: &str| json!({ "quiet_hours": { "timezone": timezone, "from": from, "to": "07:00" } });
    refused("/v1/channels", channel(quiet("Mars/Olympus", "22:00")), "quiet_hours.timezone");
    refused("/v1/channels", channel(quiet("UTC", "25:00")), "quiet_hours.from");
    refused(
        "/v1/channels",
        channel(json!({ "quiet_hours": { "timezone": "UTC", "days": [], "from": "22:00", "to": "07:00" } })),
        "quiet_hours.days",
    );
    refused("/v1/channels", channel(json!({ "digest": { "every": "1h", "daily_at": "09:00" } })), "digest");
    refused("/v1/channels", channel(json!({ "digest": { "every": "10s" } })), "digest.every");
    refused(
        "/v1/channels",
        channel(json!({ "digest": { "daily_at": "09:00", "timezone": "Nowhere" } })),
        "digest.timezone",
    );
    refused("/v1/channels", channel(json!({ "group_by": ["rule.colour"] })), "group_by[0]");
    refused("/v1/channels", channel(json!({ "group_wait": "1m" })), "group_wait");
    let created = s.webhook(&receiver.url);
    let subscription = json!({ "name": "s", "group": "Ops", "channels": { "billing": [created["id"]] },
                               "quiet_hours": { "timezone": "Europe/Nowhere", "from": "22:00", "to": "07:00" } });
    refused("/v1/subscriptions", subscription, "quiet_hours.timezone");
}
