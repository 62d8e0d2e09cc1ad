//! Customers managing their own alerts: tokens a tenant mints for one customer, what such a
//! token may and may not do, email addresses confirmed by a link, and the embeddable portal in
//! headless Chromium.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use reqwest::Method;
use serde_json::{Value, json};

use crate::alerts::{MONDAY, Scenario, at, event};
use crate::browser::Browser;
use crate::delivery::LOOPBACK_ALLOWED;
use crate::receivers::{Receiver, SmtpSink};
use crate::support::Server;

/// A tenant on a manual clock at `MONDAY`, with customers `acme` (100 prepaid credits) and
/// `globex`, and `usage` among its event types.
fn tenant(extra_config: &str) -> Scenario {
    let config = format!("{LOOPBACK_ALLOWED}{extra_config}");
    let server = Server::start_with(Some(&config), &["--manual-clock"]);
    let (_, key) = server.tenant("Acme Analytics");
    let s = Scenario { server, key };
    s.clock(MONDAY);
    s.customer("acme", json!({ "prepaid_credits": 100 }));
    s.customer("globex", json!({ "prepaid_credits": 5 }));
    s.send(vec![event("seen", "globex", "usage", "PT1S", json!({ "credits": 1 }))]);
    s
}

fn mint(s: &Scenario, customer: &str, body: Value) -> Value {
    let (status, minted) = s.server.call(Method::POST, &format!("/v1/customers/{customer}/tokens"), &s.key, Some(body));
    assert_eq!(status, 201, "{minted}");
    minted
}

fn created(s: &Scenario, token: &str, path: &str, body: Value) -> Value {
    let (status, made) = s.server.call(Method::POST, path, token, Some(body));
    assert_eq!(status, 201, "{path}: {made}");
    made
}

fn balance_rule(customer: &str, channel: &str) -> Value {
    json!({ "name": "Credits used up", "scope": { "type": "customer", "customer_id": customer }, "channels": [channel],
            "condition": { "kind": "balance", "balance_field": "prepaid_credits",
                           "metric": { "event_types": ["usage"], "aggregate": "sum", "property": "credits" } } })
}

fn refusal(s: &Scenario, method: Method, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let (status, body) = s.server.call(method, path, token, body);
    (status, body["error"].clone())
}

