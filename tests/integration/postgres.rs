//! Klaxon on PostgreSQL: a node keeps everything in the database (a crash and a new data folder
//! lose nothing it acknowledged), and an embedded installation moves there with `klaxon migrate`,
//! its seed scenarios carrying on in a cluster.
//! Several nodes on one database: `cluster`.

use std::process::{Command, Output};

use reqwest::Method;
use serde_json::{Value, json};

use crate::alerts::{self, Scenario, event, usage};
use crate::delivery::{LOOPBACK_ALLOWED, Setup};
use crate::receivers::{Receiver, Reply, signature_valid};
use crate::support::{ADMIN, Server, guests};

/// The config naming the database at `url`.
fn store(url: &str) -> String {
    format!("[store]\nurl = \"{url}\"\n")
}

/// The same, with receivers on 127.0.0.1 allowed.
pub fn on(url: &str) -> String {
    format!("{LOOPBACK_ALLOWED}{}", store(url))
}

pub fn klaxon(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_klaxon"))
        .args(args)
        .env("KLAXON_ADMIN_TOKEN", ADMIN)
        .output()
        .expect("klaxon runs")
}

pub fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// The customer ids the tenant of `key` has.
fn customers(server: &Server, key: &str) -> Vec<String> {
    let (status, body) = server.call(Method::GET, "/v1/customers", key, None);
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_string()).collect()
}

#[test]
fn a_node_on_postgresql_notifies_and_loses_nothing_to_a_crash_or_a_new_data_folder() {
    let url = klaxon_test_postgres::shared().database();
    let mut s = Setup::start(&store(&url));
    let receiver = Receiver::start();
    let channel = s.webhook(&receiver.url);
    let secret = channel["secrets"][0]["secret"].as_str().unwrap().to_string();
    s.rule(&[&channel]);
    let first = s.signup("cus_1");
    let request = &receiver.wait_for(1)[0];
    assert!(signature_valid(&secret, request), "{request:?}");
    assert_eq!(request.json()["data"]["customer"]["id"], "cus_1", "{}", request.body);
    s.wait_status(&first, "delivered");

    s.server.crash_and_restart();
    s.clock(&s.at("PT1M"));
    assert_eq!(s.notification(&first)["status"], "delivered", "kept across the crash");
    let second = s.signup("cus_2");
    assert_eq!(receiver.wait_for(2)[1].json()["data"]["customer"]["id"], "cus_2");
    s.wait_status(&second, "delivered");

    // Another node, with a data folder of its own, on the same database: the same installation.
    let key = s.key.clone();
    drop(s);
    let node = Server::start_with(Some(&on(&url)), &["--manual-clock"]);
    assert_eq!(customers(&node, &key), ["cus_1", "cus_2"]);
    let (status, rules) = node.call(Method::GET, "/v1/rules", &key, None);
    assert_eq!((status, rules["items"].as_array().map(Vec::len)), (200, Some(1)), "{rules}");
}

