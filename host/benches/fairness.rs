//! Fair sharing between tenants: `cargo bench -p klaxon --bench fairness`.
//!
//! Four quiet tenants send events at a steady rate, each event matched by an `event_match` rule
//! that notifies the tenant's signed webhook channel; each tenant's receiver (our own, on a
//! runtime of its own) notes when each webhook arrives. Measured: the quiet tenants' time from
//! sending an event to its webhook arriving, p50 and p99 (and to its batch's answer, which shows
//! where the time goes), first alone on a fresh server, then on another fresh server while a
//! fifth tenant sends 20 times their rate. The release binary, sled in a temp folder, everything
//! on this machine.

#[path = "shared/receiver.rs"]
mod receiver;
#[path = "../../tests/integration/support.rs"]
#[allow(dead_code)]
mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use receiver::{Arrivals, receiver};
use reqwest::Method;
use serde_json::{Value, json};
use support::Server;

/// Webhooks to the receiver on 127.0.0.1 are allowed.
const CONFIG: &str = "[delivery]\nallow_private = [\"127.0.0.0/8\"]\n";
const QUIET: usize = 4;
/// Each tenant sends a batch this often; a quiet one's batch has `QUIET_BATCH` events, the
/// loud one's 20 times as many.
const EVERY: Duration = Duration::from_millis(20);
const QUIET_BATCH: usize = 2;
const LOUD_FACTOR: usize = 20;
const RUN_FOR: Duration = Duration::from_secs(20);
/// The events of a run's first seconds are not measured: a fresh server's caches fill, its
/// connections open, and the first alone run's p99 was all of that.
const WARM_UP: Duration = Duration::from_secs(2);
/// Runs alone and beside, in turn: the machine's speed drifts from run to run, so the figure is
/// the median of the pairs' ratios.
const PAIRS: usize = 5;

fn main() {
    let mut ratios: Vec<(f64, f64)> = (0..PAIRS)
        .map(|_| {
            let alone = run(false);
            let beside = run(true);
            let ratio = (beside.quiet.0 / alone.quiet.0, beside.quiet.1 / alone.quiet.1);
            println!("  beside / alone: p50 {:.2}x, p99 {:.2}x", ratio.0, ratio.1);
            ratio
        })
        .collect();
    ratios.sort_by(|a, b| a.1.total_cmp(&b.1));
    let (p50, p99) = ratios[PAIRS / 2];
    println!(
        "the quiet tenants' p99 beside the loud one / alone, median of {PAIRS} pairs: {p99:.2}x (that pair's p50 {p50:.2}x)"
    );
}

struct Figures {
    /// The quiet tenants' p50 and p99, in ms.
    quiet: (f64, f64),
}

