//! Backup figures: `cargo bench -p klaxon --bench backup`.
//!
//! A real server (the release binary, sled in a temp folder) holds 100,000 events of 1,000
//! customers with a threshold rule on each. Measured: `klaxon backup` of it while it runs (its
//! time, the file's size, how long writes waited), the latency of ingest batches sent meanwhile
//! against the same batches without a backup, and `klaxon restore` of the file.

#[path = "../../tests/integration/support.rs"]
#[allow(dead_code)]
mod support;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use support::{ADMIN, Server};

const CUSTOMERS: usize = 1_000;
const BATCHES: usize = 200;
const BATCH: usize = 500;

fn main() {
    let server = Server::start();
    let (_, key) = server.tenant("bench");
    let rule = json!({
        "name": "Heavy day", "scope": { "type": "each" },
        "condition": { "kind": "threshold", "window": { "calendar": "day" }, "operator": ">", "value": 1e9,
                       "metric": { "event_types": ["usage"], "aggregate": "sum", "property": "credits" } },
    });
    assert_eq!(server.call(Method::POST, "/v1/rules", &key, Some(rule)).0, 201);
    let send = |batch: &str, size: usize| -> Duration {
        let now = jiff::Timestamp::now();
        let events: Vec<Value> = (0..size)
            .map(|i| {
                json!({ "id": format!("{batch}-{i}"), "customer_id": format!("cus_{}", i % CUSTOMERS),
                        "type": "usage", "timestamp": now, "properties": { "credits": (i % 7) as f64 } })
            })
            .collect();
        let started = Instant::now();
        let (status, body) = server.call(Method::POST, "/v1/events", &key, Some(json!({ "events": events })));
        assert_eq!((status, body["accepted"].as_u64()), (200, Some(size as u64)), "{body}");
        started.elapsed()
    };
    for b in 0..BATCHES {
        send(&format!("e{b}"), BATCH);
    }
    println!("{} events of {CUSTOMERS} customers stored", BATCHES * BATCH);

    // Batches of 20 events one after another: alone, then while a backup is taken.
    let quiet: Vec<Duration> = (0..200).map(|i| send(&format!("q{i}"), 20)).collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bench.backup");
    let done = AtomicBool::new(false);
    let (manifest, took, during) = std::thread::scope(|scope| {
        let load = scope.spawn(|| {
            let mut latencies = Vec::new();
            let mut i = 0;
            while !done.load(Ordering::Relaxed) {
                latencies.push(send(&format!("d{i}"), 20));
                i += 1;
            }
            latencies
        });
        std::thread::sleep(Duration::from_millis(200));
        let started = Instant::now();
        let out = klaxon(&["backup", "--data-dir", server.data().to_str().unwrap(), "--to", file.to_str().unwrap()]);
        let took = started.elapsed();
        std::thread::sleep(Duration::from_millis(200));
        done.store(true, Ordering::Relaxed);
        let manifest: Value = serde_json::from_slice(&out.stdout).expect("a manifest");
        (manifest, took, load.join().unwrap())
    });
    let entries: u64 = manifest["trees"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    let bytes = std::fs::metadata(&file).unwrap().len();
    println!(
        "backup while running: {:.2} s, {entries} entries, {:.1} MB file, writes held {} ms",
        took.as_secs_f64(),
        bytes as f64 / 1e6,
        manifest["writes_held_ms"]
    );
    println!("ingest batches of 20 alone:          {}", summary(quiet));
    println!("ingest batches of 20 during backup:  {}", summary(during));

    let started = Instant::now();
    let restored = dir.path().join("restored");
    let out = klaxon(&["restore", "--from", file.to_str().unwrap(), "--data-dir", restored.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    println!("restore: {:.2} s", started.elapsed().as_secs_f64());
}

fn klaxon(args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_klaxon")).args(args).env("KLAXON_ADMIN_TOKEN", ADMIN).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out
}

fn summary(mut latencies: Vec<Duration>) -> String {
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize].as_secs_f64() * 1000.0;
    format!("{} batches, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms", latencies.len(), at(0.5), at(0.99), at(1.0))
}
