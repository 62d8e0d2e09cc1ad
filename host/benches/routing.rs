//! The cost of routing: `cargo bench -p klaxon --bench routing`.
//!
//! Two fresh servers (the release binary, sled in a temp folder), each with 1,000 customers and
//! one `event_match` rule of category `billing` (severity `warning`) whose every match is a
//! notification queued for delivery to one channel (disabled, so no attempt competes for the
//! cores). The first server has no subscription and no silence; the second has 50
//! subscriptions and 20 active silences, none of which takes these notifications (subscriptions
//! follow other categories or only `critical`; silences match other customers), so what is
//! measured is the routing decision itself, not a larger fan-out. Two clients send 40,000
//! events each way in batches of 100; each event makes one notification.

#[path = "../../tests/integration/support.rs"]
#[allow(dead_code)]
mod support;

use std::time::Instant;

use reqwest::Method;
use serde_json::{Value, json};
use support::Server;

const CUSTOMERS: usize = 1000;
const EVENTS_PER_RUN: usize = 40_000;
const BATCH: usize = 100;
const CLIENTS: usize = 2;

fn main() {
    let alone = run(false);
    let routed = run(true);
    println!("with 50 subscriptions and 20 silences: {:.0}% of the throughput without", 100.0 * routed / alone);
}

/// Notifications queued per second on a fresh server, with or without the routing load.
fn run(with_routing: bool) -> f64 {
    let server = Server::start_with(Some("[delivery]\nallow_private = [\"127.0.0.0/8\"]\n"), &[]);
    let (_, key) = server.tenant("bench");
    let create = |path: &str, body: Value| {
        let (status, created) = server.call(Method::POST, path, &key, Some(body));
        assert_eq!(status, 201, "{created}");
        created["id"].as_str().unwrap().to_string()
    };
    let channel = create(
        "/v1/channels",
        json!({ "name": "billing", "kind": "webhook", "url": "http://127.0.0.1:9/", "enabled": false }),
    );
    if with_routing {
        for i in 0..10 {
            let (status, body) = server.call(Method::PUT, &format!("/v1/categories/team-{i}"), &key, Some(json!({})));
            assert_eq!(status, 201, "{body}");
        }
        for i in 0..50 {
            let channels = match i % 6 {
                0 => json!({ "billing": [channel] }),
                1 => json!({ "infrastructure": [channel], "configuration": [channel] }),
                n => json!({ format!("team-{}", (i + n) % 10): [channel] }),
            };
            let min = if i % 6 == 0 { "critical" } else { "info" };
            create(
                "/v1/subscriptions",
                json!({ "name": format!("s{i}"), "group": format!("group {}", i % 8), "channels": channels, "min_severity": min }),
            );
        }
        let ends_at = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24);
        for i in 0..20 {
            create(
                "/v1/silences",
                json!({ "matchers": [{ "field": "rule.category", "op": "=", "value": "billing" },
                                     { "field": "customer.id", "op": "=", "value": format!("elsewhere-{i}") }],
                        "ends_at": ends_at, "comment": format!("silence {i}") }),
            );
        }
    }
    create(
        "/v1/rules",
        json!({ "name": "Payment failed", "category": "billing", "severity": "warning", "scope": { "type": "each" },
                "channels": [channel],
                "condition": { "kind": "event_match", "matches": [{ "event_type": "payment.failed" }] } }),
    );
    // Customers exist before the clock starts.
    for chunk in 0..CUSTOMERS / BATCH {
        let events: Vec<Value> =
            (0..BATCH).map(|i| event(&format!("warm-{chunk}-{i}"), chunk * BATCH + i, "warm")).collect();
        send(&server, &key, events, 0);
    }

    let started = Instant::now();
    std::thread::scope(|scope| {
        for client in 0..CLIENTS {
            let (server, key) = (&server, &key);
            scope.spawn(move || {
                for b in 0..EVENTS_PER_RUN / BATCH / CLIENTS {
                    let events: Vec<Value> = (0..BATCH)
                        .map(|i| event(&format!("c{client}-{b}-{i}"), b * BATCH + i, "payment.failed"))
                        .collect();
                    send(server, key, events, BATCH as u64);
                }
            });
        }
    });
    let seconds = started.elapsed().as_secs_f64();
    let rate = EVENTS_PER_RUN as f64 / seconds;
    let label = if with_routing { "50 subscriptions, 20 silences" } else { "no subscription, no silence" };
    println!(
        "{label:>30}: {rate:>7.0} notifications/s queued ({EVENTS_PER_RUN} events in batches of {BATCH}, {seconds:.1} s)"
    );
    rate
}

fn event(id: &str, n: usize, event_type: &str) -> Value {
    let customer = format!("cus_{}", n % CUSTOMERS);
    json!({ "id": id, "customer_id": customer, "type": event_type, "timestamp": jiff::Timestamp::now() })
}

fn send(server: &Server, key: &str, events: Vec<Value>, notifications: u64) {
    let (status, body) = server.call(Method::POST, "/v1/events", key, Some(json!({ "events": events })));
    assert_eq!((status, body["notifications"].as_u64()), (200, Some(notifications)), "{body}");
}
