//! Incidents: opened by a client, by an incident rule's alert, or by Klaxon about a channel it
//! disabled; each update notifies the category's subscribers; maintenance windows notify when
//! announced, when they start and when they end.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::delivery::Setup;
use crate::receivers::{Received, Receiver};
use crate::support::ADMIN;

fn call(s: &Setup, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    s.server.call(method, path, &s.key, body)
}

fn create(s: &Setup, path: &str, body: Value) -> Value {
    let (status, created) = call(s, Method::POST, path, Some(body));
    assert_eq!(status, 201, "{created}");
    created
}

fn id(record: &Value) -> String {
    record["id"].as_str().unwrap().to_string()
}

/// A webhook channel posting to `receiver`'s `path`, and a subscription of `group` to
/// `category` on it.
fn subscribe(s: &Setup, receiver: &Receiver, path: &str, group: &str, category: &str) -> String {
    let channel = s.channel(json!({ "name": path, "kind": "webhook", "url": format!("{}/{path}", receiver.url) }));
    create(s, "/v1/subscriptions", json!({ "name": group, "group": group, "channels": { category: [id(&channel)] } }));
    id(&channel)
}

/// What an incident or maintenance webhook said: its type, the incident's status, the headline.
fn told(request: &Received) -> (String, String, String) {
    let body = request.json();
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    (text(&body["type"]), text(&body["data"]["incident"]["status"]), text(&body["data"]["headline"]))
}

#[test]
fn each_update_of_an_incident_notifies_its_category_subscribers() {
    let s = Setup::start("");
    let receiver = Receiver::start();
    subscribe(&s, &receiver, "devops", "Tech/DevOps", "infrastructure");
    subscribe(&s, &receiver, "billing", "Billing Admins", "billing");

    let incident = create(
        &s,
        "/v1/incidents",
        json!({ "title": "API latency", "category": "infrastructure", "severity": "critical",
                "components": ["api", "eu-west"], "message": "Requests take 5 s; looking into it." }),
    );
    assert_eq!((incident["status"].as_str(), incident["kind"].as_str()), (Some("investigating"), Some("incident")));
    let path = format!("/v1/incidents/{}", id(&incident));
    for (status, message) in
        [("identified", "A bad deploy."), ("monitoring", "Rolled back; watching."), ("resolved", "All clear.")]
    {
        let (code, updated) =
            call(&s, Method::POST, &format!("{path}/updates"), Some(json!({ "status": status, "message": message })));
        assert_eq!(code, 201, "{updated}");
        assert_eq!(updated["status"], status);
    }
    let mut requests = receiver.wait_for(4);
    std::thread::sleep(Duration::from_millis(300));
    assert!(receiver.requests().iter().all(|r| r.path == "/hook/devops"), "billing hears nothing");
    // Deliveries run concurrently and may arrive in any order; notification ids sort by creation.
    requests.sort_by_key(|r| r.json()["data"]["notification"]["id"].as_str().unwrap().to_string());
    let statuses: Vec<String> = requests.iter().map(|r| told(r).1).collect();
    assert_eq!(statuses, ["investigating", "identified", "monitoring", "resolved"]);
    let (kind, _, headline) = told(&requests[3]);
    assert_eq!((kind.as_str(), headline.as_str()), ("alert.incident", "API latency: resolved"));
    assert_eq!(requests[1].json()["data"]["incident"]["message"], "A bad deploy.");
    assert_eq!(requests[1].json()["data"]["incident"]["components"], json!(["api", "eu-west"]));

    // The timeline keeps each update with the notification that told it.
    let (_, incident) = call(&s, Method::GET, &path, None);
    let timeline = incident["timeline"].as_array().unwrap();
    assert_eq!(timeline.len(), 4, "{incident:#}");
    assert_eq!(timeline[2]["previous_status"], "identified");
    assert!(timeline.iter().all(|u| u["notification_id"].as_str().is_some_and(|n| n.starts_with("ntf_"))));
    let (_, told_by) = call(&s, Method::GET, &format!("/v1/notifications?incident_id={}", id(&incident)), None);
    assert_eq!(told_by["items"].as_array().unwrap().len(), 4);
    assert!(incident["resolved_at"].is_string());

    // Resolved is the end; listings filter by status, category and time.
    let (code, _) = call(&s, Method::POST, &format!("{path}/updates"), Some(json!({ "message": "Postmortem" })));
    assert_eq!(code, 409);
    create(&s, "/v1/incidents", json!({ "title": "Invoices late", "category": "billing" }));
    let count = |query: &str| {
        call(&s, Method::GET, &format!("/v1/incidents?{query}"), None).1["items"].as_array().unwrap().len()
    };
    assert_eq!(count("status=resolved"), 1);
    assert_eq!(count("status=investigating&category=billing"), 1);
    assert_eq!(count("category=configuration"), 0);
    assert_eq!(count(&format!("since={}", s.at("PT1H"))), 0);
    assert_eq!(count(""), 2);
    assert_eq!(receiver.wait_for(5)[4].path, "/hook/billing");
}

