//! Ingest figures: `cargo bench -p klaxon --bench ingest`.
//!
//! A real server (the release binary, sled in a temp folder) holds 100 active rules of every
//! built-in kind over 10,000 customers. Measured over HTTP on 127.0.0.1:
//! - events per second accepted and evaluated, in batches of 100 and of 1000, from two
//!   clients at once (each event concerns 10 of the rules), and the entries and bytes the store
//!   wrote per event (from `/metrics`);
//! - the time from sending an event to its answer, which comes once the event, the alert
//!   states it changed and the notification it queued are on disk (one transaction, one
//!   flush): p50 and p99 over single-event batches that each queue a notification;
//! - the same throughput with 20 cohorts beside the 100 rules (a second server, given the same
//!   customers and events), and the ratio;
//! - the same throughput with 10 anomaly rules (hourly buckets, weekly seasonality, one per event
//!   type, each customer on its own) beside the 100 rules (a third server), and the ratio;
//! - the time to compute a new cohort over the 10,000 customers and 1,000,000 stored events;
//! - the server's resident memory then (and its peak), from `/proc`.

#[path = "shared/store_writes.rs"]
mod store_writes;
#[path = "../../tests/integration/support.rs"]
#[allow(dead_code)]
mod support;

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use support::Server;

const CUSTOMERS: usize = 10_000;
const EVENT_TYPES: usize = 10;
const EVENTS_PER_RUN: usize = 100_000;
const SENDERS: usize = 2;
const LATENCY_SAMPLES: usize = 2_000;

fn main() {
    // Three servers with the same customers, rules and events: one with 10 anomaly rules too,
    // one with 20 cohorts too.
    let rules_alone = {
        let (server, key) = start(0, 0);
        [100, 1000].map(|batch| throughput(&server, &key, batch, "rules"))
    };
    {
        let (server, key) = start(0, 10);
        for (batch, alone) in [100, 1000].into_iter().zip(rules_alone) {
            let with_anomalies = throughput(&server, &key, batch, "anomaly");
            println!(
                "batches of {batch:>4}: with 10 anomaly rules {:.0}% of the rules alone",
                with_anomalies / alone * 100.0
            );
        }
    }
    let (server, key) = start(20, 0);
    for (batch, alone) in [100, 1000].into_iter().zip(rules_alone) {
        let with_cohorts = throughput(&server, &key, batch, "cohorts");
        println!("batches of {batch:>4}: with 20 cohorts {:.0}% of the rules alone", with_cohorts / alone * 100.0);
    }

    // Customers 0, 10, 20, ... are large Enterprise accounts: a paid license event matches.
    let mut latencies = Vec::with_capacity(LATENCY_SAMPLES);
    for n in 0..LATENCY_SAMPLES {
        let event = event(&format!("latency-{n}"), (n * 10) % CUSTOMERS, 0, "paid");
        let started = Instant::now();
        let (status, body) = server.call(Method::POST, "/v1/events", &key, Some(json!({ "events": [event] })));
        latencies.push(started.elapsed());
        assert_eq!((status, body["notifications"].as_u64()), (200, Some(1)), "{body}");
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "event sent -> notification queued and durable: p50 {:.2} ms, p99 {:.2} ms ({LATENCY_SAMPLES} single-event batches)",
        ms(at(0.50)),
        ms(at(0.99))
    );

    // A new cohort over everything stored: 1,000,000 events in all.
    let stored = 2 * EVENTS_PER_RUN + LATENCY_SAMPLES;
    send_events(&server, &key, 1000, 1_000_000 - stored, "fill");
    let (status, body) = server.call(
        Method::POST,
        "/v1/cohorts",
        &key,
        Some(json!({ "name": "busy", "criteria": [{ "kind": "performed", "event_type": "type3",
            "within": { "rolling": "7d" }, "count": { "op": ">=", "value": 5 } }] })),
    );
    assert_eq!(status, 201, "{body}");
    let took = wait_ready(&server, &key, body["id"].as_str().unwrap());
    let (_, cohort) = server.call(Method::GET, &format!("/v1/cohorts/{}", body["id"].as_str().unwrap()), &key, None);
    println!(
        "new cohort over {CUSTOMERS} customers and 1,000,000 stored events computed in {:.2} s ({} members)",
        took.as_secs_f64(),
        cohort["members"]
    );
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).expect("/proc is readable");
    let mib = |field: &str| {
        let line = status.lines().find(|l| l.starts_with(field)).expect("a memory line");
        let kib: f64 = line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("kB");
        kib / 1024.0
    };
    println!(
        "server memory after 1,000,000 events over {CUSTOMERS} customers, 100 rules and 20 cohorts: resident {:.0} MiB (peak {:.0} MiB)",
        mib("VmRSS:"),
        mib("VmHWM:")
    );
}

