//! Routing by category: recipients in groups, subscriptions (the category × group × channel
//! matrix with a minimum severity), and silences that keep matching notifications from every
//! channel until they expire.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::delivery::Setup;
use crate::receivers::{Receiver, SmtpSink};
use crate::support::ADMIN;

fn create(s: &Setup, path: &str, body: Value) -> Value {
    let (status, created) = s.server.call(Method::POST, path, &s.key, Some(body));
    assert_eq!(status, 201, "{created}");
    created
}

fn id(record: &Value) -> &str {
    record["id"].as_str().unwrap()
}

/// An `event_match` rule on `type` with a category and severity, and channels of its own.
fn rule(s: &Setup, event_type: &str, category: &str, severity: &str, channels: &[&str]) -> String {
    let rule = create(
        s,
        "/v1/rules",
        json!({ "name": format!("{event_type} happened"), "scope": { "type": "each" }, "category": category,
                "severity": severity, "channels": channels,
                "condition": { "kind": "event_match", "matches": [{ "event_type": event_type }] } }),
    );
    id(&rule).to_string()
}

/// Sends one event of `type` for `customer` now; answers the notification made of it.
fn send(s: &Setup, n: u32, event_type: &str, customer: &str) -> Value {
    let now = s.server.call(Method::GET, "/v1/clock", ADMIN, None).1["now"].clone();
    let event = json!({ "id": format!("ev{n}"), "customer_id": customer, "type": event_type, "timestamp": now });
    let (status, body) = s.server.call(Method::POST, "/v1/events", &s.key, Some(json!({ "events": [event] })));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["notifications"], 1, "{body}");
    let (_, page) = s.server.call(Method::GET, "/v1/notifications?limit=20", &s.key, None);
    let made = page["items"].as_array().unwrap().iter().find(|n| n["context"]["event"]["id"] == event["id"]);
    made.unwrap_or_else(|| panic!("no notification of {event}: {page:#}")).clone()
}

fn paths(receiver: &Receiver) -> Vec<String> {
    let mut paths: Vec<String> = receiver.requests().into_iter().map(|r| r.path).collect();
    paths.sort();
    paths
}

