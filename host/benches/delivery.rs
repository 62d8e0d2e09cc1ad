//! Delivery figures, side by side with Alertmanager's: `cargo bench -p klaxon --bench delivery`.
//!
//! A real server (the release binary, sled in a temp folder) with one `event_match` rule, scope
//! `each`, notifying a signed webhook channel (`max_in_flight` 64) of every `signup` event. The
//! receiver is nginx (`return 200`, one worker), the load generator `wrk` with a Lua script that
//! gives every event its own id; both come from Debian and are installed here when missing. All
//! run on this machine together. Measured:
//! - the generator's own ceiling: the same requests against nginx alone;
//! - 1 event per request over 64 connections, and 100 events per request over 8: events
//!   accepted per second (each answered once durable), and signed webhooks received per second
//!   end to end (from the first request to the last webhook nginx counted);
//! - the time from sending an event to its webhook arriving (at a receiver of our own that
//!   notes the time), p50 and p99, at a steady 1,000 events per second.

#[path = "../../tests/integration/support.rs"]
#[allow(dead_code)]
mod support;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use reqwest::Method;
use serde_json::{Value, json};
use support::Server;

const RUN_FOR: &str = "10s";
const STEADY_BATCH: usize = 10;
const STEADY_EVERY: Duration = Duration::from_millis(10);
const STEADY_FOR: Duration = Duration::from_secs(10);

type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