#[test]
fn a_customer_token_sets_a_balance_alert_on_its_own_usage_and_is_kept_to_that() {
    let s = tenant("");
    let minted = mint(&s, "acme", json!({}));
    assert_eq!(minted["expires_at"], at("PT1H"), "an hour by default");
    assert_eq!(minted["allowed"], json!(["threshold", "balance", "percent_change"]));
    assert_eq!(minted["max_rules"], 10);
    assert!(minted["portal_url"].as_str().unwrap().starts_with("/portal?token=klc_"));
    let token = minted["token"].as_str().unwrap().to_string();
    let mint_path = "/v1/customers/acme/tokens";
    for (body, field) in [
        (json!({ "ttl": "25h" }), "ttl"),
        (json!({ "allowed": ["plugin"] }), "allowed[0]"),
        (json!({ "max_rules": 0 }), "max_rules"),
    ] {
        let (status, error) = refusal(&s, Method::POST, mint_path, &s.key, Some(body));
        assert_eq!((status, error["field"].as_str()), (400, Some(field)), "{error}");
    }
    assert_eq!(refusal(&s, Method::POST, "/v1/customers/nobody/tokens", &s.key, None).0, 404);

    // Its own webhook and its own balance alert, which fires on its own usage only.
    let receiver = Receiver::start();
    let channel =
        created(&s, &token, "/v1/channels", json!({ "name": "my hook", "kind": "webhook", "url": receiver.url }));
    assert_eq!(channel["created_by"], "customer:acme");
    let channel = channel["id"].as_str().unwrap().to_string();
    let rule = created(&s, &token, "/v1/rules", balance_rule("acme", &channel));
    assert_eq!(rule["created_by"], "customer:acme");
    let rule = rule["id"].as_str().unwrap().to_string();
    let spend =
        |id: &str, customer: &str, credits: f64| event(id, customer, "usage", "PT2M", json!({ "credits": credits }));
    s.send(vec![spend("g1", "globex", 50.0), spend("a1", "acme", 60.0)]);
    s.send(vec![spend("a2", "acme", 50.0)]);
    let hooks = receiver.wait_for(1);
    let body: Value = serde_json::from_str(&hooks[0].body).unwrap();
    assert_eq!(body["data"]["customer"]["id"], "acme", "{body}");
    assert_eq!(body["data"]["value"], 110.0, "{body}");
    let (status, mine) = s.server.call(Method::GET, "/v1/notifications", &token, None);
    assert_eq!(status, 200);
    let items = mine["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{mine}");
    // The receiver answers before the attempt is recorded: wait for the record.
    let attempts = wait_for_attempt(&s, &token, items[0]["id"].as_str().unwrap());
    assert_eq!(attempts[0]["verdict"], "delivered", "{attempts:?}");

    // Nothing beyond: other customers, other scopes, other kinds, the tenant's objects.
    let (status, error) = refusal(&s, Method::GET, "/v1/customers/globex", &token, None);
    assert_eq!(status, 403);
    assert!(error["message"].as_str().unwrap().contains("`customers:read`"), "{error}");
    let with = |change: Value| {
        let mut rule = balance_rule("acme", &channel);
        rule.as_object_mut().unwrap().extend(change.as_object().unwrap().clone());
        rule
    };
    let refused_rule = |rule: Value| {
        let (status, error) = refusal(&s, Method::POST, "/v1/rules", &token, Some(rule));
        assert_eq!(status, 400, "{error}");
        error["field"].as_str().unwrap().to_string()
    };
    assert_eq!(refused_rule(with(json!({ "scope": { "type": "all" } }))), "scope");
    assert_eq!(refused_rule(with(json!({ "scope": { "type": "customer", "customer_id": "globex" } }))), "scope");
    assert_eq!(refused_rule(with(json!({ "condition": { "kind": "plugin", "plugin": "wow" } }))), "condition.kind");
    let secret_type = json!({ "kind": "balance", "balance_field": "prepaid_credits",
                              "metric": { "event_types": ["invoices"], "aggregate": "count" } });
    assert_eq!(refused_rule(with(json!({ "condition": secret_type }))), "condition.metric.event_types[0]");
    let (_, theirs) = s.server.call(
        Method::POST,
        "/v1/channels",
        &s.key,
        Some(json!({ "name": "ops", "kind": "webhook", "url": receiver.url })),
    );
    let their_channel = theirs["id"].as_str().unwrap();
    assert_eq!(refused_rule(with(json!({ "channels": [their_channel] }))), "channels[0]");
    assert_eq!(refused_rule(with(json!({ "category": "billing" }))), "category");
    let tenant_rule = s.rule(json!({ "name": "All usage", "scope": { "type": "all" },
        "condition": { "kind": "threshold", "window": { "calendar": "day" }, "operator": ">", "value": 1000,
                       "metric": { "event_types": ["usage"], "aggregate": "count" } } }));
    assert_eq!(refusal(&s, Method::GET, &format!("/v1/rules/{tenant_rule}"), &token, None).0, 404);
    assert_eq!(refusal(&s, Method::GET, &format!("/v1/channels/{their_channel}"), &token, None).0, 404);
    let (_, listed) = s.server.call(Method::GET, "/v1/rules", &token, None);
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "its own rule only: {listed}");
    let (_, listed) = s.server.call(Method::GET, "/v1/channels", &token, None);
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "its own channel only: {listed}");
    for (method, path) in [
        (Method::GET, "/v1/plugins"),
        (Method::GET, "/v1/api-keys"),
        (Method::GET, "/v1/subscriptions"),
        (Method::POST, "/v1/events"),
        (Method::GET, "/v1/tenants"),
    ] {
        assert_eq!(refusal(&s, method, path, &token, Some(json!({}))).0, 403, "{path}");
    }
    let (status, error) = refusal(
        &s,
        Method::POST,
        "/v1/channels",
        &token,
        Some(json!({ "name": "s", "kind": "slack", "url": receiver.url })),
    );
    assert_eq!((status, error["field"].as_str()), (400, Some("kind")), "{error}");

    // The tenant's per-customer limit.
    let one = mint(&s, "acme", json!({ "max_rules": 1 }))["token"].as_str().unwrap().to_string();
    let (status, error) = refusal(&s, Method::POST, "/v1/rules", &one, Some(balance_rule("acme", &channel)));
    assert_eq!((status, error["limit"].as_str()), (403, Some("max_rules")), "{error}");

    // The tenant sees what customers made, and turns it off.
    let (_, made) = s.server.call(Method::GET, "/v1/rules?owner=customer", &s.key, None);
    let made = made["items"].as_array().unwrap();
    assert_eq!(made.iter().map(|r| r["id"].as_str().unwrap()).collect::<Vec<_>>(), [rule.as_str()]);
    let mut off = made[0].clone();
    for key in ["id", "created_by", "created_at", "updated_at", "alerts"] {
        off.as_object_mut().unwrap().remove(key);
    }
    off["enabled"] = json!(false);
    let (status, body) = s.server.call(Method::PUT, &format!("/v1/rules/{rule}"), &s.key, Some(off));
    assert_eq!(status, 200, "{body}");
    assert_eq!(s.server.call(Method::GET, &format!("/v1/rules/{rule}"), &token, None).1["enabled"], false);

    // Expired, and revoked.
    s.clock(&at("PT1H1M"));
    let (status, _) = refusal(&s, Method::GET, "/v1/rules", &token, None);
    assert_eq!(status, 401, "expired");
    let fresh = mint(&s, "acme", json!({}))["token"].as_str().unwrap().to_string();
    assert_eq!(s.server.call(Method::GET, "/v1/rules", &fresh, None).0, 200);
    assert_eq!(s.server.call(Method::POST, "/v1/customer-tokens/revoke", &s.key, None).0, 200);
    assert_eq!(s.server.call(Method::GET, "/v1/rules", &fresh, None).0, 401, "revoked by the rotation");
    let last = mint(&s, "acme", json!({}))["token"].as_str().unwrap().to_string();
    assert_eq!(s.server.call(Method::GET, "/v1/rules", &last, None).0, 200);

    // A customer deleted: its tokens go with it.
    assert_eq!(s.server.call(Method::DELETE, "/v1/customers/acme", &s.key, None).0, 204);
    assert_eq!(s.server.call(Method::GET, "/v1/rules", &last, None).0, 401, "its customer is gone");
}