#[test]
fn each_category_reaches_exactly_its_subscribers_on_their_channels() {
    let sink = SmtpSink::start();
    let smtp =
        format!("[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nfrom = \"alerts@klaxon.test\"\n", sink.port);
    let s = Setup::start(&smtp);
    let receiver = Receiver::start();
    for (name, email, group) in [
        ("Ada", "ada@example.com", "Org Admins"),
        ("Bo", "bo@example.com", "Billing Admins"),
        ("Cy", "cy@example.com", "Tech/DevOps"),
        ("Di", "di@example.com", "Support Managers"),
    ] {
        create(&s, "/v1/recipients", json!({ "name": name, "email": email, "groups": [group] }));
    }
    let hook = |path: &str| {
        let channel = s.channel(json!({ "name": path, "kind": "webhook", "url": format!("{}/{path}", receiver.url) }));
        id(&channel).to_string()
    };
    let (org, billing, devops, support) = (hook("org"), hook("billing"), hook("devops"), hook("support"));
    let mail = id(&s.channel(json!({ "name": "team mail", "kind": "email" }))).to_string();
    let subscribe = |group: &str, channels: Value, min: &str| {
        create(
            &s,
            "/v1/subscriptions",
            json!({ "name": group, "group": group, "channels": channels, "min_severity": min }),
        )
    };
    subscribe("Org Admins", json!({ "billing": [org], "infrastructure": [org], "configuration": [org] }), "info");
    subscribe("Billing Admins", json!({ "billing": [billing, mail] }), "info");
    subscribe("Tech/DevOps", json!({ "infrastructure": [devops], "configuration": [devops] }), "info");
    subscribe("Support Managers", json!({ "billing": [support], "infrastructure": [support] }), "critical");

    // A billing warning: Org Admins and Billing Admins (webhook and email), not Support
    // Managers (critical only) and not DevOps (another category).
    rule(&s, "invoice.failed", "billing", "warning", &[]);
    let n = send(&s, 1, "invoice.failed", "cus_1");
    let mut routed: Vec<&str> = n["channels"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    routed.sort();
    let mut expected = vec![org.as_str(), billing.as_str(), mail.as_str()];
    expected.sort();
    assert_eq!(routed, expected, "{n:#}");
    assert_eq!(n["subscriptions"].as_array().unwrap().len(), 2, "{n:#}");
    receiver.wait_for(2);
    let emails = sink.wait_for(1);
    assert_eq!(emails[0]["rcpt_tos"], json!(["bo@example.com"]), "the group's members: {emails:?}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(paths(&receiver), ["/hook/billing", "/hook/org"]);

    // A critical infrastructure alert with a channel of its own that a subscription also uses:
    // that channel once.
    rule(&s, "host.down", "infrastructure", "critical", &[&devops]);
    let n = send(&s, 2, "host.down", "cus_1");
    assert_eq!(n["channels"].as_array().unwrap().len(), 3, "org, devops once, support: {n:#}");
    receiver.wait_for(5);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(paths(&receiver), ["/hook/billing", "/hook/devops", "/hook/org", "/hook/org", "/hook/support"]);
    assert_eq!(sink.wait_for(1).len(), 1, "no more email");

    // The subscription's test: a sample to each of its channels, its group addressed.
    let billing_admins = s.server.call(Method::GET, "/v1/subscriptions", &s.key, None).1["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|sub| sub["group"] == "Billing Admins")
        .unwrap()
        .clone();
    let (status, tested) =
        s.server.call(Method::POST, &format!("/v1/subscriptions/{}/test", id(&billing_admins)), &s.key, None);
    assert_eq!(status, 200, "{tested}");
    let items = tested["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{tested:#}");
    assert!(items.iter().all(|i| i["attempt"]["verdict"] == "delivered" && i["categories"] == json!(["billing"])));
    receiver.wait_for(6);
    assert_eq!(sink.wait_for(2)[1]["rcpt_tos"], json!(["bo@example.com"]));
}

#[test]
fn a_silence_mutes_what_it_matches_until_it_expires() {
    let s = Setup::start("");
    let receiver = Receiver::start();
    let channel = s.webhook(&receiver.url);
    let rule_id = rule(&s, "invoice.failed", "billing", "warning", &[id(&channel)]);
    for (customer, tier) in [("big", "Enterprise"), ("small", "Pro")] {
        let (status, body) = s.server.call(
            Method::PUT,
            &format!("/v1/customers/{customer}"),
            &s.key,
            Some(json!({ "fields": { "tier": tier } })),
        );
        assert_eq!(status, 201, "{body}");
    }
    let silence = create(
        &s,
        "/v1/silences",
        json!({ "matchers": [{ "field": "rule.id", "op": "=", "value": rule_id },
                             { "field": "customer.tier", "op": "=", "value": "Enterprise" },
                             { "field": "rule.severity", "op": "in", "value": ["warning", "critical"] }],
                "ends_at": s.at("PT1H"), "comment": "Known billing outage for Enterprise" }),
    );
    assert_eq!(silence["state"], "active", "{silence}");
    assert!(silence["created_by"].as_str().unwrap().starts_with("key_"), "{silence}");

    let muted = send(&s, 1, "invoice.failed", "big");
    assert_eq!(muted["status"], "silenced", "{muted:#}");
    assert_eq!(muted["reason"], format!("silenced by {}", id(&silence)));
    assert_eq!(muted["deliveries"], json!([]));
    let through = send(&s, 2, "invoice.failed", "small");
    s.wait_status(through["id"].as_str().unwrap(), "delivered");
    let (_, silenced) = s.server.call(Method::GET, "/v1/notifications?status=silenced", &s.key, None);
    assert_eq!(silenced["items"].as_array().unwrap().len(), 1, "{silenced:#}");

    // Past its end, the silence stops matching by itself.
    s.clock(&s.at("PT1H1M"));
    let (_, expired) = s.server.call(Method::GET, &format!("/v1/silences/{}", id(&silence)), &s.key, None);
    assert_eq!(expired["state"], "expired");
    let after = send(&s, 3, "invoice.failed", "big");
    s.wait_status(after["id"].as_str().unwrap(), "delivered");
    assert_eq!(receiver.wait_for(2).len(), 2);

    // Deleting a silence expires it at once and keeps it listed.
    let another = create(
        &s,
        "/v1/silences",
        json!({ "matchers": [{ "field": "rule.category", "op": "=", "value": "billing" }],
                "ends_at": s.at("PT24H"), "comment": "maintenance" }),
    );
    assert_eq!(send(&s, 4, "invoice.failed", "small")["status"], "silenced");
    let (status, ended) = s.server.call(Method::DELETE, &format!("/v1/silences/{}", id(&another)), &s.key, None);
    assert_eq!((status, ended["state"].as_str()), (200, Some("expired")), "{ended}");
    assert_ne!(send(&s, 5, "invoice.failed", "small")["status"], "silenced");
    let (_, all) = s.server.call(Method::GET, "/v1/silences", &s.key, None);
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
}

#[test]
fn bad_recipients_subscriptions_silences_and_categories_are_refused_with_their_fields() {
    let s = Setup::start("");
    let receiver = Receiver::start();
    let channel = s.webhook(&receiver.url);
    let channel_id = id(&channel).to_string();
    let refused = |method: Method, path: &str, body: Value, field: &str| {
        let (status, answer) = s.server.call(method, path, &s.key, Some(body.clone()));
        assert_eq!(status, 400, "{body} -> {answer}");
        assert_eq!(answer["error"]["field"], field, "{body} -> {answer}");
    };
    refused(Method::POST, "/v1/recipients", json!({ "name": "Ada", "email": "not an address" }), "email");
    refused(Method::POST, "/v1/recipients", json!({ "name": "Ada", "email": "a@b.c", "phone": "call me" }), "phone");
    refused(Method::POST, "/v1/recipients", json!({ "name": " ", "email": "a@b.c" }), "name");
    let sub = |extra: Value| {
        let mut body = json!({ "name": "s", "group": "Ops", "channels": { "billing": [channel_id] } });
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    refused(
        Method::POST,
        "/v1/subscriptions",
        sub(json!({ "channels": { "weather": [channel_id] } })),
        "channels.weather",
    );
    refused(
        Method::POST,
        "/v1/subscriptions",
        sub(json!({ "channels": { "billing": ["chn_nope"] } })),
        "channels.billing",
    );
    refused(Method::POST, "/v1/subscriptions", sub(json!({ "channels": {} })), "channels");
    refused(Method::POST, "/v1/subscriptions", sub(json!({ "recipient": "rcp_x" })), "group");
    refused(
        Method::POST,
        "/v1/subscriptions",
        json!({ "name": "s", "recipient": "rcp_nope", "channels": { "billing": [channel_id] } }),
        "recipient",
    );
    refused(Method::POST, "/v1/subscriptions", sub(json!({ "min_severity": "loud" })), "min_severity");
    let silence = |extra: Value| {
        let mut body = json!({ "matchers": [{ "field": "rule.category", "op": "=", "value": "billing" }],
                               "ends_at": s.at("PT1H"), "comment": "why" });
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    refused(Method::POST, "/v1/silences", silence(json!({ "starts_at": s.at("PT2H") })), "ends_at");
    refused(Method::POST, "/v1/silences", silence(json!({ "ends_at": s.at("-PT1H") })), "ends_at");
    refused(Method::POST, "/v1/silences", silence(json!({ "matchers": [] })), "matchers");
    refused(
        Method::POST,
        "/v1/silences",
        silence(json!({ "matchers": [{ "field": "weather", "op": "=", "value": 1 }] })),
        "matchers[0].field",
    );
    refused(
        Method::POST,
        "/v1/silences",
        silence(json!({ "matchers": [{ "field": "rule.severity", "op": "=", "value": "loud" }] })),
        "matchers[0].value",
    );
    refused(
        Method::POST,
        "/v1/silences",
        silence(json!({ "matchers": [{ "field": "labels.team", "op": "in", "value": [] }] })),
        "matchers[0].value",
    );
    refused(Method::POST, "/v1/silences", silence(json!({ "comment": "" })), "comment");
    refused(Method::PUT, "/v1/categories/Bad%20Name", json!({ "description": "x" }), "name");
    refused(
        Method::POST,
        "/v1/rules",
        json!({ "name": "r", "scope": { "type": "all" }, "category": "weather",
                "condition": { "kind": "event_match", "matches": [{ "event_type": "x" }] } }),
        "category",
    );

    // Categories: three built in, the tenant's own beside them; a used one cannot go.
    let (status, mine) =
        s.server.call(Method::PUT, "/v1/categories/security", &s.key, Some(json!({ "description": "Break-ins" })));
    assert_eq!(status, 201, "{mine}");
    let (_, all) = s.server.call(Method::GET, "/v1/categories", &s.key, None);
    let names: Vec<&str> = all["items"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["billing", "configuration", "infrastructure", "security"]);
    let (status, _) =
        s.server.call(Method::PUT, "/v1/categories/billing", &s.key, Some(json!({ "description": "Money" })));
    assert_eq!(status, 200);
    assert_eq!(s.server.call(Method::GET, "/v1/categories/billing", &s.key, None).1["description"], "Money");
    assert_eq!(s.server.call(Method::DELETE, "/v1/categories/billing", &s.key, None).0, 409);
    let sub = create(
        &s,
        "/v1/subscriptions",
        json!({ "name": "s", "group": "Sec", "channels": { "security": [channel_id] } }),
    );
    assert_eq!(s.server.call(Method::DELETE, "/v1/categories/security", &s.key, None).0, 409);
    assert_eq!(s.server.call(Method::DELETE, &format!("/v1/channels/{channel_id}"), &s.key, None).0, 409);
    assert_eq!(s.server.call(Method::DELETE, &format!("/v1/subscriptions/{}", id(&sub)), &s.key, None).0, 204);
    assert_eq!(s.server.call(Method::DELETE, "/v1/categories/security", &s.key, None).0, 204);

    // Editors change only their own; viewers read.
    let viewer = s.server.key(&s.key, "viewer");
    let (status, _) =
        s.server.call(Method::POST, "/v1/recipients", &viewer, Some(json!({ "name": "V", "email": "v@x.io" })));
    assert_eq!(status, 403);
    let editor = s.server.key(&s.key, "editor");
    let theirs = create(&s, "/v1/recipients", json!({ "name": "Ada", "email": "ada@x.io" }));
    let (status, _) = s.server.call(Method::DELETE, &format!("/v1/recipients/{}", id(&theirs)), &editor, None);
    assert_eq!(status, 403);
}

#[test]
fn a_recurring_silence_mutes_its_sunday_window_and_not_the_monday() {
    let s = Setup::start("");
    let receiver = Receiver::start();
    let channel = s.webhook(&receiver.url);
    let rule_id = rule(&s, "invoice.failed", "billing", "warning", &[id(&channel)]);
    let refused = |body: Value, field: &str| {
        let (status, error) = s.server.call(Method::POST, "/v1/time-intervals", &s.key, Some(body));
        assert_eq!((status, error["error"]["field"].as_str()), (400, Some(field)), "{error}");
    };
    refused(json!({ "name": "w", "ranges": [{ "times": ["04:00-02:00"] }] }), "ranges[0].times[0]");
    refused(json!({ "name": "w", "timezone": "Europe/Nowhere", "ranges": [{}] }), "timezone");
    let window = create(
        &s,
        "/v1/time-intervals",
        json!({ "name": "sunday-maintenance", "timezone": "Europe/Berlin",
                "ranges": [{ "weekdays": ["sunday"], "times": ["02:00-04:00"] }] }),
    );
    assert_eq!(window["holds_now"], false);
    // Sunday 2030-01-13 02:00 in Berlin (UTC+1).
    assert_eq!(window["next_start"], "2030-01-13T01:00:00Z");
    let silence = json!({ "matchers": [{ "field": "rule.id", "op": "=", "value": rule_id }],
                          "during": ["sunday-maintenance"], "comment": "the weekly maintenance" });
    let (status, error) = s.server.call(
        Method::POST,
        "/v1/silences",
        &s.key,
        Some(json!({ "matchers": silence["matchers"], "comment": "x" })),
    );
    assert_eq!((status, error["error"]["field"].as_str()), (400, Some("ends_at")), "{error}");
    let mut unknown = silence.clone();
    unknown["during"] = json!(["sunday"]);
    let (status, error) = s.server.call(Method::POST, "/v1/silences", &s.key, Some(unknown));
    assert_eq!((status, error["error"]["field"].as_str()), (400, Some("during[0]")), "{error}");
    let silence = create(&s, "/v1/silences", silence);

    s.clock(&s.at("PT145H30M"));
    assert_eq!(send(&s, 1, "invoice.failed", "big")["status"], "silenced", "Sunday 02:30 in Berlin");
    s.clock(&s.at("PT147H"));
    let after = send(&s, 2, "invoice.failed", "big");
    s.wait_status(id(&after), "delivered");
    s.clock(&s.at("PT169H30M"));
    let monday = send(&s, 3, "invoice.failed", "big");
    s.wait_status(id(&monday), "delivered");
    s.clock(&s.at("PT313H59M"));
    assert_eq!(send(&s, 4, "invoice.failed", "big")["status"], "silenced", "the next Sunday, again");
    assert_eq!(receiver.wait_for(2).len(), 2);

    // In use, it stays; once the silence ends, it may go.
    let path = "/v1/time-intervals/sunday-maintenance";
    let (status, error) = s.server.call(Method::DELETE, path, &s.key, None);
    assert_eq!(status, 409, "{error}");
    assert!(error["error"]["message"].as_str().unwrap().contains(id(&silence)), "{error}");
    assert_eq!(s.server.call(Method::DELETE, &format!("/v1/silences/{}", id(&silence)), &s.key, None).0, 200);
    assert_eq!(s.server.call(Method::DELETE, path, &s.key, None).0, 204);
}

#[test]
fn outside_its_active_times_a_channel_holds_or_drops_and_a_subscription_stays_out() {
    let s = Setup::start("");
    let receiver = Receiver::start();
    create(
        &s,
        "/v1/time-intervals",
        json!({ "name": "business-hours", "timezone": "Europe/Berlin",
                "ranges": [{ "weekdays": ["monday:friday"], "times": ["09:00-17:00"] }] }),
    );
    let hook = |path: &str, extra: Value| {
        let mut spec = json!({ "name": path, "kind": "webhook", "url": format!("{}/{path}", receiver.url) });
        spec.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        id(&s.channel(spec)).to_string()
    };
    let (status, error) = s.server.call(
        Method::POST,
        "/v1/channels",
        &s.key,
        Some(json!({ "name": "x", "kind": "webhook", "url": receiver.url, "outside": "drop" })),
    );
    assert_eq!((status, error["error"]["field"].as_str()), (400, Some("outside")), "{error}");
    let held = hook("held", json!({ "active_during": ["business-hours"] }));
    let dropped = hook("dropped", json!({ "active_during": ["business-hours"], "outside": "drop" }));
    let team = hook("team", json!({}));
    create(&s, "/v1/recipients", json!({ "name": "Ada", "email": "ada@example.com", "groups": ["Billing"] }));
    let subscription = create(
        &s,
        "/v1/subscriptions",
        json!({ "name": "office", "group": "Billing", "channels": { "billing": [team] },
                "active_during": ["business-hours"], "outside": "drop" }),
    );
    rule(&s, "invoice.failed", "billing", "warning", &[&held, &dropped]);

    // Monday 01:00 in Berlin: held for one channel until 09:00, dropped for the other, and the
    // subscription does not route.
    let night = send(&s, 1, "invoice.failed", "cus_1");
    assert_eq!(night["channels"], json!([held]), "{night:#}");
    assert!(night["subscriptions"].as_array().is_none_or(|s| s.is_empty()), "{night:#}");
    assert_eq!(night["status"], "held", "{night:#}");
    let opens = s.at("PT8H");
    let reason = night["reason"].as_str().unwrap();
    assert!(reason.starts_with(&format!("held outside active times until {opens}")), "09:00 Berlin: {reason}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(receiver.requests().is_empty());
    s.clock(&opens);
    receiver.wait_for(1);
    assert_eq!(paths(&receiver), ["/hook/held"]);

    // Monday 10:00 in Berlin: everything goes at once.
    s.clock(&s.at("PT9H"));
    let day = send(&s, 2, "invoice.failed", "cus_1");
    assert_eq!(day["subscriptions"], json!([id(&subscription)]), "{day:#}");
    s.wait_status(id(&day), "delivered");
    receiver.wait_for(4);
    assert_eq!(paths(&receiver), ["/hook/dropped", "/hook/held", "/hook/held", "/hook/team"]);
    let (status, _) = s.server.call(Method::DELETE, "/v1/time-intervals/business-hours", &s.key, None);
    assert_eq!(status, 409, "channels and a subscription name it");
}