fn main() {
    install(&["nginx", "wrk"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let nginx = Nginx::start(dir.path());

    let ceiling = wrk(&format!("{}/hook", nginx.base), "", 64, 1, "ceiling", dir.path());
    println!(
        "load generator against nginx alone: {:.0} requests/s (wrk, 1 thread, 64 connections)",
        ceiling.per_second
    );

    let server = Server::start_with(Some("[delivery]\nallow_private = [\"127.0.0.0/8\"]\n"), &[]);
    let (_, key) = server.tenant("bench");
    rule(&server, &key, &format!("{}/hook", nginx.base));
    for (batch, connections) in [(1, 64), (100, 8)] {
        let before = nginx.requests();
        let started = Instant::now();
        let run =
            wrk(&format!("{}/v1/events", server.base), &key, connections, batch, &format!("b{batch}"), dir.path());
        assert_eq!(run.failed, 0, "every batch is accepted");
        let accepted = run.requests * batch;
        let delivered_at = wait_until(|| nginx.requests() - before >= accepted);
        let delivered = nginx.requests() - before;
        println!(
            "{batch:>3} event(s) per request, {connections} connections: {:.0} events/s accepted, \
             {:.0} signed webhooks/s received end to end ({accepted} events, {delivered} webhooks in {:.1} s)",
            (accepted as f64) / run.seconds,
            delivered as f64 / (delivered_at - started).as_secs_f64(),
            (delivered_at - started).as_secs_f64(),
        );
    }
    latency(&server);
}

/// Installs the Debian packages that give `commands`, when any is missing.
fn install(commands: &[&str]) {
    let missing = commands
        .iter()
        .any(|c| Command::new("which").arg(c).stdout(Stdio::null()).status().is_ok_and(|s| !s.success()));
    if missing {
        let apt = |args: &[&str]| {
            let ok = Command::new("apt-get").args(args).env("DEBIAN_FRONTEND", "noninteractive").status();
            assert!(ok.is_ok_and(|s| s.success()), "apt-get {args:?} failed: run as root, or install {commands:?}");
        };
        apt(&["update", "-qq"]);
        apt(&[&["install", "-y", "-qq", "--no-install-recommends"][..], commands].concat());
    }
}

/// nginx answering 200 to everything, with `stub_status` to count what it received.
struct Nginx {
    base: String,
    child: Child,
    http: reqwest::blocking::Client,
    /// Status requests made through `requests`: nginx counts them too.
    status_calls: std::cell::Cell<usize>,
}

impl Nginx {
    fn start(dir: &Path) -> Nginx {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let d = dir.display();
        let conf = format!(
            "daemon off; worker_processes 1; pid {d}/nginx.pid; error_log {d}/nginx-error.log;
             events {{ worker_connections 4096; }}
             http {{
               access_log off; keepalive_requests 1000000;
               client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
               uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
               server {{
                 listen 127.0.0.1:{port};
                 location = /status {{ stub_status; }}
                 location / {{ return 200; }}
               }}
             }}"
        );
        let path = dir.join("nginx.conf");
        std::fs::write(&path, conf).unwrap();
        let child =
            Command::new("nginx").arg("-c").arg(&path).arg("-p").arg(dir).stderr(Stdio::null()).spawn().unwrap();
        let http = reqwest::blocking::Client::new();
        let nginx = Nginx { base: format!("http://127.0.0.1:{port}"), child, http, status_calls: Default::default() };
        wait_until(|| nginx.http.get(format!("{}/status", nginx.base)).send().is_ok());
        nginx
    }

    /// Requests handled so far (the status requests themselves not counted).
    fn requests(&self) -> usize {
        let text = self.http.get(format!("{}/status", self.base)).send().unwrap().text().unwrap();
        // "Active connections: N \nserver accepts handled requests\n A H R \n..."
        let total: usize = text.lines().nth(2).unwrap().split_whitespace().nth(2).unwrap().parse().unwrap();
        self.status_calls.set(self.status_calls.get() + 1);
        total - self.status_calls.get()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a wrk run came to.
struct Run {
    requests: usize,
    failed: usize,
    seconds: f64,
    per_second: f64,
}

/// Posts batches of `batch` distinct `signup` events to `url` for `RUN_FOR`.
fn wrk(url: &str, key: &str, connections: usize, batch: usize, run: &str, dir: &Path) -> Run {
    let script = dir.join(format!("{run}.lua"));
    std::fs::write(
        &script,
        format!(
            r#"
local n = 0
local thread_id = 0
local next_thread = 0
function setup(thread) next_thread = next_thread + 1; thread:set("thread_id", next_thread) end
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer {key}"
function request()
  local now = os.date("!%Y-%m-%dT%H:%M:%SZ")
  local events = {{}}
  for i = 1, {batch} do
    n = n + 1
    events[i] = string.format('{{"id":"{run}-%d-%d","customer_id":"cus_%d","type":"signup","timestamp":"%s"}}',
      thread_id, n, n % 10000, now)
  end
  return wrk.format(nil, nil, nil, '{{"events":[' .. table.concat(events, ",") .. ']}}')
end
"#
        ),
    )
    .unwrap();
    let out = Command::new("wrk")
        .args(["-t1", &format!("-c{connections}"), &format!("-d{RUN_FOR}"), "--timeout", "10s", "-s"])
        .arg(&script)
        .arg(url)
        .output()
        .expect("wrk runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "wrk failed: {text}");
    // "  123456 requests in 10.00s, 1.23MB read", "Non-2xx or 3xx responses: 5"
    let line = text.lines().find(|l| l.contains(" requests in ")).unwrap_or_else(|| panic!("wrk said: {text}"));
    let mut words = line.split_whitespace();
    let requests: usize = words.next().unwrap().parse().unwrap();
    let seconds: f64 = words.nth(2).unwrap().trim_end_matches("s,").parse().unwrap();
    let failed = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .map_or(0, |n| n.trim().parse().unwrap());
    Run { requests, failed, seconds, per_second: requests as f64 / seconds }
}

/// Waits (at most two minutes) until `done`; answers when.
fn wait_until(done: impl Fn() -> bool) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(Instant::now() < deadline, "timed out");
        std::thread::sleep(Duration::from_millis(5));
    }
    Instant::now()
}

/// The rule that makes every `signup` a signed webhook to `url`.
fn rule(server: &Server, key: &str, url: &str) {
    let (status, channel) = server.call(
        Method::POST,
        "/v1/channels",
        key,
        Some(json!({ "name": "bench", "kind": "webhook", "url": url, "max_in_flight": 64 })),
    );
    assert_eq!(status, 201, "{channel}");
    let (status, body) = server.call(
        Method::POST,
        "/v1/rules",
        key,
        Some(json!({
            "name": "Every signup", "scope": { "type": "each" }, "channels": [channel["id"]],
            "condition": { "kind": "event_match", "matches": [{ "event_type": "signup" }] },
        })),
    );
    assert_eq!(status, 201, "{body}");
}

/// Event to webhook at a steady rate, with a receiver that notes each arrival (a second
/// tenant, so the first one's channel does not count).
fn latency(server: &Server) {
    let arrivals: Arrivals = Arc::default();
    let (_, key) = server.tenant("latency");
    rule(server, &key, &receiver(arrivals.clone()));
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
        let events: Vec<Value> = ids.iter().map(|id| signup(id)).collect();
        let (status, body) = server.call(Method::POST, "/v1/events", &key, Some(json!({ "events": events })));
        assert_eq!((status, body["notifications"].as_u64()), (200, Some(STEADY_BATCH as u64)), "{body}");
    }
    let rate = sent_at.len() as f64 / started.elapsed().as_secs_f64();
    wait_until(|| arrivals.lock().unwrap().len() >= sent_at.len());
    let arrivals = arrivals.lock().unwrap();
    let mut latencies: Vec<Duration> = sent_at.iter().map(|(id, at)| arrivals[id].duration_since(*at)).collect();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "event sent -> signed webhook received: p50 {:.2} ms, p99 {:.2} ms ({} events at {rate:.0} events/s)",
        at(0.50).as_secs_f64() * 1000.0,
        at(0.99).as_secs_f64() * 1000.0,
        latencies.len(),
    );
}

fn signup(id: &str) -> Value {
    json!({ "id": id, "customer_id": format!("cus_{id}"), "type": "signup", "timestamp": jiff::Timestamp::now() })
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
