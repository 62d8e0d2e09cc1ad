//! Delivery figures: `cargo bench -p klaxon --bench delivery`.
//!
//! A real server (the release binary, sled in a temp folder) with one rule notifying a signed
//! webhook channel of every `signup` event, and a receiver on 127.0.0.1 (axum) that notes when
//! each event's webhook arrives. Measured:
//! - signed webhook deliveries per second: 20,000 events sent in batches of 500, timed until
//!   the receiver has all 20,000 webhooks (each rendered, signed, sent, answered 200 and its
//!   attempt recorded);
//! - the time from sending an event to its webhook arriving, p50 and p99, at a steady 200
//!   events per second (batches of 10 every 50 ms) for 10 seconds.

#[path = "../../tests/integration/support.rs"]
#[allow(dead_code)]
mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use reqwest::Method;
use serde_json::{Value, json};
use support::Server;

const THROUGHPUT_EVENTS: usize = 20_000;
const THROUGHPUT_BATCH: usize = 500;
const STEADY_BATCH: usize = 10;
const STEADY_EVERY: Duration = Duration::from_millis(50);
const STEADY_FOR: Duration = Duration::from_secs(10);

type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

fn main() {
    let arrivals: Arrivals = Arc::default();
    let url = receiver(arrivals.clone());
    let server = Server::start_with(Some("[delivery]\nallow_private = [\"127.0.0.0/8\"]\n"), &[]);
    let (_, key) = server.tenant("bench");
    let (status, channel) = server.call(
        Method::POST,
        "/v1/channels",
        &key,
        Some(json!({ "name": "bench", "kind": "webhook", "url": url, "max_in_flight": 64 })),
    );
    assert_eq!(status, 201, "{channel}");
    let (status, body) = server.call(
        Method::POST,
        "/v1/rules",
        &key,
        Some(json!({
            "name": "Every signup", "scope": { "type": "each" }, "channels": [channel["id"]],
            "condition": { "kind": "event_match", "matches": [{ "event_type": "signup" }] },
        })),
    );
    assert_eq!(status, 201, "{body}");

    let started = Instant::now();
    for b in 0..THROUGHPUT_EVENTS / THROUGHPUT_BATCH {
        let events: Vec<Value> = (0..THROUGHPUT_BATCH).map(|i| signup(&format!("t{b}-{i}"))).collect();
        send(&server, &key, events);
    }
    let sent = started.elapsed().as_secs_f64();
    wait_for(&arrivals, THROUGHPUT_EVENTS);
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "signed webhook deliveries: {:.0}/s ({THROUGHPUT_EVENTS} events sent in {sent:.1} s, all webhooks received in {seconds:.1} s)",
        THROUGHPUT_EVENTS as f64 / seconds
    );

    arrivals.lock().unwrap().clear();
    let mut sent_at: HashMap<String, Instant> = HashMap::new();
    let started = Instant::now();
    let mut next = started;
    let mut n = 0;
    while started.elapsed() < STEADY_FOR {
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        next += STEADY_EVERY;
        let ids: Vec<String> = (0..STEADY_BATCH).map(|i| format!("s{n}-{i}")).collect();
        n += 1;
        let now = Instant::now();
        sent_at.extend(ids.iter().map(|id| (id.clone(), now)));
        send(&server, &key, ids.iter().map(|id| signup(id)).collect());
    }
    wait_for(&arrivals, sent_at.len());
    let arrivals = arrivals.lock().unwrap();
    let mut latencies: Vec<Duration> = sent_at.iter().map(|(id, at)| arrivals[id].duration_since(*at)).collect();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "event sent -> signed webhook received: p50 {:.2} ms, p99 {:.2} ms ({} events at {} events/s)",
        at(0.50).as_secs_f64() * 1000.0,
        at(0.99).as_secs_f64() * 1000.0,
        latencies.len(),
        STEADY_BATCH as u64 * 1000 / STEADY_EVERY.as_millis() as u64,
    );
}

fn signup(id: &str) -> Value {
    json!({ "id": id, "customer_id": format!("cus_{id}"), "type": "signup", "timestamp": jiff::Timestamp::now() })
}

fn send(server: &Server, key: &str, events: Vec<Value>) {
    let count = events.len() as u64;
    let (status, body) = server.call(Method::POST, "/v1/events", key, Some(json!({ "events": events })));
    assert_eq!((status, body["notifications"].as_u64()), (200, Some(count)), "{body}");
}

fn wait_for(arrivals: &Arrivals, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while arrivals.lock().unwrap().len() < n {
        assert!(Instant::now() < deadline, "only {} of {n} webhooks arrived", arrivals.lock().unwrap().len());
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A webhook receiver on its own runtime; answers its URL.
fn receiver(arrivals: Arrivals) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(format!("http://{}/hook", listener.local_addr().unwrap())).unwrap();
            let app = Router::new().route(
                "/hook",
                post(move |body: String| async move {
                    let now = Instant::now();
                    let message: Value = serde_json::from_str(&body).unwrap();
                    let id = message["data"]["event"]["id"].as_str().unwrap().to_string();
                    arrivals.lock().unwrap().insert(id, now);
                }),
            );
            axum::serve(listener, app).await.unwrap();
        });
    });
    rx.recv().unwrap()
}
