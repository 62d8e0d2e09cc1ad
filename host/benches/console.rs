//! The web console's speed: `cargo bench -p klaxon --bench console`.
//!
//! A fresh server (the release binary, sled in a temp folder) with one tenant holding 10,000
//! customers, 1,000 rules and 100,000 notifications. Headless Chromium (Debian's, over
//! WebDriver) signs in once, then loads each page of the console afresh (from `about:blank`)
//! `LOADS` times and reads two moments from the page's own performance timeline: the first
//! contentful paint, and `klaxon:ready`, which the console marks when a page shows its data and
//! takes input (the API calls answered and the page drawn). The figures are the median and the
//! slowest load per page, in milliseconds from the start of navigation.

#[path = "../../tests/integration/support.rs"]
#[allow(dead_code)]
mod support;

#[path = "../../tests/integration/browser.rs"]
#[allow(dead_code)]
mod browser;

use std::time::Instant;

use reqwest::Method;
use serde_json::{Value, json};
use support::Server;

const CUSTOMERS: usize = 10_000;
const RULES: usize = 1_000;
const NOTIFICATIONS: usize = 100_000;
const BATCH: usize = 1_000;
const LOADS: usize = 15;
const PAGES: [&str; 10] = [
    "rules",
    "notifications",
    "customers",
    "channels",
    "incidents",
    "subscriptions",
    "silences",
    "cohorts",
    "plugins",
    "keys",
];

fn main() {
    let server = Server::start();
    let (_, key) = server.tenant("bench");
    let seeded = Instant::now();
    seed(&server, &key);
    println!(
        "seeded {CUSTOMERS} customers, {RULES} rules and {NOTIFICATIONS} notifications in {:.1} s",
        seeded.elapsed().as_secs_f64()
    );

    for path in ["/v1/rules", "/v1/notifications", "/v1/customers?limit=100"] {
        let mut times: Vec<f64> = (0..LOADS)
            .map(|_| {
                let started = Instant::now();
                let (status, _) = server.call(Method::GET, path, &key, None);
                assert_eq!(status, 200);
                started.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        let (p50, max) = summary(&mut times);
        println!("GET {path:<25} p50 {p50:.1} ms, max {max:.1} ms (the API alone, JSON parsed by the client)");
    }

    let browser = browser::Browser::start();
    browser.open(&server.base);
    browser.sign_in(&key);
    println!("{:<15} {:>10} {:>10} {:>10} {:>10}", "page", "paint p50", "paint max", "ready p50", "ready max");
    for page in PAGES {
        let (mut paints, mut readies) = (Vec::new(), Vec::new());
        for _ in 0..LOADS {
            let (paint, ready) = load(&browser, &server.base, page);
            paints.push(paint);
            readies.push(ready);
        }
        let (p, r) = (summary(&mut paints), summary(&mut readies));
        println!("{page:<15} {:>10.0} {:>10.0} {:>10.0} {:>10.0}", p.0, p.1, r.0, r.1);
    }
}

/// Loads the page afresh; answers its first contentful paint and its ready moment (ms).
fn load(browser: &browser::Browser, base: &str, page: &str) -> (f64, f64) {
    browser.open("about:blank");
    browser.open(&format!("{base}/#/{page}"));
    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let found = browser.script(
            "const ready = performance.getEntriesByName('klaxon:ready')[0];
             const paint = performance.getEntriesByName('first-contentful-paint')[0];
             return ready && paint ? [paint.startTime, ready.startTime] : null;",
        );
        if let Some([paint, ready]) = found.as_array().map(|a| [a[0].as_f64(), a[1].as_f64()]) {
            return (paint.unwrap(), ready.unwrap());
        }
        assert!(Instant::now() < deadline, "page {page} never became ready");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// The median and the largest.
fn summary(values: &mut [f64]) -> (f64, f64) {
    values.sort_by(f64::total_cmp);
    (values[values.len() / 2], values[values.len() - 1])
}

fn seed(server: &Server, key: &str) {
    let post = |path: &str, body: Value| {
        let (status, answer) = server.call(Method::POST, path, key, Some(body));
        assert!(status == 200 || status == 201, "{path}: {answer}");
        answer
    };
    let now = server.call(Method::GET, "/v1/clock", support::ADMIN, None).1["now"].as_str().unwrap().to_string();
    let events = |kind: &str, from: usize, count: usize| -> Vec<Value> {
        (from..from + count)
            .map(|i| {
                json!({ "id": format!("{kind}-{i}"), "customer_id": format!("cus_{:05}", i % CUSTOMERS), "type": kind,
                        "timestamp": now, "properties": { "plan": if i % 3 == 0 { "pro" } else { "free" } } })
            })
            .collect()
    };
    for from in (0..CUSTOMERS).step_by(BATCH) {
        post("/v1/events", json!({ "events": events("seen", from, BATCH) }));
    }
    // One rule matches every `signup`: its 100,000 notifications fill the history. The other 999
    // watch event types that never come.
    post(
        "/v1/rules",
        json!({ "name": "Signup", "scope": { "type": "each" },
                "condition": { "kind": "event_match", "matches": [{ "event_type": "signup" }] } }),
    );
    for i in 1..RULES {
        post(
            "/v1/rules",
            json!({ "name": format!("Rule {i}"), "scope": { "type": "each" },
                    "condition": { "kind": "event_match", "matches": [{ "event_type": format!("other-{i}"),
                        "filters": [{ "field": "event.plan", "op": "=", "value": "pro" }] }] } }),
        );
    }
    for from in (0..NOTIFICATIONS).step_by(BATCH) {
        let answer = post("/v1/events", json!({ "events": events("signup", from, BATCH) }));
        assert_eq!(answer["notifications"], BATCH, "{answer}");
    }
}
