//! Delivery figures, side by side with Prometheus Alertmanager's:
//! `cargo bench -p klaxon --bench delivery`.
//!
//! Klaxon: a real server (the release binary, sled in a temp folder) with one `event_match`
//! rule, scope `each`, notifying a signed webhook channel (`max_in_flight` 64) of every `signup`
//! event. Alertmanager (Debian's, no cluster): every alert its own group (`group_by: ['...']`),
//! sent at once (`group_wait: 0s`) to a webhook. Both send to the same receiver, nginx
//! (`return 200`, one process), and take the same load from `wrk` with a Lua script that makes
//! every event or alert distinct; all three come from Debian and are installed here when
//! missing. All run on this machine together. Measured:
//! - the generator's own ceiling: the same requests against nginx alone;
//! - 1 item per request over 64 connections, and 100 per request over 8, for each system on a
//!   fresh instance, in interleaved pairs (Klaxon, then Alertmanager, three times): items
//!   accepted per second (Klaxon answers each once durable; Alertmanager keeps alerts in
//!   memory), webhooks received per second end to end (from the first request to the last
//!   webhook nginx counted), and the median of the three ratios; for Klaxon also the entries
//!   and bytes its store wrote per event, its webhook included;
//! - for each load, also one run of Klaxon on PostgreSQL (a throwaway server, Debian's, on this
//!   machine) beside the median of the runs on sled;
//! - the time from sending an event to its webhook arriving (at a receiver of our own that
//!   notes the time), p50 and p99, at a steady 1,000 events per second.

#[path = "shared/receiver.rs"]
mod receiver;
#[path = "shared/store_writes.rs"]
mod store_writes;
#[path = "../../tests/integration/support.rs"]
#[allow(dead_code)]
mod support;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use receiver::{Arrivals, receiver};
use reqwest::Method;
use serde_json::{Value, json};
use support::Server;

const RUN_FOR: &str = "10s";
/// Interleaved runs of Klaxon and Alertmanager per load: their rates drift from run to run on a
/// shared machine, so the figure is the median of the ratios.
const PAIRS: usize = 3;
/// Webhooks to nginx on 127.0.0.1 are allowed.
const CONFIG: &str = "[delivery]\nallow_private = [\"127.0.0.0/8\"]\n";
const STEADY_BATCH: usize = 10;
const STEADY_EVERY: Duration = Duration::from_millis(10);
const STEADY_FOR: Duration = Duration::from_secs(10);