#[test]
fn an_embedded_installation_moves_to_a_cluster_with_its_alerts_timers_and_pending_deliveries() {
    let s = Setup::start("");
    let receiver = Receiver::start();
    let channel = s.webhook(&receiver.url);
    s.rule(&[&channel]);
    s.wait_status(&s.signup("cus_1"), "delivered");
    // The seed's first scenario: a customer over 1000 hours in a week alarms, and resolves when
    // the next week starts (a timer the scheduler runs).
    let weekly = json!({
        "name": "Over 1000 hours a week", "scope": { "type": "each" }, "notify_on_resolve": true,
        "channels": [channel["id"]],
        "condition": { "kind": "threshold", "window": { "calendar": "week" }, "operator": ">", "value": 1000,
                       "metric": { "event_types": ["usage"], "aggregate": "sum", "property": "hours" } },
    });
    let (status, weekly) = s.server.call(Method::POST, "/v1/rules", &s.key, Some(weekly));
    assert_eq!(status, 201, "{weekly}");
    let usage = json!({ "id": "u1", "customer_id": "alpha", "type": "usage", "timestamp": s.at("PT1M"),
                        "properties": { "hours": 1100 } });
    let (status, body) = s.server.call(Method::POST, "/v1/events", &s.key, Some(json!({ "events": [usage] })));
    assert_eq!((status, &body["notifications"]), (200, &json!(1)), "{body}");
    receiver.wait_for(2);
    // The second customer's webhook fails once: a retry is pending when the server stops.
    receiver.script(vec![Reply::status(503)]);
    let pending = s.signup("cus_2");
    s.wait_attempts(&pending, 1);
    let (key, mut server) = (s.key.clone(), s.server);
    server.stop("TERM");
    let data = server.data();
    let from = data.to_str().unwrap();

    let url = klaxon_test_postgres::shared().database();
    let dry = klaxon(&["migrate", "--from", from, "--to", &url, "--dry-run"]);
    assert!(dry.status.success(), "{}", text(&dry));
    let customers_line = |output: &Output| {
        let out = String::from_utf8_lossy(&output.stdout).into_owned();
        out.lines().find(|l| l.starts_with("customers ")).map(|l| l.split_whitespace().nth(1).unwrap().to_string())
    };
    assert_eq!(customers_line(&dry).as_deref(), Some("3"), "{}", text(&dry));
    assert!(text(&dry).contains("would copy"), "{}", text(&dry));

    let moved = klaxon(&["migrate", "--from", from, "--to", &url]);
    assert!(moved.status.success(), "the dry run wrote nothing, so the target is empty: {}", text(&moved));
    assert_eq!(customers_line(&moved).as_deref(), Some("3"));
    let again = klaxon(&["migrate", "--from", from, "--to", &url]);
    assert!(!again.status.success());
    assert!(text(&again).contains("the target is not empty"), "{}", text(&again));

    // Two nodes on the database, their clocks moved together.
    let other = Server::start_with(Some(&on(&url)), &["--manual-clock"]);
    let s = Setup::resume(Server::start_with(Some(&on(&url)), &["--manual-clock"]), key, 2);
    let clocks = |to: &str| {
        s.clock(to);
        assert_eq!(other.call(Method::PUT, "/v1/clock", ADMIN, Some(json!({ "now": to }))).0, 200);
    };
    // The retry falls due on the node holding the tenant, and lands.
    clocks(&s.at("PT1H"));
    s.wait_status(&pending, "delivered");
    let received = |customer: &str| receiver.requests().iter().any(|r| r.json()["data"]["customer"]["id"] == customer);
    assert!(received("cus_2"), "the pending delivery was made");
    assert_eq!(customers(&s.server, &s.key), ["alpha", "cus_1", "cus_2"]);
    assert_eq!(customers(&other, &s.key), ["alpha", "cus_1", "cus_2"]);
    s.wait_status(&s.signup("cus_3"), "delivered");

    // A new week: the alert moved with its state and its timer, and resolves once.
    clocks(&s.at("PT169H"));
    let rule = weekly["id"].as_str().unwrap();
    let kinds = || {
        let (_, page) = other.call(Method::GET, &format!("/v1/notifications?rule_id={rule}"), &s.key, None);
        page["items"].as_array().unwrap().iter().map(|n| n["kind"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while kinds() != ["resolved", "alarm"] {
        assert!(std::time::Instant::now() < deadline, "{:?}", kinds());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The notifications' kinds per rule, as `node` lists them (oldest first).
fn kinds(node: &Server, key: &str, rules: &[(&str, String)]) -> Vec<(String, Vec<String>)> {
    let scenario = |rule: &str| {
        let (status, body) = node.call(Method::GET, &format!("/v1/notifications?rule_id={rule}"), key, None);
        assert_eq!(status, 200, "{body}");
        let mut kinds: Vec<String> =
            body["items"].as_array().unwrap().iter().map(|n| n["kind"].as_str().unwrap().to_string()).collect();
        kinds.reverse();
        kinds
    };
    rules.iter().map(|(name, id)| (name.to_string(), scenario(id))).collect()
}

/// What a client reads of the tenant: its customers, its rules with their alert counts, and each
/// rule's alerts and notifications.
fn snapshot(node: &Server, key: &str, rules: &[(&str, String)]) -> Value {
    let read = |path: &str| {
        let (status, body) = node.call(Method::GET, path, key, None);
        assert_eq!(status, 200, "{path}: {body}");
        body
    };
    let per_rule: Vec<Value> = rules
        .iter()
        .map(|(_, id)| {
            json!({ "states": read(&format!("/v1/rules/{id}/states"))["items"],
                    "notifications": read(&format!("/v1/notifications?rule_id={id}"))["items"] })
        })
        .collect();
    json!({ "customers": read("/v1/customers"), "rules": read("/v1/rules"), "per_rule": per_rule })
}

#[test]
fn the_seed_scenarios_begun_on_sled_carry_on_in_a_cluster_after_klaxon_migrate() {
    // Begun on the embedded database: every seed rule, and the events that start its scenario.
    let mut s = Scenario::start();
    assert_eq!(s.server.upload(&s.key, "wow", "condition", &guests().week_over_week_drop).0, 201);
    s.customer("wallet", json!({ "prepaid_credits": 100 }));
    s.customer("big", json!({ "seats": 120, "tier": "Enterprise" }));
    s.customer("quiet", json!({ "plan": "watched" }));
    s.customer("ending", json!({ "contract_end": "2030-01-17" }));
    let hours = |event_type: &str| json!({ "event_types": [event_type], "aggregate": "sum", "property": "hours" });
    let license = json!({ "event_type": "license.activated", "filters": [
        { "field": "customer.seats", "op": ">", "value": 99 }, { "field": "customer.tier", "op": "=", "value": "Enterprise" }] });
    let specs = [
        (
            "threshold",
            json!({ "scope": { "type": "each" }, "notify_on_resolve": true, "condition": { "kind": "threshold",
            "window": { "calendar": "week" }, "operator": ">", "value": 1000, "metric": hours("usage") } }),
        ),
        (
            "percent_change",
            json!({ "scope": { "type": "customer", "customer_id": "cus_1" }, "condition": { "kind": "percent_change",
            "window": { "calendar": "week" }, "direction": "down", "percent": 20, "metric": hours("usage") } }),
        ),
        (
            "balance",
            json!({ "scope": { "type": "each" }, "condition": { "kind": "balance", "balance_field": "prepaid_credits",
            "metric": { "event_types": ["spend"], "aggregate": "sum", "property": "credits" } } }),
        ),
        (
            "steps",
            json!({ "scope": { "type": "all" }, "condition": { "kind": "steps", "target": 1000, "steps": [25, 50, 75, 90],
            "window": { "calendar": "quarter" }, "metric": { "event_types": ["payment"], "aggregate": "sum", "property": "amount" } } }),
        ),
        (
            "event_match",
            json!({ "scope": { "type": "each" }, "condition": { "kind": "event_match", "matches": [license] } }),
        ),
        (
            "inactivity",
            json!({ "scope": { "type": "group", "filters": [{ "field": "customer.plan", "op": "=", "value": "watched" }] },
            "notify_on_resolve": true, "condition": { "kind": "inactivity", "duration": "3d" } }),
        ),
        (
            "offset",
            json!({ "scope": { "type": "each" }, "condition": { "kind": "offset", "field": "contract_end", "offset": "-7d" } }),
        ),
        (
            "plugin",
            json!({ "scope": { "type": "each" }, "condition": { "kind": "plugin", "plugin": "wow",
            "config": { "drop_percent": 20 }, "window": { "calendar": "week" }, "metric": hours("compute") } }),
        ),
    ];
    let rules: Vec<(&str, String)> = specs
        .into_iter()
        .map(|(name, mut spec)| {
            spec["name"] = json!(name);
            (name, s.rule(spec))
        })
        .collect();
    s.clock("P2DT1H");
    let with = |id: &str, customer: &str, kind: &str, offset: &str, properties: Value| {
        event(id, customer, kind, offset, properties)
    };
    s.send(vec![
        usage("u1", "alpha", "PT1H", 1101.0),
        usage("w1a", "cus_1", "P1D", 60.0),
        usage("w1b", "cus_1", "P2D", 40.0),
        with("c1", "wallet", "spend", "PT1M", json!({ "credits": 110 })),
        with("l1", "big", "license.activated", "PT1M", json!({})),
        with("q1", "quiet", "login", "PT1H", json!({})),
        with("k1", "cus_p", "compute", "P1D", json!({ "hours": 100 })),
    ]);
    for (id, amount) in [("p1", 300), ("p2", 250), ("p3", 400), ("p4", 400)] {
        s.send(vec![with(id, "payer", "payment", "PT1M", json!({ "amount": amount }))]);
    }
    let expected = |pairs: &[(&str, &[&str])]| -> Vec<(String, Vec<String>)> {
        let kinds_of = |name: &str| pairs.iter().find(|(n, _)| *n == name).map_or(&[][..], |(_, k)| *k);
        rules
            .iter()
            .map(|(name, _)| (name.to_string(), kinds_of(name).iter().map(|k| k.to_string()).collect()))
            .collect()
    };
    let begun = expected(&[
        ("threshold", &["alarm"]),
        ("balance", &["alarm"]),
        ("steps", &["step", "step", "step", "step"]),
        ("event_match", &["match"]),
    ]);
    assert_eq!(kinds(&s.server, &s.key, &rules), begun);
    let before = snapshot(&s.server, &s.key, &rules);

    // Moved to PostgreSQL, and served by two nodes.
    s.server.stop("TERM");
    let url = klaxon_test_postgres::shared().database();
    let moved = klaxon(&["migrate", "--from", s.server.data().to_str().unwrap(), "--to", &url]);
    assert!(moved.status.success(), "{}", text(&moved));
    let nodes: Vec<Server> = (0..2).map(|_| Server::start_with(Some(&on(&url)), &["--manual-clock"])).collect();
    let clocks = |to: &str| {
        for node in &nodes {
            let now = if to.starts_with('P') { alerts::at(to) } else { to.to_string() };
            let (status, body) = node.call(Method::PUT, "/v1/clock", ADMIN, Some(json!({ "now": now })));
            assert_eq!(status, 200, "{body}");
        }
    };
    clocks("P2DT1H");
    for node in &nodes {
        assert_eq!(snapshot(node, &s.key, &rules), before, "every node reads what the embedded server had");
    }
    let send = |node: &Server, events: Vec<Value>| {
        let (status, body) = node.call(Method::POST, "/v1/events", &s.key, Some(json!({ "events": events })));
        assert_eq!((status, &body["rejected"]), (200, &json!([])), "{body}");
    };

    // The scenarios carry on: timers the embedded server set fire on the node holding the
    // tenant, events go to either node, and each transition notifies once.
    clocks("P3DT2H");
    send(&nodes[0], vec![with("q2", "quiet", "login", "P3DT2H", json!({}))]);
    clocks("P7DT1M");
    clocks("P8D");
    send(&nodes[1], vec![usage("w2a", "cus_1", "P8D", 70.0), usage("late", "cus_1", "P3D", 30.0)]);
    send(&nodes[0], vec![with("k2", "cus_p", "compute", "P8D", json!({ "hours": 50 }))]);
    clocks("P8D");
    clocks("P14DT1S");
    clocks("2030-04-01T00:00:01Z");
    let next_quarter = json!({ "id": "p5", "customer_id": "payer", "type": "payment",
                               "timestamp": "2030-04-01T00:00:01Z", "properties": { "amount": 260 } });
    send(&nodes[1], vec![next_quarter]);
    let carried_on = expected(&[
        ("threshold", &["alarm", "resolved"]),
        ("percent_change", &["alarm"]),
        ("balance", &["alarm"]),
        ("steps", &["step", "step", "step", "step", "step"]),
        ("event_match", &["match"]),
        // Quiet again from its login on until April: a second alarm.
        ("inactivity", &["alarm", "resolved", "alarm"]),
        ("offset", &["offset"]),
        ("plugin", &["alarm"]),
    ]);
    for node in &nodes {
        assert_eq!(kinds(node, &s.key, &rules), carried_on);
    }
    let first_value = |name: &str| {
        let id = &rules.iter().find(|(n, _)| *n == name).unwrap().1;
        let (_, page) = nodes[1].call(Method::GET, &format!("/v1/notifications?rule_id={id}"), &s.key, None);
        page["items"].as_array().unwrap().last().unwrap()["context"]["value"].as_f64().unwrap()
    };
    let change = first_value("percent_change");
    assert!(
        (change - (70.0 - 130.0) / 130.0 * 100.0).abs() < 1e-9,
        "week 2 against week 1 with its late event: {change}"
    );
    // The plugin, compiled on the node holding the tenant, judged the new week as it began: 100
    // hours the week before, none yet.
    assert_eq!(first_value("plugin"), -100.0);
}