#[test]
fn a_maintenance_notifies_when_announced_when_it_starts_and_when_it_ends() {
    let s = Setup::start("");
    let receiver = Receiver::start();
    subscribe(&s, &receiver, "devops", "Tech/DevOps", "infrastructure");
    let maintenance = create(
        &s,
        "/v1/incidents",
        json!({ "kind": "maintenance", "title": "Database upgrade", "category": "infrastructure",
                "starts_at": s.at("PT2H"), "ends_at": s.at("PT4H"), "components": ["db"] }),
    );
    assert_eq!((maintenance["status"].as_str(), maintenance["severity"].as_str()), (Some("scheduled"), Some("info")));
    receiver.wait_for(1);
    s.clock(&s.at("PT2H"));
    receiver.wait_for(2);
    s.clock(&s.at("PT4H"));
    let requests = receiver.wait_for(3);
    let said: Vec<(String, String, String)> = requests.iter().map(told).collect();
    let expected = [
        ("scheduled", "Maintenance scheduled: Database upgrade"),
        ("in_progress", "Maintenance started: Database upgrade"),
        ("resolved", "Maintenance ended: Database upgrade"),
    ];
    for ((kind, status, headline), (want_status, want_headline)) in said.iter().zip(expected) {
        assert_eq!(
            (kind.as_str(), status.as_str(), headline.as_str()),
            ("alert.maintenance", want_status, want_headline)
        );
    }
    let (_, done) = call(&s, Method::GET, &format!("/v1/incidents/{}", id(&maintenance)), None);
    assert_eq!(done["status"], "resolved");
    assert_eq!(done["timeline"].as_array().unwrap().len(), 3);
    // Never as an alarm: no alarm notification was made.
    let (_, alarms) = call(&s, Method::GET, "/v1/notifications?kind=alarm", None);
    assert_eq!(alarms["items"], json!([]));
}

#[test]
fn an_incident_rule_opens_an_incident_in_alarm_and_resolves_it_on_ok() {
    let s = Setup::start("");
    let receiver = Receiver::start();
    subscribe(&s, &receiver, "devops", "Tech/DevOps", "infrastructure");
    let rule = create(
        &s,
        "/v1/rules",
        json!({ "name": "Error burst", "scope": { "type": "all" }, "category": "infrastructure", "incident": true,
                "condition": { "kind": "threshold", "window": { "calendar": "day" }, "operator": ">", "value": 2,
                               "metric": { "event_types": ["error"], "aggregate": "count" } } }),
    );
    let now = s.server.call(Method::GET, "/v1/clock", ADMIN, None).1["now"].clone();
    let events: Vec<Value> = (0..3)
        .map(|i| json!({ "id": format!("err{i}"), "customer_id": "c", "type": "error", "timestamp": now }))
        .collect();
    let (status, body) = call(&s, Method::POST, "/v1/events", Some(json!({ "events": events })));
    assert_eq!((status, &body["notifications"]), (200, &json!(1)), "{body}");

    let (_, open) = call(&s, Method::GET, "/v1/incidents?status=investigating", None);
    let incident = open["items"][0].clone();
    assert_eq!(incident["rule_id"], rule["id"], "{open:#}");
    assert_eq!(incident["title"], "Error burst");
    let alarm = receiver.wait_for(1)[0].json();
    assert_eq!(alarm["type"], "alert.alarm", "the alarm is the incident's first notice: {alarm:#}");
    assert_eq!(alarm["data"]["incident"]["id"], incident["id"]);
    assert_eq!(receiver.requests()[0].path, "/hook/devops");

    // The next day the alert returns to ok: the incident resolves, with a notice (the rule does
    // not ask for one itself).
    s.clock(&s.at("PT24H1M"));
    let resolved = receiver.wait_for(2)[1].json();
    assert_eq!(resolved["type"], "alert.resolved", "{resolved:#}");
    assert_eq!(resolved["data"]["incident"]["status"], "resolved");
    let (_, incident) = call(&s, Method::GET, &format!("/v1/incidents/{}", id(&incident)), None);
    assert_eq!(incident["status"], "resolved");
    assert_eq!(incident["timeline"].as_array().unwrap().len(), 2);
    assert_eq!(incident["timeline"][1]["by"], format!("rule:{}", id(&rule)));

    // A new alarm opens a new incident.
    let later = s.server.call(Method::GET, "/v1/clock", ADMIN, None).1["now"].clone();
    let events: Vec<Value> = (3..6)
        .map(|i| json!({ "id": format!("err{i}"), "customer_id": "c", "type": "error", "timestamp": later }))
        .collect();
    call(&s, Method::POST, "/v1/events", Some(json!({ "events": events })));
    let (_, all) = call(&s, Method::GET, "/v1/incidents", None);
    assert_eq!(all["items"].as_array().unwrap().len(), 2, "{all:#}");
    assert_eq!(receiver.wait_for(3).len(), 3);
}

