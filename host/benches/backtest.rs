//! Backtest figures: `cargo bench -p klaxon --bench backtest`.
//!
//! A real server (the release binary, sled in a temp folder, its clock moved by the bench) holds
//! 100,000 events of 1,000 customers, sent as 200 hourly batches of 500 over 8⅓ days. Measured:
//! how long a backtest of a threshold rule (each customer on its own, a daily sum) takes over
//! all of them, answered at once (inline: at most 10 days and 100,000 events), three runs, and
//! the events replayed per second; then the same over a job (the range taken past 10 days).

#[path = "../../tests/integration/support.rs"]
#[allow(dead_code)]
mod support;

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use support::{ADMIN, Server};

const CUSTOMERS: usize = 1_000;
const BATCHES: usize = 200;
const BATCH: usize = 500;
const START: &str = "2030-01-07T00:00:00Z";

fn main() {
    let server = Server::start_with(None, &["--manual-clock"]);
    let (_, key) = server.tenant("bench");
    let start: jiff::Timestamp = START.parse().unwrap();
    let hour = |n: usize| start + jiff::SignedDuration::from_hours(n as i64);
    let clock = |to: jiff::Timestamp| {
        let (status, body) = server.call(Method::PUT, "/v1/clock", ADMIN, Some(json!({ "now": to })));
        assert_eq!(status, 200, "{body}");
    };
    let sent = Instant::now();
    for b in 0..BATCHES {
        clock(hour(b));
        let events: Vec<Value> = (0..BATCH)
            .map(|i| {
                let n = b * BATCH + i;
                json!({ "id": format!("e{n}"), "customer_id": format!("cus_{}", n % CUSTOMERS), "type": "usage",
                        "timestamp": hour(b), "properties": { "credits": (n % 7) as f64 } })
            })
            .collect();
        let (status, body) = server.call(Method::POST, "/v1/events", &key, Some(json!({ "events": events })));
        assert_eq!((status, body["accepted"].as_u64()), (200, Some(BATCH as u64)), "{body}");
    }
    clock(hour(BATCHES));
    println!("{} events in {BATCHES} batches stored in {:.1} s", BATCHES * BATCH, sent.elapsed().as_secs_f64());

    let rule = json!({
        "name": "Heavy day", "scope": { "type": "each" }, "notify_on_resolve": true,
        "condition": { "kind": "threshold", "window": { "calendar": "day" }, "operator": ">", "value": 30,
                       "metric": { "event_types": ["usage"], "aggregate": "sum", "property": "credits" } },
    });
    let mut runs = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let (status, report) =
            server.call(Method::POST, "/v1/rules/backtest", &key, Some(json!({ "rule": rule, "since": START })));
        let took = started.elapsed();
        assert_eq!((status, report["events"].as_u64()), (200, Some((BATCHES * BATCH) as u64)), "{report}");
        println!("inline backtest: {:.2} s, notifications {}", took.as_secs_f64(), report["counts"]);
        runs.push(took);
    }
    runs.sort();
    let median = runs[1].as_secs_f64();
    println!(
        "inline backtest over {} events ({CUSTOMERS} customers): median {median:.2} s, {:.0} events/s",
        BATCHES * BATCH,
        (BATCHES * BATCH) as f64 / median
    );

    // Past ten days, as a job: its time from start to report.
    clock(hour(11 * 24));
    let started = Instant::now();
    let (status, job) =
        server.call(Method::POST, "/v1/rules/backtest", &key, Some(json!({ "rule": rule, "since": START })));
    assert_eq!(status, 202, "{job}");
    let path = format!("/v1/backtests/{}", job["id"].as_str().unwrap());
    let done = loop {
        let (_, job) = server.call(Method::GET, &path, &key, None);
        if job["state"] != "running" {
            break job;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(done["state"], "done", "{done}");
    println!("the same as a job over 11 days: {:.2} s to its report", started.elapsed().as_secs_f64());
}