fn main() {
    install(&["nginx", "wrk", "prometheus-alertmanager"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let nginx = Nginx::start(dir.path());

    let ceiling = wrk(&format!("{}/hook", nginx.base), &Load::nginx(), 64, "ceiling", dir.path());
    println!(
        "load generator against nginx alone: {:.0} requests/s (wrk, 1 thread, 64 connections)",
        ceiling.per_second
    );
    for (batch, connections) in [(1, 64), (100, 8)] {
        let (mut accepted, mut delivered, mut on_sled) = (Vec::new(), Vec::new(), Vec::new());
        for pair in 1..=PAIRS {
            let tag = format!("b{batch}p{pair}");
            let klaxon = klaxon_run(&nginx, CONFIG, batch, connections, &tag, dir.path());
            on_sled.push(klaxon.delivered_per_second);
            let alertmanager = alertmanager_run(&nginx, batch, connections, &tag, dir.path());
            for (name, e2e) in [("Klaxon", &klaxon), ("Alertmanager", &alertmanager)] {
                println!(
                    "{batch:>3} per request, {connections} connections, pair {pair}, {name:>12}: {:>6.0} accepted/s, \
                     {:>6.0} webhooks/s end to end ({} in, {} webhooks in {:.1} s)",
                    e2e.accepted_per_second, e2e.delivered_per_second, e2e.accepted, e2e.delivered, e2e.seconds
                );
            }
            accepted.push(klaxon.accepted_per_second / alertmanager.accepted_per_second);
            delivered.push(klaxon.delivered_per_second / alertmanager.delivered_per_second);
        }
        println!(
            "{batch:>3} per request: Klaxon / Alertmanager, median of {PAIRS} pairs: accepted {:.2}x, \
             webhooks end to end {:.2}x",
            median(&mut accepted),
            median(&mut delivered)
        );
        let config = format!("{CONFIG}[store]\nurl = \"{}\"\n", klaxon_test_postgres::shared().database());
        let on_postgres = klaxon_run(&nginx, &config, batch, connections, &format!("b{batch}pg"), dir.path());
        println!(
            "{batch:>3} per request, Klaxon on PostgreSQL: {:.0} accepted/s, {:.0} webhooks/s end to end: {:.2}x on sled",
            on_postgres.accepted_per_second,
            on_postgres.delivered_per_second,
            on_postgres.delivered_per_second / median(&mut on_sled)
        );
    }
    latency();
}

/// What one system did with one load: items taken in, webhooks out.
struct EndToEnd {
    accepted: usize,
    delivered: usize,
    accepted_per_second: f64,
    delivered_per_second: f64,
    seconds: f64,
}

/// Sends `load` to `url` with wrk and waits until nginx has received a webhook per item.
fn end_to_end(nginx: &Nginx, url: &str, load: &Load, connections: usize, tag: &str, dir: &Path) -> EndToEnd {
    let before = nginx.requests();
    let started = Instant::now();
    let run = wrk(url, load, connections, tag, dir);
    assert_eq!(run.failed, 0, "every request is accepted");
    let accepted = run.requests * load.batch;
    let delivered_at = wait_until(|| nginx.requests() - before >= accepted);
    let seconds = (delivered_at - started).as_secs_f64();
    let delivered = nginx.requests() - before;
    EndToEnd {
        accepted,
        delivered,
        accepted_per_second: accepted as f64 / run.seconds,
        delivered_per_second: delivered as f64 / seconds,
        seconds,
    }
}

/// A fresh Klaxon server on `config` with the bench rule; prints what the store wrote per event.
fn klaxon_run(nginx: &Nginx, config: &str, batch: usize, connections: usize, tag: &str, dir: &Path) -> EndToEnd {
    let server = Server::start_with(Some(config), &[]);
    let (_, key) = server.tenant("bench");
    rule(&server, &key, &format!("{}/hook", nginx.base));
    let run =
        end_to_end(nginx, &format!("{}/v1/events", server.base), &Load::klaxon(&key, batch), connections, tag, dir);
    println!(
        "    store writes per event, its webhook included: {}",
        store_writes::per_event(&server, &Default::default(), run.accepted)
    );
    run
}

/// A fresh Alertmanager (no cluster, every alert its own group, sent at once) whose one
/// receiver is nginx.
fn alertmanager_run(nginx: &Nginx, batch: usize, connections: usize, tag: &str, dir: &Path) -> EndToEnd {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let home = dir.join(format!("alertmanager-{tag}"));
    std::fs::create_dir_all(&home).unwrap();
    let config = home.join("alertmanager.yml");
    std::fs::write(
        &config,
        format!(
            "route:\n  receiver: bench\n  group_by: ['...']\n  group_wait: 0s\n  group_interval: 1h\n  \
             repeat_interval: 24h\nreceivers:\n  - name: bench\n    webhook_configs:\n      - url: {}/hook\n        \
             send_resolved: false\n",
            nginx.base
        ),
    )
    .unwrap();
    let mut child = Command::new("prometheus-alertmanager")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.path={}", home.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus-alertmanager runs");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::blocking::Client::new();
    wait_until(|| http.get(format!("{base}/-/ready")).send().is_ok_and(|r| r.status().is_success()));
    let run = end_to_end(nginx, &format!("{base}/api/v2/alerts"), &Load::alertmanager(batch), connections, tag, dir);
    let _ = child.kill();
    let _ = child.wait();
    run
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
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
            "daemon off; master_process off; pid {d}/nginx.pid; error_log {d}/nginx-error.log;
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

/// What wrk sends: requests of `batch` distinct items.
struct Load {
    batch: usize,
    /// The bearer key, if any.
    key: Option<String>,
    /// A Lua format for one item, given the run's tag, wrk's thread, the item's number, a
    /// customer number and the time.
    item: &'static str,
    /// What the items are wrapped in: before and after.
    wrap: (&'static str, &'static str),
}

impl Load {
    fn klaxon(key: &str, batch: usize) -> Load {
        Load {
            batch,
            key: Some(key.to_string()),
            item: r#"{"id":"%s-%d-%d","customer_id":"cus_%d","type":"signup","timestamp":"%s"}"#,
            wrap: (r#"{"events":["#, "]}"),
        }
    }

    /// Klaxon's events, one per request, without a key: for nginx alone.
    fn nginx() -> Load {
        Load { key: None, ..Load::klaxon("", 1) }
    }

    fn alertmanager(batch: usize) -> Load {
        Load { batch, key: None, item: r#"{"labels":{"alertname":"bench","id":"%s-%d-%d"}}"#, wrap: ("[", "]") }
    }
}

/// Posts `load` to `url` for `RUN_FOR`, every item distinct (`tag` names the run).
fn wrk(url: &str, load: &Load, connections: usize, tag: &str, dir: &Path) -> Run {
    let script = dir.join(format!("{tag}.lua"));
    let authorization = match &load.key {
        Some(key) => format!(r#"wrk.headers["authorization"] = "Bearer {key}""#),
        None => String::new(),
    };
    let (batch, item, (open, close)) = (load.batch, load.item, load.wrap);
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
{authorization}
function request()
  local now = os.date("!%Y-%m-%dT%H:%M:%SZ")
  local items = {{}}
  for i = 1, {batch} do
    n = n + 1
    items[i] = string.format('{item}', "{tag}", thread_id, n, n % 10000, now)
  end
  return wrk.format(nil, nil, nil, '{open}' .. table.concat(items, ",") .. '{close}')
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

/// Event to webhook at a steady rate on a fresh server, with a receiver that notes each
/// arrival.
fn latency() {
    let server = Server::start_with(Some(CONFIG), &[]);
    let arrivals: Arrivals = Arc::default();
    let (_, key) = server.tenant("latency");
    rule(&server, &key, &receiver(arrivals.clone()));
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
