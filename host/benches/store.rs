//! The PostgreSQL backend beside the embedded one: `cargo bench -p klaxon --bench store`.
//!
//! Two servers (the release binary), one on sled in a temp folder and one on a throwaway
//! PostgreSQL started by the bench (Debian's, on this machine), each with the same 1,000
//! customers and 10 threshold rules. Measured over HTTP on 127.0.0.1, on each:
//! - events per second accepted and evaluated, in batches of 100 from two clients at once;
//! - the time from sending one event to its answer (the event, the alert states it changed and
//!   the notification it queued committed): p50 and p99;
//! - during the throughput run, the CPU time of Klaxon's process and of PostgreSQL's processes;
//! - then three nodes on one PostgreSQL database (all on this machine), the events spread over
//!   them by three clients: events per second, and the CPU time of each.

#[path = "../../tests/integration/support.rs"]
#[allow(dead_code)]
mod support;

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use support::Server;

const CUSTOMERS: usize = 1_000;
const RULES: usize = 10;
const EVENTS: usize = 20_000;
const BATCH: usize = 100;
const SENDERS: usize = 2;
const LATENCY_SAMPLES: usize = 500;

struct Figures {
    rate: f64,
    p50: Duration,
    p99: Duration,
    klaxon_cpu: f64,
    postgres_cpu: f64,
}

fn main() {
    let sled = measure(Server::start(), "sled");
    let url = klaxon_test_postgres::shared().database();
    let config = format!("[store]\nurl = \"{url}\"\n");
    let postgres = measure(Server::start_with(Some(&config), &[]), "postgres");
    println!(
        "PostgreSQL / sled: events/s {:.2}x, p50 latency {:.2}x, p99 latency {:.2}x",
        postgres.rate / sled.rate,
        postgres.p50.as_secs_f64() / sled.p50.as_secs_f64(),
        postgres.p99.as_secs_f64() / sled.p99.as_secs_f64()
    );
    let share = postgres.postgres_cpu / (postgres.postgres_cpu + postgres.klaxon_cpu) * 100.0;
    println!("on PostgreSQL, PostgreSQL's share of the CPU time of the throughput run: {share:.0}%");
    three_nodes(postgres.rate);
}

/// Three nodes on one database: events per second over all of them.
fn three_nodes(one_node: f64) {
    let url = klaxon_test_postgres::shared().database();
    let config = format!("[store]\nurl = \"{url}\"\n");
    let nodes: Vec<Server> = (0..3).map(|_| Server::start_with(Some(&config), &[])).collect();
    let (_, key) = nodes[0].tenant("bench");
    put_customers(&nodes[0], &key);
    for i in 0..RULES {
        assert_eq!(nodes[0].call(Method::POST, "/v1/rules", &key, Some(threshold(i))).0, 201);
    }
    let cpu_before: Vec<f64> = nodes.iter().map(|n| cpu_of(n.pid())).collect();
    let postgres_before = postgres_cpu();
    let (sent, seconds) = send_all(&nodes.iter().collect::<Vec<_>>(), &key);
    let rate = sent as f64 / seconds;
    let klaxon: Vec<String> =
        nodes.iter().zip(&cpu_before).map(|(n, before)| format!("{:.1}", cpu_of(n.pid()) - before)).collect();
    println!(
        "three nodes on one PostgreSQL: {rate:.0} events/s ({:.2}x one node); CPU seconds: Klaxon {}, PostgreSQL {:.1}",
        rate / one_node,
        klaxon.join(" / "),
        postgres_cpu() - postgres_before
    );
}

/// Sends about `EVENTS` in batches of `BATCH`, one client per entry of `clients` (the server
/// each one sends to); answers the events sent and the seconds it took.
fn send_all(clients: &[&Server], key: &str) -> (usize, f64) {
    let batches = EVENTS / clients.len() / BATCH;
    let started = Instant::now();
    std::thread::scope(|s| {
        for (client, server) in clients.iter().enumerate() {
            s.spawn(move || {
                for b in 0..batches {
                    let events: Vec<Value> = (0..BATCH)
                        .map(|i| {
                            let n = (client * batches + b) * BATCH + i;
                            event(&format!("e{n}"), n % CUSTOMERS, &format!("type{}", n % RULES))
                        })
                        .collect();
                    let (status, body) =
                        server.call(Method::POST, "/v1/events", key, Some(json!({ "events": events })));
                    assert_eq!((status, body["accepted"].as_u64()), (200, Some(BATCH as u64)), "{body}");
                }
            });
        }
    });
    (batches * BATCH * clients.len(), started.elapsed().as_secs_f64())
}

