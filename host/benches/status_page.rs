//! The public status page's answer time: `cargo bench -p klaxon --bench status_page`.
//!
//! A real server (the release binary, sled in a temp folder) whose tenant's page lists 10
//! components and has 1,000 public incidents in its history (each opened, updated and resolved:
//! three updates). Measured over HTTP on 127.0.0.1 from one client: the time to the last byte of
//! the HTML page, its JSON and its Atom feed, median and slowest of `LOADS` loads each.

#[path = "../../tests/integration/support.rs"]
#[allow(dead_code)]
mod support;

use std::time::Instant;

use reqwest::Method;
use serde_json::json;
use support::Server;

const INCIDENTS: usize = 1_000;
const COMPONENTS: usize = 10;
const LOADS: usize = 50;

fn main() {
    let server = Server::start();
    let (_, key) = server.tenant("bench");
    let components: Vec<_> = (0..COMPONENTS)
        .map(|i| json!({ "name": format!("component {i}"), "group": format!("group {}", i % 3) }))
        .collect();
    let page = json!({ "enabled": true, "slug": "bench", "title": "Bench status", "components": components });
    let (status, body) = server.call(Method::PUT, "/v1/status-page", &key, Some(page));
    assert_eq!(status, 200, "{body}");

    let seeded = Instant::now();
    std::thread::scope(|s| {
        for part in 0..4 {
            let (server, key) = (&server, &key);
            s.spawn(move || {
                for i in (part..INCIDENTS).step_by(4) {
                    let severity = ["info", "warning", "critical"][i % 3];
                    let incident = json!({ "title": format!("Incident {i}"), "category": "infrastructure",
                        "severity": severity, "components": [format!("component {}", i % COMPONENTS)],
                        "message": "Requests to the API fail for some customers; we are looking into it." });
                    let (status, opened) = server.call(Method::POST, "/v1/incidents", key, Some(incident));
                    assert_eq!(status, 201, "{opened}");
                    let updates = format!("/v1/incidents/{}/updates", opened["id"].as_str().unwrap());
                    for (status, message) in [("identified", "A bad deploy."), ("resolved", "Rolled back; all clear.")]
                    {
                        let update = json!({ "status": status, "message": message });
                        let (code, body) = server.call(Method::POST, &updates, key, Some(update));
                        assert_eq!(code, 201, "{body}");
                    }
                }
            });
        }
    });
    println!("{INCIDENTS} incidents opened and resolved in {:.1} s", seeded.elapsed().as_secs_f64());

    for path in ["/status/bench", "/status/bench.json", "/status/bench/feed.atom"] {
        let mut times: Vec<f64> = Vec::with_capacity(LOADS);
        let mut bytes = 0;
        for _ in 0..LOADS {
            let started = Instant::now();
            let response = server.request(Method::GET, path, None).send().unwrap();
            assert_eq!(response.status().as_u16(), 200);
            bytes = response.bytes().unwrap().len();
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "GET {path:<24} p50 {:.1} ms, max {:.1} ms ({} KiB, {INCIDENTS} incidents in the history)",
            times[LOADS / 2],
            times[LOADS - 1],
            bytes / 1024
        );
    }
}
