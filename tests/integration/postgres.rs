//! Klaxon on PostgreSQL: a node keeps everything in the database (a crash and a new data folder
//! lose nothing it acknowledged), and an embedded installation moves there with `klaxon migrate`.
//! Several nodes on one database: `cluster`.

use std::process::{Command, Output};

use reqwest::Method;
use serde_json::json;

use crate::delivery::{LOOPBACK_ALLOWED, Setup};
use crate::receivers::{Receiver, Reply, signature_valid};
use crate::support::{ADMIN, Server};

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