#[test]
fn a_customers_email_address_gets_alerts_only_once_its_link_is_followed() {
    let smtp = SmtpSink::start();
    let s = tenant(&format!(
        "[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nfrom = \"Klaxon <alerts@klaxon.test>\"\n",
        smtp.port
    ));
    let token = mint(&s, "acme", json!({ "allowed": ["event_match"] }))["token"].as_str().unwrap().to_string();
    let channel =
        created(&s, &token, "/v1/channels", json!({ "name": "me", "kind": "email", "to": ["ops@acme.test"] }));
    assert_eq!(channel["confirmations"], json!({ "ops@acme.test": "pending" }));
    let mails = smtp.wait_for(1);
    assert_eq!(mails[0]["rcpt_tos"], json!(["ops@acme.test"]));
    assert!(mails[0]["subject"].as_str().unwrap().contains("Acme Analytics"), "{}", mails[0]);
    let text = mails[0]["text"].as_str().unwrap();
    let link = text.split_whitespace().find(|word| word.contains("/portal/confirm?")).expect("a link");
    let rule = json!({ "name": "Any usage", "scope": { "type": "customer", "customer_id": "acme" },
                       "channels": [channel["id"]], "condition": { "kind": "event_match", "matches": [{ "event_type": "usage" }] } });
    let rule = created(&s, &token, "/v1/rules", rule)["id"].as_str().unwrap().to_string();

    s.send(vec![event("u1", "acme", "usage", "PT1M", json!({}))]);
    let first = &s.notifications(&rule)[0];
    let attempts = wait_for_attempt(&s, &token, first["id"].as_str().unwrap());
    assert!(attempts[0]["error"].as_str().unwrap().contains("confirmed"), "{attempts:?}");
    assert_eq!(smtp.wait_for(1).len(), 1, "no alert went to the unconfirmed address");

    let path = link.split_once("/portal/").map(|(_, rest)| format!("/portal/{rest}")).unwrap();
    let (status, page) = read_text(s.server.request(Method::GET, &path, None));
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("ops@acme.test"), "{page}");
    let (status, _) = read_text(s.server.request(Method::GET, &format!("{path}x"), None));
    assert_eq!(status, 404, "a forged link confirms nothing");
    let (_, channel) =
        s.server.call(Method::GET, &format!("/v1/channels/{}", channel["id"].as_str().unwrap()), &token, None);
    assert_eq!(channel["confirmations"], json!({ "ops@acme.test": "confirmed" }));

    s.send(vec![event("u2", "acme", "usage", "PT2M", json!({}))]);
    let mails = smtp.wait_for(2);
    assert_eq!(mails[1]["rcpt_tos"], json!(["ops@acme.test"]));
    assert!(mails[1]["subject"].as_str().unwrap().contains("Any usage"), "{}", mails[1]);
}

