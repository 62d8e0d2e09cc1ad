//! Concurrent requests share transactions and flushes: nothing is lost or counted twice, and
//! an answered event survives a crash.

use std::sync::{Arc, Mutex};

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::Server;

const CLIENTS: usize = 16;
const REQUESTS: usize = 40;

fn event(id: &str, customer: &str) -> Value {
    json!({ "id": id, "customer_id": customer, "type": "api_call", "timestamp": jiff::Timestamp::now() })
}

/// Posts one event; answers the body, or `None` when the server did not answer.
fn post(server: &Server, key: &str, event: Value) -> Option<Value> {
    let response =
        server.request(Method::POST, "/v1/events", Some(key)).json(&json!({ "events": [event] })).send().ok()?;
    assert_eq!(response.status(), 200);
    response.json().ok()
}

#[test]
fn concurrent_single_event_requests_lose_nothing_and_count_nothing_twice() {
    let server = Server::start();
    let (_, key) = server.tenant("acme");
    let (status, rule) = server.call(
        Method::POST,
        "/v1/rules",
        &key,
        Some(json!({ "name": "Every call", "scope": { "type": "each" }, "channels": [],
                     "condition": { "kind": "event_match", "matches": [{ "event_type": "api_call" }] } })),
    );
    assert_eq!(status, 201, "{rule}");

    // Each client sends its own events, but every fourth request sends an id its neighbour
    // sends at the same step: the same id arrives twice, at about the same time.
    let totals = Arc::new(Mutex::new((0u64, 0u64, 0u64)));
    std::thread::scope(|scope| {
        for client in 0..CLIENTS {
            let (server, key, totals) = (&server, &key, totals.clone());
            scope.spawn(move || {
                for n in 0..REQUESTS {
                    let id = match n % 4 {
                        3 => format!("shared{}-{n}", client / 2),
                        _ => format!("e{client}-{n}"),
                    };
                    let body = post(server, key, event(&id, &format!("cus_{}", n % 4))).expect("answered");
                    let mut totals = totals.lock().unwrap();
                    totals.0 += body["accepted"].as_u64().unwrap();
                    totals.1 += body["duplicates"].as_u64().unwrap();
                    totals.2 += body["notifications"].as_u64().unwrap();
                }
            });
        }
    });

    // Each shared id is sent by two clients: one is accepted, the other is a duplicate.
    let sent = (CLIENTS * REQUESTS) as u64;
    let shared = (CLIENTS / 2 * REQUESTS / 4) as u64;
    let (accepted, duplicates, notifications) = *totals.lock().unwrap();
    assert_eq!((accepted, duplicates), (sent - shared, shared));
    assert_eq!(notifications, accepted, "one notification per accepted event, none for a duplicate");

    // Each customer's activity counts its accepted events once.
    let mut counted = 0;
    for customer in 0..4 {
        let (status, body) = server.call(Method::GET, &format!("/v1/customers/cus_{customer}"), &key, None);
        assert_eq!(status, 200, "{body}");
        counted += body["activity"]["api_call"]["count"].as_u64().unwrap();
    }
    assert_eq!(counted, accepted);
}

#[test]
fn every_answered_event_survives_a_crash_during_concurrent_ingest() {
    let mut server = Server::start();
    let (_, key) = server.tenant("acme");
    let answered = Arc::new(Mutex::new(Vec::new()));
    std::thread::scope(|scope| {
        for client in 0..8 {
            let (server, key, answered) = (&server, &key, answered.clone());
            scope.spawn(move || {
                for n in 0.. {
                    let id = format!("c{client}-{n}");
                    match post(server, key, event(&id, &format!("cus_{client}"))) {
                        Some(body) if body["accepted"] == 1 => answered.lock().unwrap().push(id),
                        Some(body) => panic!("not accepted: {body}"),
                        None => break,
                    }
                }
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(1500));
        server.kill_now();
    });
    server.crash_and_restart();

    let answered = answered.lock().unwrap().clone();
    assert!(answered.len() > 100, "only {} events were answered before the crash", answered.len());
    // Sent again, every answered event is a duplicate: it was on disk before its answer.
    for chunk in answered.chunks(500) {
        let events: Vec<Value> = chunk.iter().map(|id| event(id, "cus_0")).collect();
        let (status, body) = server.call(Method::POST, "/v1/events", &key, Some(json!({ "events": events })));
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["duplicates"].as_u64(), Some(chunk.len() as u64), "{body}");
    }
}