/// A fresh server with the customers, the 100 rules, `anomalies` anomaly rules and `cohorts`
/// cohorts (computed), and the tenant's key.
fn start(cohorts: usize, anomalies: usize) -> (Server, String) {
    let server = Server::start();
    let (_, key) = server.tenant("bench");
    let started = Instant::now();
    put_customers(&server, &key);
    println!("{CUSTOMERS} customers stored in {:.1} s", started.elapsed().as_secs_f64());
    for i in 0..100 {
        let (status, body) = server.call(Method::POST, "/v1/rules", &key, Some(rule(i)));
        assert_eq!(status, 201, "{body}");
    }
    for i in 0..anomalies {
        let (status, body) = server.call(Method::POST, "/v1/rules", &key, Some(anomaly_rule(i)));
        assert_eq!(status, 201, "{body}");
    }
    for i in 0..cohorts {
        let (status, body) = server.call(Method::POST, "/v1/cohorts", &key, Some(cohort(i)));
        assert_eq!(status, 201, "{body}");
        wait_ready(&server, &key, body["id"].as_str().unwrap());
    }
    println!("100 rules, {anomalies} anomaly rules and {cohorts} cohorts saved");
    (server, key)
}

/// Events per second accepted in batches of `batch`, from `SENDERS` clients.
fn throughput(server: &Server, key: &str, batch: usize, run: &str) -> f64 {
    let before = store_writes::written(server);
    let started = Instant::now();
    send_events(server, key, batch, EVENTS_PER_RUN, run);
    let seconds = started.elapsed().as_secs_f64();
    let rate = EVENTS_PER_RUN as f64 / seconds;
    println!(
        "{run}: batches of {batch:>4}: {rate:>7.0} events/s accepted and evaluated ({EVENTS_PER_RUN} events in {seconds:.1} s)"
    );
    println!("    store writes per event: {}", store_writes::per_event(server, &before, EVENTS_PER_RUN));
    rate
}

fn send_events(server: &Server, key: &str, batch: usize, total: usize, run: &str) {
    std::thread::scope(|s| {
        for sender in 0..SENDERS {
            s.spawn(move || {
                let batches = total / SENDERS / batch;
                for b in 0..batches {
                    let events: Vec<Value> = (0..batch)
                        .map(|i| {
                            let n = (sender * batches + b) * batch + i;
                            event(&format!("{run}-b{batch}-{n}"), n % CUSTOMERS, n % EVENT_TYPES, "basic")
                        })
                        .collect();
                    let (status, body) =
                        server.call(Method::POST, "/v1/events", key, Some(json!({ "events": events })));
                    assert_eq!((status, body["accepted"].as_u64()), (200, Some(batch as u64)), "{body}");
                }
            });
        }
    });
}