/// One run on a fresh server: the quiet tenants, and with `loud` the loud one beside them.
fn run(loud: bool) -> Figures {
    let server = Arc::new(Server::start_with(Some(CONFIG), &[]));
    let arrivals: Arrivals = Arc::default();
    let mut senders = Vec::new();
    let tenants = (0..QUIET).map(|i| (format!("quiet{i}"), QUIET_BATCH));
    let tenants: Vec<(String, usize)> =
        tenants.chain(loud.then(|| ("loud".to_string(), QUIET_BATCH * LOUD_FACTOR))).collect();
    // Each tenant's webhooks go to an endpoint of its own, as they would in production.
    let keys: Vec<String> = tenants.iter().map(|(name, _)| setup(&server, name, &receiver(arrivals.clone()))).collect();
    let start = Instant::now() + Duration::from_millis(200);
    for ((name, batch), key) in tenants.iter().cloned().zip(keys) {
        let server = server.clone();
        senders.push(std::thread::spawn(move || (name.clone(), send(&server, &key, &name, batch, start))));
    }
    let sent: Vec<(String, Sent)> = senders.into_iter().map(|s| s.join().unwrap()).collect();
    let expected: usize = sent.iter().map(|(_, s)| s.len()).sum();
    let deadline = Instant::now() + Duration::from_secs(120);
    while arrivals.lock().unwrap().len() < expected {
        assert!(Instant::now() < deadline, "webhooks missing: {} of {expected}", arrivals.lock().unwrap().len());
        std::thread::sleep(Duration::from_millis(50));
    }
    let arrivals = arrivals.lock().unwrap();
    // The time from sending each measured event to `until` it, for the tenants `which` takes.
    let latencies = |which: &dyn Fn(&str) -> bool, until: &dyn Fn(&str, Instant) -> Instant| {
        let mut all: Vec<Duration> = sent
            .iter()
            .filter(|(name, _)| which(name))
            .flat_map(|(_, s)| s.iter().filter(|(_, (at, _))| *at >= start + WARM_UP))
            .map(|(id, (at, answered))| until(id, *answered).duration_since(*at))
            .collect();
        all.sort();
        let at = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)].as_secs_f64() * 1e3;
        (all.len(), at(0.5), at(0.99))
    };
    let webhook = |id: &str, _| arrivals[id];
    let answer = |_: &str, answered| answered;
    let seconds = (RUN_FOR - WARM_UP).as_secs_f64();
    let quiet = |name: &str| name != "loud";
    let (n, p50, p99) = latencies(&quiet, &webhook);
    let (_, answer_p50, answer_p99) = latencies(&quiet, &answer);
    let label = if loud { "beside the loud tenant" } else { "alone" };
    println!(
        "{QUIET} quiet tenants {label}: {:.0} events/s in all; event -> webhook p50 {p50:.2} ms, p99 {p99:.2} ms \
         (-> answer p50 {answer_p50:.2} ms, p99 {answer_p99:.2} ms)",
        n as f64 / seconds
    );
    if loud {
        let (n, p50, p99) = latencies(&|name| name == "loud", &webhook);
        println!(
            "  the loud tenant: {:.0} events/s; event -> webhook p50 {p50:.2} ms, p99 {p99:.2} ms",
            n as f64 / seconds
        );
    }
    Figures { quiet: (p50, p99) }
}

/// A tenant with a rule notifying a webhook channel to `url` of every `signup`; answers its key.
fn setup(server: &Server, name: &str, url: &str) -> String {
    let (_, key) = server.tenant(name);
    let (status, channel) = server.call(
        Method::POST,
        "/v1/channels",
        &key,
        Some(json!({ "name": "hook", "kind": "webhook", "url": url, "max_in_flight": 64 })),
    );
    assert_eq!(status, 201, "{channel}");
    let rule = json!({ "name": "signup", "scope": { "type": "each" }, "channels": [channel["id"]],
                       "condition": { "kind": "event_match", "matches": [{ "event_type": "signup" }] } });
    let (status, body) = server.call(Method::POST, "/v1/rules", &key, Some(rule));
    assert_eq!(status, 201, "{body}");
    key
}

/// When each event was sent and when its batch was answered, by event id.
type Sent = HashMap<String, (Instant, Instant)>;

/// Sends a batch of `batch` signups every `EVERY` from `start` for `RUN_FOR`; answers when each
/// event was sent and answered.
fn send(server: &Server, key: &str, tenant: &str, batch: usize, start: Instant) -> Sent {
    let mut sent = HashMap::new();
    let mut next = start;
    let mut n = 0;
    while next < start + RUN_FOR {
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        next += EVERY;
        let ids: Vec<String> = (0..batch).map(|i| format!("{tenant}-{n}-{i}")).collect();
        n += 1;
        let events: Vec<Value> = ids
            .iter()
            .map(|id| json!({ "id": id, "customer_id": id, "type": "signup", "timestamp": jiff::Timestamp::now() }))
            .collect();
        let at = Instant::now();
        let (status, body) = server.call(Method::POST, "/v1/events", key, Some(json!({ "events": events })));
        let answered = Instant::now();
        assert_eq!((status, body["notifications"].as_u64()), (200, Some(batch as u64)), "{body}");
        sent.extend(ids.into_iter().map(|id| (id, (at, answered))));
    }
    sent
}
