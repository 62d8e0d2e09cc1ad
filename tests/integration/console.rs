//! The web console: its session (cookie, CSRF, expiry, revocation) and security headers over
//! HTTP, then its flows in a real headless Chromium.

use reqwest::Method;
use reqwest::blocking::Response;
use serde_json::{Value, json};

use crate::browser::Browser;
use crate::delivery::Setup;
use crate::receivers::Receiver;
use crate::support::{ADMIN, Server};

/// Signs in over HTTP: the session cookie (`name=value`) and the CSRF token.
pub fn sign_in(server: &Server, token: &str) -> (String, String) {
    let response = post_session(server, token, &[]);
    assert_eq!(response.status(), 200);
    let cookie = set_cookie(&response);
    let body: Value = response.json().unwrap();
    (cookie.split(';').next().unwrap().to_string(), body["csrf"].as_str().unwrap().to_string())
}

fn post_session(server: &Server, token: &str, headers: &[(&str, &str)]) -> Response {
    let mut request = server.request(Method::POST, "/console/session", None).json(&json!({ "token": token }));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().unwrap()
}

fn set_cookie(response: &Response) -> String {
    response.headers()["set-cookie"].to_str().unwrap().to_string()
}

/// A call with the session cookie instead of a bearer token, with or without the CSRF header.
pub fn with_cookie(
    server: &Server,
    method: Method,
    path: &str,
    cookie: &str,
    csrf: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = server.request(method, path, None).header("cookie", cookie);
    if let Some(csrf) = csrf {
        request = request.header("x-csrf-token", csrf);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

#[test]
fn the_console_is_served_with_a_strict_content_security_policy() {
    let server = Server::start();
    let page = server.request(Method::GET, "/", None).send().unwrap();
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/html"));
    let csp = headers["content-security-policy"].to_str().unwrap();
    for directive in ["default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    let html = page.text().unwrap();
    assert!(html.contains(r#"<script type="module" src="/console/app.js"></script>"#), "{html}");
    assert!(!html.contains("<script>"), "no inline script");

    let script = server.request(Method::GET, "/console/app.js", None).send().unwrap();
    assert_eq!(script.status(), 200);
    assert!(script.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
    // Revalidated by digest: an unchanged file is not sent again.
    let etag = script.headers()["etag"].to_str().unwrap().to_string();
    let again = server.request(Method::GET, "/console/app.js", None).header("if-none-match", &etag).send().unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["content-security-policy"].to_str().unwrap(), csp, "headers on a 304 too");
    let missing = server.request(Method::GET, "/console/nope.js", None).send().unwrap();
    assert_eq!(missing.status(), 404);
}

#[test]
fn a_session_is_an_httponly_strict_cookie_and_every_change_needs_its_csrf_token() {
    let server = Server::start_with(None, &["--manual-clock"]);
    let (_, admin_key) = server.tenant("acme");

    let refused = post_session(&server, "klx_key_nobody.secret", &[]);
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().unwrap();
    assert_eq!(body["error"]["field"], "token", "{body}");

    let response = post_session(&server, &admin_key, &[]);
    let cookie = set_cookie(&response);
    for attribute in ["klaxon_session=", "HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=28800"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    let behind_tls = set_cookie(&post_session(&server, &admin_key, &[("x-forwarded-proto", "https")]));
    assert!(behind_tls.contains("; Secure"), "{behind_tls}");

    let (cookie, csrf) = sign_in(&server, &admin_key);
    let (status, me) = with_cookie(&server, Method::GET, "/console/session", &cookie, None, None);
    assert_eq!(status, 200);
    assert_eq!(me["principal"]["role"], "admin");
    assert_eq!(me["principal"]["tenant_name"], "acme");
    assert_eq!(me["csrf"], csrf.as_str());

    let (status, _) = with_cookie(&server, Method::GET, "/v1/rules", &cookie, None, None);
    assert_eq!(status, 200, "reads need no CSRF token");
    let category = json!({ "description": "billing things" });
    let (status, body) =
        with_cookie(&server, Method::PUT, "/v1/categories/billing", &cookie, None, Some(category.clone()));
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("x-csrf-token"), "{body}");
    let (status, _) =
        with_cookie(&server, Method::PUT, "/v1/categories/billing", &cookie, Some("wrong"), Some(category.clone()));
    assert_eq!(status, 403);
    let (status, body) =
        with_cookie(&server, Method::PUT, "/v1/categories/billing", &cookie, Some(&csrf), Some(category));
    assert!(status == 200 || status == 201, "{status} {body}");

    // A deleted key ends its sessions at once.
    let viewer = server.key(&admin_key, "viewer");
    let (viewer_cookie, _) = sign_in(&server, &viewer);
    assert_eq!(with_cookie(&server, Method::GET, "/v1/rules", &viewer_cookie, None, None).0, 200);
    let viewer_id = viewer.strip_prefix("klx_").unwrap().split('.').next().unwrap();
    let (status, _) = server.call(Method::DELETE, &format!("/v1/api-keys/{viewer_id}"), &admin_key, None);
    assert_eq!(status, 204);
    assert_eq!(with_cookie(&server, Method::GET, "/v1/rules", &viewer_cookie, None, None).0, 401);

    // Signing out needs the token too, and ends the session.
    assert_eq!(with_cookie(&server, Method::DELETE, "/console/session", &cookie, None, None).0, 403);
    assert_eq!(with_cookie(&server, Method::DELETE, "/console/session", &cookie, Some(&csrf), None).0, 204);
    assert_eq!(with_cookie(&server, Method::GET, "/v1/rules", &cookie, None, None).0, 401);

    // Sessions expire after eight hours.
    let (cookie, _) = sign_in(&server, &admin_key);
    let now: jiff::Timestamp =
        server.call(Method::GET, "/v1/clock", ADMIN, None).1["now"].as_str().unwrap().parse().unwrap();
    let later = now + jiff::SignedDuration::from_hours(8) + jiff::SignedDuration::from_secs(1);
    let (status, body) = server.call(Method::PUT, "/v1/clock", ADMIN, Some(json!({ "now": later.to_string() })));
    assert_eq!(status, 200, "{body}");
    let (status, body) = with_cookie(&server, Method::GET, "/v1/rules", &cookie, None, None);
    assert_eq!(status, 401, "{body}");
}

#[test]
fn signing_in_and_out_in_the_browser_and_a_viewer_sees_no_edit_controls() {
    let server = Server::start();
    let (_, admin_key) = server.tenant("acme");
    let viewer = server.key(&admin_key, "viewer");
    let browser = Browser::start();
    browser.open(&server.base);

    browser.fill("token", "klx_key_nobody.secret");
    browser.click("button[type=submit]");
    browser.wait_for_text("[data-error-for=\"token\"]", "not a valid API key");
    browser.screenshot("sign-in");

    browser.sign_in(&admin_key);
    browser.wait_for_text("#whoami", "acme · admin");
    browser.wait_for_text("h1", "Overview");
    // The moment the console benchmark measures: the page is drawn with its data.
    let marks = browser.script("return performance.getEntriesByName('klaxon:ready').map((e) => e.detail);");
    assert_eq!(marks, json!(["overview"]), "{marks}");
    browser.click("nav a[href=\"#/rules\"]");
    browser.wait_for_text("h1", "Rules");
    browser.find("#new-rule");
    browser.click("nav a[href=\"#/channels\"]");
    browser.wait_for_text("h1", "Channels");
    browser.find("#new-channel");

    browser.click("#sign-out");
    browser.wait_for_text("h1", "Sign in");
    browser.wait_gone("#whoami");
    browser.open(&format!("{}/#/rules", server.base));
    browser.wait_for_text("h1", "Sign in");

    browser.sign_in(&viewer);
    browser.wait_for_text("#whoami", "acme · viewer");
    browser.wait_for_text("h1", "Rules");
    assert!(browser.try_find("#new-rule").is_none(), "a viewer sees no New rule button");
    browser.click("nav a[href=\"#/channels\"]");
    browser.wait_for_text("h1", "Channels");
    assert!(browser.try_find("#new-channel").is_none(), "a viewer sees no New channel button");
}

#[test]
fn a_channel_and_a_threshold_rule_made_in_the_browser_alarm_deliver_and_resend() {
    let s = Setup::start("");
    let receiver = Receiver::start();
    let browser = Browser::signed_in(&s.server.base, &s.key, "Overview");

    // A template naming a variable that does not exist is refused at its field.
    browser.open(&format!("{}/#/channels/new", s.server.base));
    browser.wait_for_text("h1", "New channel");
    browser.fill("name", "ops hook");
    browser.fill("url", &receiver.url);
    browser.fill("body", r#"{"rule": "{{rule.nmae}}"}"#);
    // The server's strict check runs as the template is typed, before any submit.
    browser.wait_for_text("[data-error-for=\"body\"]", "rule.nmae");
    browser.click("button[type=submit]");
    browser.wait_for_text("[data-error-for=\"body\"]", "rule.nmae");
    assert_eq!(browser.find("[data-field=\"body\"]").attribute("aria-invalid"), "true");

    browser.fill("body", r#"{"rule": "{{rule.name}}", "value": {{value}}}"#);
    browser.wait_for_text("#live-preview", "\"rule\":");
    assert_eq!(browser.find("[data-error-for=\"body\"]").text(), "", "the error went as the template was mended");
    browser.click("button[type=submit]");
    browser.wait_for_text("h1", "ops hook");
    browser.click("#edit-channel");
    browser.wait_for_text("h1", "Edit ops hook");
    browser.fill("name", "ops webhook");
    browser.click("button[type=submit]");
    browser.wait_for_text("h1", "ops webhook");
    browser.wait_for_text("#secrets", "whsec_");
    assert!(!browser.find("main").text().contains("\nnull\n"), "nothing absent is shown as `null`");
    browser.click("#preview-button");
    browser.wait_for_text("#preview", "\"rule\":");
    browser.click("#test-button");
    browser.wait_for_text("#test-result .attempt-status", "200");
    assert_eq!(receiver.wait_for(1).len(), 1, "the test send reached the receiver");
    browser.screenshot("channel");

    browser.click("nav a[href=\"#/rules\"]");
    browser.click("#new-rule");
    browser.wait_for_text("h1", "New rule");
    browser.fill("name", "Heavy usage");
    browser.fill("condition.metric.event_types", "usage");
    browser.choose("condition.metric.aggregate", "sum");
    assert!(
        !browser.find("[data-field=\"condition.window.rolling\"]").displayed(),
        "a calendar window needs no duration"
    );
    browser.choose("condition.window", "rolling");
    assert!(browser.find("[data-field=\"condition.window.rolling\"]").displayed());
    browser.choose("condition.window", "calendar:day");
    assert!(!browser.find("[data-field=\"condition.window.rolling\"]").displayed());
    browser.fill("condition.value", "lots");
    browser.click("fieldset[data-field=channels] input[type=checkbox]");
    browser.click("button[type=submit]");
    browser.wait_for_text("[data-error-for=\"condition.value\"]", "must be a number");
    browser.fill("condition.value", "10");
    browser.click("button[type=submit]");
    browser.wait_for_text("[data-error-for=\"condition.metric.property\"]", "is required");
    browser.fill("condition.metric.property", "hours");
    browser.screenshot("new-rule");
    browser.click("button[type=submit]");
    browser.wait_for_text("h1", "Heavy usage");
    browser.wait_for_text("#state-counts", "0 in alarm");
    assert!(browser.url().contains("#/rules/rul_"), "{}", browser.url());

    let now = s.server.call(Method::GET, "/v1/clock", ADMIN, None).1["now"].clone();
    let event =
        json!({ "id": "u1", "customer_id": "c1", "type": "usage", "timestamp": now, "properties": { "hours": 12 } });
    let (status, body) = s.server.call(Method::POST, "/v1/events", &s.key, Some(json!({ "events": [event] })));
    assert_eq!((status, &body["notifications"]), (200, &json!(1)), "{body}");
    assert_eq!(receiver.wait_for(2).len(), 2, "the alarm reached the receiver");

    browser.refresh();
    browser.wait_for_text("#state-counts", "1 in alarm");
    browser.wait_for_text("table", "in_alarm");
    browser.screenshot("rule");

    browser.click("nav a[href=\"#/notifications\"]");
    browser.wait_for_text("h1", "Notifications");
    browser.wait_for_text("table", "Heavy usage");
    browser.screenshot("notifications");
    browser.click("table a");
    browser.wait_for_text("#attempts", "200");
    browser.wait_for_text("#notification-status", "delivered");
    browser.click("#resend-button");
    browser.wait_for_text("#resent", "Resent");
    assert_eq!(receiver.wait_for(3).len(), 3, "the resend reached the receiver");

    // The history filters by time as well.
    browser.click("nav a[href=\"#/notifications\"]");
    browser.wait_for_text("table", "Heavy usage");
    browser.set_value("since", "2099-01-01T00:00");
    browser.click("main form button[type=submit]");
    browser.wait_for_text("main", "No notifications match.");
}

#[test]
fn a_plugin_channel_is_made_from_its_plugin_s_schema_and_its_secret_is_never_shown() {
    let s = Setup::start("");
    let (status, body) = s.server.upload(&s.key, "pagerduty", "channel", &crate::support::guests().pagerduty);
    assert_eq!(status, 201, "{body}");
    let receiver = Receiver::start();
    let browser = Browser::signed_in(&s.server.base, &s.key, "Overview");
    browser.open(&format!("{}/#/channels/new", s.server.base));
    browser.wait_for_text("h1", "New channel");
    browser.fill("name", "pager");
    browser.choose("kind", "plugin");
    // The plugin's schema marks the routing key write-only: a password control asks for it, and
    // the JSON field for secrets is not needed.
    let secret = browser.find("[data-field=\"secret_config.routing_key\"]");
    assert!(secret.displayed());
    assert_eq!(secret.attribute("type"), "password");
    assert!(!browser.find("[data-field=\"secret_config\"]").displayed());
    browser.fill("config.url", &receiver.url);
    browser.fill("secret_config.routing_key", "R0UTING-KEY-42");
    browser.fill("allow_hosts", "127.0.0.1");
    browser.screenshot("plugin-channel");
    browser.click("button[type=submit]");
    browser.wait_for_text("h1", "pager");
    browser.wait_for_text("main", "pagerduty → 127.0.0.1");
    browser.click("#test-button");
    browser.wait_for_text("#test-result .attempt-status", "200");
    let trigger = receiver.wait_for(1)[0].json();
    assert_eq!((&trigger["routing_key"], &trigger["event_action"]), (&json!("R0UTING-KEY-42"), &json!("trigger")));

    // Editing keeps the secret unless a new one is typed; it is never put back in the page.
    browser.click("#edit-channel");
    browser.wait_for_text("h1", "Edit pager");
    let secret = browser.find("[data-field=\"secret_config.routing_key\"]");
    assert_eq!(
        (secret.attribute("value"), secret.attribute("placeholder")),
        (String::new(), "kept when left empty".into())
    );
    browser.fill("name", "pager duty");
    browser.click("button[type=submit]");
    browser.wait_for_text("h1", "pager duty");
    assert!(!browser.find("main").text().contains("R0UTING"), "the secret is not shown");
    browser.click("#test-button");
    browser.wait_for_text("#test-result .attempt-status", "200");
    assert_eq!(receiver.wait_for(2)[1].json()["routing_key"], "R0UTING-KEY-42");
}

#[test]
fn an_object_s_history_and_the_audit_trail_are_read_in_the_browser() {
    let s = Setup::start("");
    let channel = s.channel(json!({ "name": "ops", "kind": "webhook", "url": "https://hooks.example.com/a" }));
    let id = channel["id"].as_str().unwrap();
    let spec = json!({ "name": "ops webhook", "kind": "webhook", "url": "https://hooks.example.com/a" });
    assert_eq!(s.server.call(Method::PUT, &format!("/v1/channels/{id}"), &s.key, Some(spec)).0, 200);
    let browser = Browser::signed_in(&s.server.base, &s.key, "Overview");
    browser.open(&format!("{}/#/channels/{id}", s.server.base));
    browser.wait_for_text("h1", "ops webhook");
    browser.click("#history");
    browser.wait_for_text("h1", &format!("History of {id}"));
    browser.wait_for_text("#audit-entries", "PUT /v1/channels/{id}");
    let rows = browser.script("return document.querySelectorAll('#audit-entries tbody tr').length");
    assert_eq!(rows, json!(2), "the creation and the rename");
    assert!(browser.find("#audit-entries").text().contains("ops → ops webhook"));
    browser.screenshot("audit");
    // The whole trail, filtered by kind.
    browser.click("nav a[href=\"#/audit\"]");
    browser.wait_for_text("h1", "Audit trail");
    browser.fill("resource", "keys");
    browser.click("main form button[type=submit]");
    browser.wait_for_text("main", "No changes match.");
}

#[test]
fn a_rule_is_tried_against_the_last_days_before_it_is_saved() {
    let server = Server::start();
    let (_, key) = server.tenant("acme");
    let now: jiff::Timestamp =
        server.call(Method::GET, "/v1/clock", ADMIN, None).1["now"].as_str().unwrap().parse().unwrap();
    let events: Vec<Value> = (0..3)
        .map(|i| {
            let at = now - jiff::SignedDuration::from_mins(10 * (3 - i));
            json!({ "id": format!("u{i}"), "customer_id": "c1", "type": "usage", "timestamp": at, "properties": {} })
        })
        .collect();
    let (status, body) = server.call(Method::POST, "/v1/events", &key, Some(json!({ "events": events })));
    assert_eq!(status, 200, "{body}");

    let browser = Browser::start();
    browser.open(&format!("{}/#/rules/new", server.base));
    browser.sign_in(&key);
    browser.wait_for_text("h1", "New rule");
    browser.fill("name", "Busy day");
    browser.fill("condition.metric.event_types", "usage");
    browser.fill("condition.value", "2");
    browser.click("#try-rule");
    browser.wait_for_text("#backtest-summary", "Would have sent 1 notification (1 alarm) over 3 events.");
    let bars = browser.script("return document.querySelectorAll('#backtest-timeline rect').length");
    assert_eq!(bars, json!(8), "a bar per day of the last 7 and today");
    let tall = browser.script(
        "return [...document.querySelectorAll('#backtest-timeline rect')].filter((r) => r.dataset.count > 0).length",
    );
    assert_eq!(tall, json!(1));
    browser.wait_for_text("#backtest table", "c1");

    browser.fill("last", "0");
    browser.click("#try-rule");
    browser.wait_for_text("[data-error-for=\"last\"]", "must be positive");
    let (_, rules) = server.call(Method::GET, "/v1/rules", &key, None);
    assert_eq!(rules["items"], json!([]), "trying saved nothing");
}