fn wait_ready(server: &Server, key: &str, id: &str) -> Duration {
    let started = Instant::now();
    loop {
        let (_, cohort) = server.call(Method::GET, &format!("/v1/cohorts/{id}"), key, None);
        if cohort["status"] == "ready" {
            return started.elapsed();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Cohort `i`: one of four shapes, on event type `i % 10`.
fn cohort(i: usize) -> Value {
    let event_type = format!("type{}", i % EVENT_TYPES);
    let criterion = match i % 4 {
        0 => json!({ "kind": "performed", "event_type": event_type, "within": { "rolling": "1d" },
                     "count": { "op": ">=", "value": 3 }, "filters": [{ "field": "event.hours", "op": ">", "value": 2 }] }),
        1 => json!({ "kind": "not_performed", "event_type": event_type, "within": { "rolling": "3d" } }),
        2 => json!({ "kind": "last_seen", "within": { "rolling": "7d" } }),
        _ => json!({ "kind": "first_seen", "within": { "calendar": "day" } }),
    };
    let filters = if i.is_multiple_of(2) {
        json!([{ "field": "customer.tier", "op": "=", "value": "Enterprise" }])
    } else {
        json!([])
    };
    json!({ "name": format!("cohort {i}"), "filters": filters, "criteria": [criterion] })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn put_customers(server: &Server, key: &str) {
    std::thread::scope(|s| {
        for part in 0..4 {
            s.spawn(move || {
                for n in (part..CUSTOMERS).step_by(4) {
                    let (tier, seats) = if n % 10 == 0 { ("Enterprise", 150) } else { ("Pro", 5) };
                    let fields = json!({ "tier": tier, "seats": seats, "prepaid_credits": 1e12 });
                    let (status, body) = server.call(
                        Method::PUT,
                        &format!("/v1/customers/cus_{n}"),
                        key,
                        Some(json!({ "fields": fields })),
                    );
                    assert_eq!(status, 201, "{body}");
                }
            });
        }
    });
}

fn event(id: &str, customer: usize, event_type: usize, license: &str) -> Value {
    json!({
        "id": id,
        "customer_id": format!("cus_{customer}"),
        "type": format!("type{event_type}"),
        "timestamp": jiff::Timestamp::now(),
        "properties": { "hours": (customer % 7) as f64 + 0.5, "credits": 1, "license_type": license },
    })
}

/// Anomaly rule `i` watches the hours of event type `i % 10`, per customer, in hourly buckets
/// against the same hour of the previous 8 weeks.
fn anomaly_rule(i: usize) -> Value {
    json!({
        "name": format!("anomaly {i}"), "scope": { "type": "each" },
        "condition": { "kind": "anomaly", "bucket": "1h", "seasonality": "weekly",
                       "metric": { "event_types": [format!("type{}", i % EVENT_TYPES)], "aggregate": "sum", "property": "hours" } },
    })
}

/// Rule `i` watches event type `i % 10`; the ten rules of a type are one of each shape.
fn rule(i: usize) -> Value {
    let event_type = format!("type{}", i % EVENT_TYPES);
    let metric = |aggregate: &str| match aggregate {
        "count" => json!({ "event_types": [event_type], "aggregate": "count" }),
        _ => json!({ "event_types": [event_type], "aggregate": aggregate, "property": "hours" }),
    };
    let never = 1e12;
    let (scope, condition) = match i / EVENT_TYPES {
        0 => (
            json!({ "type": "each" }),
            json!({ "kind": "threshold", "metric": metric("sum"), "window": { "calendar": "week" }, "operator": ">", "value": never }),
        ),
        1 => (
            json!({ "type": "all" }),
            json!({ "kind": "threshold", "metric": metric("count"), "window": { "calendar": "day" }, "operator": ">", "value": never }),
        ),
        2 => (
            json!({ "type": "each" }),
            json!({ "kind": "threshold", "metric": metric("max"), "window": { "rolling": "1h" }, "operator": ">=", "value": never }),
        ),
        3 => (
            json!({ "type": "each" }),
            json!({ "kind": "percent_change", "metric": metric("sum"), "window": { "calendar": "week" }, "direction": "down", "percent": 20 }),
        ),
        4 => (
            json!({ "type": "all" }),
            json!({ "kind": "steps", "metric": metric("sum"), "window": { "calendar": "quarter" }, "target": never, "steps": [25, 50, 75, 90] }),
        ),
        5 => (
            json!({ "type": "each" }),
            json!({ "kind": "balance", "metric": { "event_types": [event_type], "aggregate": "sum", "property": "credits" }, "balance_field": "prepaid_credits" }),
        ),
        6 => (
            json!({ "type": "each" }),
            json!({ "kind": "event_match", "matches": [{ "event_type": event_type, "filters": [
                { "field": "customer.seats", "op": ">", "value": 99 },
                { "field": "customer.tier", "op": "=", "value": "Enterprise" },
                { "field": "event.license_type", "op": "in", "value": ["paid", "community"] } ] }] }),
        ),
        7 => (
            json!({ "type": "group", "filters": [{ "field": "customer.tier", "op": "=", "value": "Enterprise" }] }),
            json!({ "kind": "inactivity", "event_types": [event_type], "duration": "3d" }),
        ),
        8 => (
            json!({ "type": "group", "filters": [{ "field": "customer.tier", "op": "=", "value": "Pro" }] }),
            json!({ "kind": "threshold", "metric": metric("avg"), "window": { "calendar": "day" }, "operator": ">", "value": never }),
        ),
        _ => (
            json!({ "type": "customer", "customer_id": "cus_1" }),
            json!({ "kind": "threshold", "metric": metric("count"), "window": { "calendar": "week" }, "operator": ">", "value": never }),
        ),
    };
    json!({ "name": format!("rule {i}"), "scope": scope, "condition": condition })
}