#[test]
fn a_channel_klaxon_disables_opens_a_configuration_incident() {
    let s = Setup::start("disable_after = \"1h\"\n");
    let receiver = Receiver::start();
    subscribe(&s, &receiver, "admins", "Org Admins", "configuration");
    let failing = Receiver::start();
    failing.script((0..20).map(|_| crate::receivers::Reply::status(500)).collect());
    let channel = s.channel(json!({ "name": "crm", "kind": "webhook", "url": failing.url }));
    s.rule(&[&channel]);
    let n = s.signup("cus_1");
    s.wait_attempts(&n, 1);
    for offset in ["PT10S", "PT10M", "PT50M", "PT4H"] {
        s.clock(&s.at(offset));
    }
    let incident = configuration_incident(&s);
    assert_eq!(incident["title"], "Channel crm was disabled");
    assert_eq!(incident["created_by"], "klaxon");
    assert!(incident["timeline"][0]["message"].as_str().unwrap().contains("500"), "{incident:#}");
    let told = receiver.wait_for(1)[0].json();
    assert_eq!(
        (told["type"].as_str(), told["data"]["rule"]["category"].as_str()),
        (Some("alert.incident"), Some("configuration"))
    );
}

/// Waits for the tenant's first configuration incident.
fn configuration_incident(s: &Setup) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, page) = call(s, Method::GET, "/v1/incidents?category=configuration", None);
        if let Some(first) = page["items"].as_array().unwrap().first() {
            return first.clone();
        }
        assert!(Instant::now() < deadline, "no configuration incident");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_plugin_failing_its_calls_opens_one_configuration_incident() {
    let s = Setup::start("");
    let (status, body) = s.server.upload(&s.key, "hostile", "condition", &crate::support::guests().hostile);
    assert_eq!(status, 201, "{body}");
    create(
        &s,
        "/v1/rules",
        json!({ "name": "Trapping", "scope": { "type": "each" },
                "condition": { "kind": "plugin", "plugin": "hostile", "config": { "behaviour": "trap" } } }),
    );
    let now = s.server.call(Method::GET, "/v1/clock", ADMIN, None).1["now"].clone();
    let events: Vec<Value> = (0..3)
        .map(|i| json!({ "id": format!("u{i}"), "customer_id": format!("c{i}"), "type": "usage", "timestamp": now }))
        .collect();
    call(&s, Method::POST, "/v1/events", Some(json!({ "events": events })));
    let incident = configuration_incident(&s);
    assert_eq!(incident["title"], "Plugin hostile is failing its calls");
    assert!(incident["timeline"][0]["message"].as_str().unwrap().contains("trap"), "{incident:#}");
    // Three customers' calls failed: one incident while it is open.
    std::thread::sleep(Duration::from_millis(1500));
    let (_, all) = call(&s, Method::GET, "/v1/incidents", None);
    assert_eq!(all["items"].as_array().unwrap().len(), 1, "{all:#}");
}

#[test]
fn bad_incidents_and_updates_are_refused_with_their_fields() {
    let s = Setup::start("");
    let refused = |path: &str, body: Value, field: &str| {
        let (status, answer) = call(&s, Method::POST, path, Some(body.clone()));
        assert_eq!(status, 400, "{body} -> {answer}");
        assert_eq!(answer["error"]["field"], field, "{body} -> {answer}");
    };
    refused("/v1/incidents", json!({ "title": "x", "category": "weather" }), "category");
    refused("/v1/incidents", json!({ "title": " ", "category": "billing" }), "title");
    refused("/v1/incidents", json!({ "title": "x", "category": "billing", "status": "scheduled" }), "status");
    refused("/v1/incidents", json!({ "title": "x", "category": "billing", "starts_at": s.at("PT1H") }), "starts_at");
    refused("/v1/incidents", json!({ "kind": "maintenance", "title": "x", "category": "billing" }), "starts_at");
    refused(
        "/v1/incidents",
        json!({ "kind": "maintenance", "title": "x", "category": "billing", "starts_at": s.at("PT2H"), "ends_at": s.at("PT1H") }),
        "ends_at",
    );
    refused(
        "/v1/rules",
        json!({ "name": "r", "scope": { "type": "all" }, "incident": true,
                "condition": { "kind": "threshold", "window": { "calendar": "day" }, "operator": ">", "value": 2,
                               "metric": { "event_types": ["error"], "aggregate": "count" } } }),
        "incident",
    );
    let incident = create(&s, "/v1/incidents", json!({ "title": "x", "category": "billing" }));
    let updates = format!("/v1/incidents/{}/updates", id(&incident));
    refused(&updates, json!({}), "status");
    refused(&updates, json!({ "status": "in_progress" }), "status");
    refused(&updates, json!({ "message": "" }), "message");
    let (status, _) = call(&s, Method::POST, "/v1/incidents/inc_nope/updates", Some(json!({ "message": "m" })));
    assert_eq!(status, 404);
    let viewer = s.server.key(&s.key, "viewer");
    let (status, _) = s.server.call(Method::POST, &updates, &viewer, Some(json!({ "message": "m" })));
    assert_eq!(status, 403);
    let (status, _) = s.server.call(Method::GET, &format!("/v1/incidents/{}", id(&incident)), &viewer, None);
    assert_eq!(status, 200);
}