fn wait_for_attempt(s: &Scenario, token: &str, notification: &str) -> Vec<Value> {
    let path = format!("/v1/notifications/{notification}/attempts");
    for _ in 0..200 {
        let (_, body) = s.server.call(Method::GET, &path, token, None);
        let items = body["items"].as_array().cloned().unwrap_or_default();
        if !items.is_empty() {
            return items;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("no attempt was made for {notification}");
}

fn read_text(request: reqwest::blocking::RequestBuilder) -> (u16, String) {
    let response = request.send().unwrap();
    (response.status().as_u16(), response.text().unwrap())
}

#[test]
fn the_portal_page_manages_a_customers_alerts_in_a_browser() {
    let s = tenant("");
    let minted = mint(&s, "acme", json!({}));
    let browser = Browser::start();
    browser.open(&format!("{}{}", s.server.base, minted["portal_url"].as_str().unwrap()));
    browser.wait_for_text("#portal-title", "Alerts from Acme Analytics");
    let url = browser.url();
    assert!(url.starts_with(&format!("{}/portal", s.server.base)) && !url.contains("token"), "the token left: {url}");
    browser.find("#no-destination");

    let receiver = Receiver::start();
    browser.fill("name", "my hook");
    browser.fill("url", &receiver.url);
    browser.click("#create-destination");
    browser.wait_for_text("main", "my hook");
    browser.fill_in("form", "name", "Credits used up");
    browser.choose("condition.kind", "balance");
    browser.choose("condition.metric.event_types[0]", "usage");
    browser.fill("condition.metric.property", "credits");
    browser.fill("condition.balance_field", "prepaid_credits");
    browser.click("#create-alert");
    browser.wait_for_text("main table", "Credits used up");

    let (_, rules) = s.server.call(Method::GET, "/v1/rules?owner=customer:acme", &s.key, None);
    let rule = &rules["items"][0];
    assert_eq!(rule["scope"], json!({ "type": "customer", "customer_id": "acme" }), "{rules}");
    assert_eq!(rule["condition"]["kind"], "balance");
    s.send(vec![event("a1", "acme", "usage", "PT1M", json!({ "credits": 120 }))]);
    receiver.wait_for(1);
    browser.refresh();
    browser.wait_for_text("main", "Recently sent");
    browser.wait_for_text("main table:last-of-type", "Credits used up");

    // A page opened with a revoked token says so.
    assert_eq!(s.server.call(Method::POST, "/v1/customer-tokens/revoke", &s.key, None).0, 200);
    browser.refresh();
    browser.wait_for_text("main h1", "expired");
}

/// An HTTP server on `localhost` (another origin than the server's `127.0.0.1`) serving one
/// page that frames `src`.
fn embedding_page(src: &str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let origin = format!("http://localhost:{}", listener.local_addr().unwrap().port());
    let page =
        format!("<!doctype html><title>host</title><iframe id=\"portal\" src=\"{src}\" width=800 height=600></iframe>");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let mut stream = stream;
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                page.len()
            );
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    origin
}

#[test]
fn the_portal_may_be_framed_only_by_the_origins_the_tenant_lists() {
    let s = tenant("");
    let src = |s: &Scenario| format!("{}{}", s.server.base, mint(s, "acme", json!({}))["portal_url"].as_str().unwrap());
    let listed = embedding_page(&src(&s));
    let other = embedding_page(&src(&s));
    let (status, error) = refusal(
        &s,
        Method::PUT,
        "/v1/portal",
        &s.key,
        Some(json!({ "frame_ancestors": ["https://a.com; script-src *"] })),
    );
    assert_eq!((status, error["field"].as_str()), (400, Some("frame_ancestors[0]")), "{error}");
    let (status, body) = s.server.call(Method::PUT, "/v1/portal", &s.key, Some(json!({ "frame_ancestors": [listed] })));
    assert_eq!(status, 200, "{body}");
    let portal = s.server.request(Method::GET, "/portal", None).send().unwrap();
    let policy = portal.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(policy.contains("frame-ancestors 'none'"), "no session, no framing: {policy}");

    let browser = Browser::start();
    let look_inside = |origin: &str| {
        browser.open(&format!("{origin}/"));
        let frame = browser.find("#portal");
        browser.switch_to_frame(&frame);
    };
    look_inside(&listed);
    browser.find("#portal-title");
    browser.switch_to_parent();
    look_inside(&other);
    // The refused frame shows the browser's error page; give it the time the listed one took.
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(browser.try_find("#portal-title").is_none(), "another origin does not frame the portal");
}
