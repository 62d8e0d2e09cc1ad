//! Delivery end to end: notifications reach real receivers (HTTP with independent signature
//! checks, SMTP), retry on the schedule as the test moves the clock, stop on 410, disable a
//! channel that keeps failing, and survive a kill.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::receivers::{Receiver, Reply, SmtpSink, signature_valid};
use crate::support::{ADMIN, Server};

pub const START: &str = "2030-01-07T00:00:00Z";

pub struct Setup {
    pub server: Server,
    pub key: String,
    events: std::cell::Cell<u32>,
}

/// The config every delivery test runs with: receivers live on 127.0.0.1.
pub const LOOPBACK_ALLOWED: &str = "[delivery]\nallow_private = [\"127.0.0.0/8\"]\n";

impl Setup {
    pub fn start(extra_config: &str) -> Setup {
        let config = format!("{LOOPBACK_ALLOWED}{extra_config}");
        let server = Server::start_with(Some(&config), &["--manual-clock"]);
        let (_, key) = server.tenant("acme");
        let setup = Setup::resume(server, key, 0);
        setup.clock(START);
        setup
    }

    /// Goes on with a server that holds a setup already, whose `signup`s sent `sent` events.
    pub fn resume(server: Server, key: String, sent: u32) -> Setup {
        Setup { server, key, events: std::cell::Cell::new(sent) }
    }

    pub fn clock(&self, to: &str) {
        let (status, body) = self.server.call(Method::PUT, "/v1/clock", ADMIN, Some(json!({ "now": to })));
        assert_eq!(status, 200, "{body}");
    }

    /// Moves the clock `span` (an ISO 8601 duration) past `START`.
    pub fn at(&self, span: &str) -> String {
        let start: jiff::Timestamp = START.parse().unwrap();
        start.checked_add(span.parse::<jiff::SignedDuration>().unwrap()).unwrap().to_string()
    }

    pub fn channel(&self, spec: Value) -> Value {
        let (status, body) = self.server.call(Method::POST, "/v1/channels", &self.key, Some(spec));
        assert_eq!(status, 201, "{body}");
        body
    }

    pub fn webhook(&self, url: &str) -> Value {
        self.channel(json!({ "name": "ops", "kind": "webhook", "url": url }))
    }

    /// A rule notifying `channels` of every `signup` event.
    pub fn rule(&self, channels: &[&Value]) -> String {
        let ids: Vec<&Value> = channels.iter().map(|c| &c["id"]).collect();
        let (status, body) = self.server.call(
            Method::POST,
            "/v1/rules",
            &self.key,
            Some(json!({
                "name": "New signup", "scope": { "type": "each" }, "channels": ids,
                "condition": { "kind": "event_match", "matches": [{ "event_type": "signup" }] },
            })),
        );
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    /// Sends a `signup` of `customer` now; answers the notification's id.
    pub fn signup(&self, customer: &str) -> String {
        let n = self.events.get() + 1;
        self.events.set(n);
        let now = self.server.call(Method::GET, "/v1/clock", ADMIN, None).1["now"].clone();
        let event = json!({ "id": format!("e{n}"), "customer_id": customer, "type": "signup", "timestamp": now });
        let (status, body) =
            self.server.call(Method::POST, "/v1/events", &self.key, Some(json!({ "events": [event] })));
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["notifications"], 1, "{body}");
        // The newest made of this event (a fast failure may already have made a report of it).
        let (_, page) = self.server.call(Method::GET, "/v1/notifications?limit=10", &self.key, None);
        let made = page["items"].as_array().unwrap().iter().find(|n| n["context"]["event"]["id"] == event["id"]);
        made.unwrap_or_else(|| panic!("no notification of {event}: {page:#}"))["id"].as_str().unwrap().to_string()
    }