/// Threshold rule `i`, on event type `i`, never reached.
fn threshold(i: usize) -> Value {
    json!({
        "name": format!("rule {i}"), "scope": { "type": "each" },
        "condition": { "kind": "threshold", "window": { "calendar": "week" }, "operator": ">", "value": 1e12,
                       "metric": { "event_types": [format!("type{i}")], "aggregate": "sum", "property": "hours" } },
    })
}

fn measure(server: Server, name: &str) -> Figures {
    let (_, key) = server.tenant("bench");
    put_customers(&server, &key);
    for i in 0..RULES {
        let (status, body) = server.call(Method::POST, "/v1/rules", &key, Some(threshold(i)));
        assert_eq!(status, 201, "{body}");
    }
    let match_rule = json!({
        "name": "paid", "scope": { "type": "each" },
        "condition": { "kind": "event_match", "matches": [{ "event_type": "paid" }] },
    });
    assert_eq!(server.call(Method::POST, "/v1/rules", &key, Some(match_rule)).0, 201);

    let cpu_before = (cpu_of(server.pid()), postgres_cpu());
    let (sent, seconds) = send_all(&[&server; SENDERS], &key);
    let klaxon_cpu = cpu_of(server.pid()) - cpu_before.0;
    let postgres_cpu = if name == "postgres" { postgres_cpu() - cpu_before.1 } else { 0.0 };
    let rate = sent as f64 / seconds;
    println!(
        "{name}: {rate:.0} events/s accepted and evaluated ({sent} events in batches of {BATCH} from {SENDERS} clients)"
    );
    println!("{name}: CPU seconds in that run: Klaxon {klaxon_cpu:.1}, PostgreSQL {postgres_cpu:.1}");

    let mut latencies: Vec<Duration> = (0..LATENCY_SAMPLES)
        .map(|n| {
            let event = event(&format!("paid-{n}"), n % CUSTOMERS, "paid");
            let started = Instant::now();
            let (status, body) = server.call(Method::POST, "/v1/events", &key, Some(json!({ "events": [event] })));
            assert_eq!((status, body["notifications"].as_u64()), (200, Some(1)), "{body}");
            started.elapsed()
        })
        .collect();
    latencies.sort();
    let (p50, p99) = (latencies[LATENCY_SAMPLES / 2], latencies[LATENCY_SAMPLES * 99 / 100]);
    println!(
        "{name}: one event -> its notification committed: p50 {:.2} ms, p99 {:.2} ms",
        p50.as_secs_f64() * 1000.0,
        p99.as_secs_f64() * 1000.0
    );
    Figures { rate, p50, p99, klaxon_cpu, postgres_cpu }
}

fn event(id: &str, customer: usize, event_type: &str) -> Value {
    json!({
        "id": id, "customer_id": format!("cus_{customer}"), "type": event_type,
        "timestamp": jiff::Timestamp::now(), "properties": { "hours": 1.5 },
    })
}

fn put_customers(server: &Server, key: &str) {
    std::thread::scope(|s| {
        for part in 0..4 {
            s.spawn(move || {
                for n in (part..CUSTOMERS).step_by(4) {
                    let body = json!({ "fields": { "tier": "Pro" } });
                    let (status, answer) = server.call(Method::PUT, &format!("/v1/customers/cus_{n}"), key, Some(body));
                    assert_eq!(status, 201, "{answer}");
                }
            });
        }
    });
}

/// CPU seconds (user and system) a process has used.
fn cpu_of(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command's closing parenthesis; utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU seconds used by every PostgreSQL server process now running.
fn postgres_cpu() -> f64 {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "postgres"))
        .map(cpu_of)
        .sum()
}