    pub fn notification(&self, id: &str) -> Value {
        let (status, body) = self.server.call(Method::GET, &format!("/v1/notifications/{id}"), &self.key, None);
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Waits until the notification's status is `status`.
    pub fn wait_status(&self, id: &str, status: &str) -> Value {
        self.wait(id, |n| n["status"] == status, status)
    }

    /// Waits until the notification's only delivery has `attempts` attempts.
    pub fn wait_attempts(&self, id: &str, attempts: usize) -> Value {
        self.wait(id, |n| n["deliveries"][0]["attempts"].as_array().map_or(0, Vec::len) == attempts, "attempts")
    }

    pub fn wait(&self, id: &str, done: impl Fn(&Value) -> bool, what: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let n = self.notification(id);
            if done(&n) {
                return n;
            }
            assert!(Instant::now() < deadline, "waited for {what}: {n:#}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn a_signed_webhook_reaches_the_receiver_and_verifies() {
    let s = Setup::start("");
    let receiver = Receiver::start();
    let channel = s.channel(json!({
        "name": "ops", "kind": "webhook", "url": receiver.url,
        "headers": { "X-Rule": "{{rule.name}}", "X-Customer": "{{customer.id}}" },
    }));
    let secret = channel["secrets"][0]["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "{channel}");
    s.rule(&[&channel]);
    let id = s.signup("cus_1");

    let request = &receiver.wait_for(1)[0];
    assert!(signature_valid(&secret, request), "signature does not verify: {request:?}");
    assert_eq!(request.path, "/hook");
    let start: jiff::Timestamp = START.parse().unwrap();
    assert_eq!(request.header("webhook-timestamp"), start.as_second().to_string(), "Klaxon's clock");
    assert_eq!(request.header("content-type"), "application/json");
    assert_eq!(request.header("x-rule"), "New signup");
    assert_eq!(request.header("x-customer"), "cus_1");
    let body = request.json();
    assert_eq!(body["type"], "alert.match");
    assert_eq!(body["data"]["customer"]["id"], "cus_1");
    assert_eq!(body["data"]["event"]["type"], "signup");
    assert_eq!(body["data"]["notification"]["id"], id.as_str());

    let n = s.wait_status(&id, "delivered");
    let delivery = &n["deliveries"][0];
    assert_eq!(delivery["message_id"], request.header("webhook-id"));
    assert_eq!(delivery["payload"]["body"], request.body.as_str(), "the payload sent is kept");
    assert_eq!(delivery["attempts"][0]["status_code"], 200);
    assert_eq!(delivery["attempts"][0]["verdict"], "delivered");
    assert_eq!(delivery["attempts"][0]["response"], "ok");
    let (_, attempts) = s.server.call(Method::GET, &format!("/v1/notifications/{id}/attempts"), &s.key, None);
    assert_eq!(attempts["items"].as_array().unwrap().len(), 1, "{attempts}");
    assert_eq!(attempts["items"][0]["channel_id"], channel["id"]);

    // A rotation: both secrets sign until the old one expires.
    let path = format!("/v1/channels/{}/rotate-secret", channel["id"].as_str().unwrap());
    let (status, rotated) = s.server.call(Method::POST, &path, &s.key, Some(json!({ "keep_previous_for": "1h" })));
    assert_eq!(status, 200, "{rotated}");
    let new_secret = rotated["secrets"][0]["secret"].as_str().unwrap().to_string();
    assert_ne!(new_secret, secret);
    s.signup("cus_2");
    let request = &receiver.wait_for(2)[1];
    assert_eq!(request.header("webhook-signature").split(' ').count(), 2);
    assert!(signature_valid(&secret, request) && signature_valid(&new_secret, request));
    s.clock(&s.at("PT2H"));
    s.signup("cus_3");
    let request = &receiver.wait_for(3)[2];
    assert!(signature_valid(&new_secret, request) && !signature_valid(&secret, request), "the old secret expired");

    // A viewer sees the channel, not its secrets.
    let viewer = s.server.key(&s.key, "viewer");
    let (_, seen) =
        s.server.call(Method::GET, &format!("/v1/channels/{}", channel["id"].as_str().unwrap()), &viewer, None);
    assert!(seen.get("secrets").is_none(), "{seen}");
}

#[test]
fn a_failing_receiver_is_retried_on_the_schedule_and_honoured_retry_after() {
    let s = Setup::start("");
    let receiver = Receiver::start();
    receiver.script(vec![
        Reply::status(500),
        Reply::status(502),
        Reply { headers: vec![("retry-after", "3600".into())], ..Reply::status(503) },
    ]);
    let channel = s.webhook(&receiver.url);
    s.rule(&[&channel]);
    let id = s.signup("cus_1");

    let n = s.wait_attempts(&id, 1);
    assert_eq!(n["status"], "retrying");
    let first = &n["deliveries"][0]["attempts"][0];
    assert_eq!((first["status_code"].as_u64(), first["verdict"].as_str()), (Some(500), Some("retry")));
    assert_between(first, 4.0, 6.0);

    s.clock(&s.at("PT6S"));
    let second = &s.wait_attempts(&id, 2)["deliveries"][0]["attempts"][1];
    assert_eq!(second["status_code"], 502);
    assert_between(second, 4.0 * 60.0, 6.0 * 60.0);

    s.clock(&s.at("PT7M"));
    let third = &s.wait_attempts(&id, 3)["deliveries"][0]["attempts"][2];
    assert_eq!(third["status_code"], 503);
    assert_between(third, 3600.0, 3600.0 * 1.2);

    // The schedule alone would retry after about 30 minutes; Retry-After asked for an hour.
    s.clock(&s.at("PT45M"));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(receiver.requests().len(), 3, "no attempt before Retry-After");

    s.clock(&s.at("PT2H"));
    let n = s.wait_status(&id, "delivered");
    assert_eq!(n["deliveries"][0]["attempts"].as_array().unwrap().len(), 4);
    let requests = receiver.requests();
    assert_eq!(requests.len(), 4);
    let ids: Vec<&str> = requests.iter().map(|r| r.header("webhook-id")).collect();
    assert!(ids.iter().all(|i| *i == ids[0]), "webhook-id is stable across retries: {ids:?}");
}

/// The attempt's retry is due between `low` and `high` seconds after it.
fn assert_between(attempt: &Value, low: f64, high: f64) {
    let at: jiff::Timestamp = attempt["at"].as_str().unwrap().parse().unwrap();
    let retry: jiff::Timestamp = attempt["retry_at"].as_str().unwrap().parse().unwrap();
    let wait = retry.duration_since(at).as_secs_f64();
    assert!((low..=high).contains(&wait), "retry after {wait} s, expected {low} to {high}: {attempt}");
}

#[test]
fn gone_stops_retries_and_a_resend_delivers_again() {
    let s = Setup::start("");
    let receiver = Receiver::start();
    receiver.script(vec![Reply::status(410)]);
    let channel = s.webhook(&receiver.url);
    s.rule(&[&channel]);
    let id = s.signup("cus_1");
    let n = s.wait_status(&id, "failed");
    let delivery = &n["deliveries"][0];
    assert!(delivery["error"].as_str().unwrap().contains("410"), "{delivery}");
    assert_eq!(delivery["attempts"][0]["verdict"], "failed");
    s.clock(&s.at("PT48H"));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(receiver.requests().len(), 1, "no retry after a 410");

    let (status, body) = s.server.call(Method::POST, &format!("/v1/notifications/{id}/resend"), &s.key, None);
    assert_eq!(status, 202, "{body}");
    s.wait_status(&id, "delivered");
    let requests = receiver.wait_for(2);
    assert_eq!(requests[0].header("webhook-id"), requests[1].header("webhook-id"));
    let (status, body) = s.server.call(
        Method::POST,
        &format!("/v1/notifications/{id}/resend"),
        &s.key,
        Some(json!({ "channel_id": "chn_nope" })),
    );
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("channel_id")), "{body}");
}

#[test]
fn a_channel_that_keeps_failing_is_disabled_and_says_why() {
    let s = Setup::start("disable_after = \"1h\"\n");
    let receiver = Receiver::start();
    receiver.script((0..20).map(|_| Reply::status(500)).collect());
    let channel = s.webhook(&receiver.url);
    let channel_path = format!("/v1/channels/{}", channel["id"].as_str().unwrap());
    s.rule(&[&channel]);
    let id = s.signup("cus_1");
    s.wait_attempts(&id, 1);
    for (offset, attempts) in [("PT10S", 2), ("PT10M", 3), ("PT50M", 4)] {
        s.clock(&s.at(offset));
        s.wait_attempts(&id, attempts);
    }
    let (_, seen) = s.server.call(Method::GET, &channel_path, &s.key, None);
    assert_eq!(seen["enabled"], true, "under an hour of failures: {seen}");
    assert_eq!(seen["failing_since"], START);

    s.clock(&s.at("PT4H"));
    let n = s.wait_attempts(&id, 5);
    let (_, seen) = s.server.call(Method::GET, &channel_path, &s.key, None);
    assert_eq!(seen["enabled"], false, "{seen}");
    let reason = seen["disabled_reason"].as_str().unwrap();
    assert!(reason.contains("500") && reason.contains("1h"), "{reason}");
    assert_eq!(n["deliveries"][0]["attempts"][4]["verdict"], "retry");

    // Its pending delivery fails at its next turn without an attempt on the endpoint.
    s.clock(&s.at("PT10H"));
    let n = s.wait_status(&id, "failed");
    assert!(n["deliveries"][0]["error"].as_str().unwrap().contains("disabled"), "{n}");
    assert_eq!(receiver.requests().len(), 5);

    // Enabled again by a client, it delivers.
    let mut spec = channel.clone();
    for field in ["id", "secrets", "failing_since", "disabled_reason", "created_by", "created_at", "updated_at"] {
        spec.as_object_mut().unwrap().remove(field);
    }
    let (status, body) = s.server.call(Method::PUT, &channel_path, &s.key, Some(spec));
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["enabled"].as_bool(), body["disabled_reason"].as_str()), (Some(true), None));
    receiver.script(Vec::new());
    let later = s.signup("cus_2");
    s.wait_status(&later, "delivered");
}

#[test]
fn a_slow_endpoint_holds_back_only_itself_and_rates_are_kept() {
    let s = Setup::start("");
    let slow = Receiver::start();
    slow.delay(Duration::from_secs(2));
    let fast = Receiver::start();
    let paced = Receiver::start();
    let slow_channel = s.channel(json!({ "name": "slow", "kind": "webhook", "url": slow.url, "max_in_flight": 1 }));
    let fast_channel = s.webhook(&fast.url);
    let paced_channel =
        s.channel(json!({ "name": "paced", "kind": "webhook", "url": paced.url, "rate_per_second": 4 }));
    s.rule(&[&slow_channel, &fast_channel, &paced_channel]);
    for i in 0..6 {
        s.signup(&format!("cus_{i}"));
    }
    fast.wait_for(6);
    // The slow endpoint takes 2 s per attempt, one at a time: the fast one had all six first.
    assert_eq!(slow.requests().len(), 1, "one attempt at a time to the slow endpoint");
    let paced = paced.wait_for(6);
    let spread = paced[5].at.duration_since(paced[0].at);
    assert!(spread >= Duration::from_millis(1200), "6 attempts at 4 per second took {spread:?}");
}

#[test]
fn a_channel_with_more_due_than_its_gate_holds_gets_them_all_in_order() {
    let s = Setup::start("");
    let slow = Receiver::start();
    slow.delay(Duration::from_millis(100));
    let fast = Receiver::start();
    // One attempt at a time: its gate holds 8 due entries and leaves the rest in the queue.
    let slow_channel = s.channel(json!({ "name": "slow", "kind": "webhook", "url": slow.url, "max_in_flight": 1 }));
    let fast_channel = s.webhook(&fast.url);
    s.rule(&[&slow_channel, &fast_channel]);
    let ids: Vec<String> = (0..30).map(|i| s.signup(&format!("cus_{i}"))).collect();
    fast.wait_for(30);
    assert!(slow.requests().len() < 30, "the fast channel was not held back by the slow one");
    let received = slow.wait_for(30);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(slow.requests().len(), 30, "each once");
    let told: Vec<String> =
        received.iter().map(|r| r.json()["data"]["notification"]["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(told, ids, "in the order they were queued");
}

#[test]
fn email_reaches_a_real_smtp_server() {
    let sink = SmtpSink::start();
    let smtp = format!(
        "[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nfrom = \"Klaxon <alerts@klaxon.test>\"\n",
        sink.port
    );
    let s = Setup::start(&smtp);
    let (status, body) = s.server.call(
        Method::PUT,
        "/v1/customers/cus_1",
        &s.key,
        Some(json!({ "name": "Initech", "fields": { "plan": "gold" } })),
    );
    assert!(status == 200 || status == 201, "{body}");
    let builtin = s.channel(json!({ "name": "mail", "kind": "email", "to": ["ops@example.com"] }));
    let custom = s.channel(json!({
        "name": "custom mail", "kind": "email", "to": ["Billing <billing@example.com>"],
        "subject": "{{customer.name}} on {{customer.fields.plan}}",
        "text": "Hello,\n{{headline}}.\nEvent {{event.id}}\n",
    }));
    s.rule(&[&builtin, &custom]);
    let id = s.signup("cus_1");
    let messages = sink.wait_for(2);
    let to = |who: &str| messages.iter().find(|m| m["rcpt_tos"][0] == who).unwrap_or_else(|| panic!("{messages:?}"));

    let first = to("ops@example.com");
    assert_eq!(first["mail_from"], "alerts@klaxon.test");
    assert_eq!(first["subject"], "[warning] New signup matched an event for Initech");
    let text = first["text"].as_str().unwrap();
    assert!(text.contains("Customer: Initech (cus_1)") && text.contains(&id), "{text}");
    assert!(first["html"].as_str().unwrap().contains("<th align=\"left\">Customer</th><td>Initech (cus_1)</td>"));

    let second = to("billing@example.com");
    assert_eq!(second["subject"], "Initech on gold");
    assert_eq!(
        second["text"].as_str().unwrap().replace("\r\n", "\n").trim_end(),
        "Hello,\nNew signup matched an event for Initech.\nEvent e1"
    );
    let n = s.wait_status(&id, "delivered");
    assert_eq!(n["deliveries"][0]["attempts"][0]["status_code"], 250);
}

#[test]
fn email_channels_need_an_smtp_server() {
    let s = Setup::start("");
    let (status, body) = s.server.call(
        Method::POST,
        "/v1/channels",
        &s.key,
        Some(json!({ "name": "mail", "kind": "email", "to": ["ops@example.com"] })),
    );
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("kind")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("SMTP"), "{body}");
}

#[test]
fn slack_and_teams_payloads_keep_within_their_limits() {
    let s = Setup::start("");
    let slack_receiver = Receiver::start();
    let teams_receiver = Receiver::start();
    let long_name = "N".repeat(20_000);
    let notes = "x".repeat(5_000);
    let (status, body) = s.server.call(
        Method::PUT,
        "/v1/customers/cus_1",
        &s.key,
        Some(json!({ "name": long_name, "fields": { "notes": notes } })),
    );
    assert!(status == 200 || status == 201, "{body}");
    let slack = s.channel(json!({ "name": "slack", "kind": "slack", "url": slack_receiver.url }));
    let many_blocks: Vec<String> = (0..70)
        .map(|_| {
            r#"{"type": "section", "text": {"type": "mrkdwn", "text": {{json customer.fields.notes}}}}"#.to_string()
        })
        .collect();
    let crowded = s.channel(json!({
        "name": "crowded slack", "kind": "slack", "url": slack_receiver.url,
        "body": format!(r#"{{"text": "many", "blocks": [{}]}}"#, many_blocks.join(",")),
    }));
    let teams = s.channel(json!({ "name": "teams", "kind": "teams", "url": teams_receiver.url }));
    s.rule(&[&slack, &crowded, &teams]);
    let id = s.signup("cus_1");
    s.wait_status(&id, "delivered");

    for request in slack_receiver.wait_for(2) {
        assert!(request.header("webhook-signature").is_empty(), "only webhooks are signed");
        let message = request.json();
        let blocks = message["blocks"].as_array().unwrap();
        assert!(blocks.len() <= 50, "{} blocks", blocks.len());
        for block in blocks {
            let text = block["text"]["text"].as_str().unwrap_or("");
            let limit = if block["type"] == "header" { 150 } else { 3000 };
            assert!(text.chars().count() <= limit, "{} > {limit}", text.chars().count());
            for field in block["fields"].as_array().into_iter().flatten() {
                assert!(field["text"].as_str().unwrap().chars().count() <= 2000);
            }
        }
        if message["text"] == "many" {
            assert_eq!(blocks.len(), 50);
        } else {
            assert_eq!(blocks[0]["type"], "header");
        }
    }
    let request = &teams_receiver.wait_for(1)[0];
    assert!(request.body.len() <= 28 * 1024, "{} bytes", request.body.len());
    let message = request.json();
    assert_eq!(message["type"], "message");
    let attachment = &message["attachments"][0];
    assert_eq!(attachment["contentType"], "application/vnd.microsoft.card.adaptive");
    assert_eq!(attachment["content"]["type"], "AdaptiveCard");
    assert_eq!(attachment["content"]["version"], "1.4");
    assert!(attachment["content"]["body"][0]["text"].as_str().unwrap().starts_with("New signup matched an event"));
}

#[test]
fn pending_deliveries_survive_a_kill() {
    let mut s = Setup::start("");
    let receiver = Receiver::start();
    receiver.delay(Duration::from_millis(30));
    let channel = s.webhook(&receiver.url);
    s.rule(&[&channel]);
    // A batch of notifications, and a kill while their deliveries are under way.
    let events: Vec<Value> = (0..40)
        .map(|i| json!({ "id": format!("k{i}"), "customer_id": format!("cus_{i}"), "type": "signup", "timestamp": START }))
        .collect();
    let (status, body) = s.server.call(Method::POST, "/v1/events", &s.key, Some(json!({ "events": events })));
    assert_eq!((status, body["notifications"].as_u64()), (200, Some(40)), "{body}");
    std::thread::sleep(Duration::from_millis(100));
    s.server.stop("KILL");
    let before_kill = receiver.requests().len();
    assert!(before_kill < 40, "the kill came after every delivery ({before_kill})");
    s.server.spawn();
    // A manual clock starts again from the system's time.
    s.clock(START);

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, page) = s.server.call(Method::GET, "/v1/notifications?limit=100", &s.key, None);
        let items = page["items"].as_array().unwrap();
        assert_eq!(items.len(), 40);
        if items.iter().all(|n| n["status"] == "delivered") {
            break;
        }
        assert!(Instant::now() < deadline, "not all delivered after the restart: {page:#}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut seen: Vec<String> = receiver.requests().iter().map(|r| r.header("webhook-id").to_string()).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 40, "every notification reached the receiver");
}
