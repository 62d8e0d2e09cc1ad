//! Channels written by tenants (the `channel` world): the plugin says what to send, Klaxon
//! sends it to the hosts the channel allows, and the plugin judges the answers.

use jiff::Timestamp;
use reqwest::Method;
use serde_json::{Value, json};

use crate::delivery::Setup;
use crate::receivers::{Receiver, Reply};
use crate::support::{guests, python_channel};

fn upload(s: &Setup, name: &str, component: &[u8]) {
    let (status, body) = s.server.upload(&s.key, name, "channel", component);
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["version"]["wit_version"], "0.3.0", "{body}");
}

fn pagerduty(s: &Setup) {
    upload(s, "pagerduty", &guests().pagerduty);
}

/// A PagerDuty channel whose Events API is `receiver`, with its routing key a secret.
fn channel(s: &Setup, receiver: &Receiver, allow: &str) -> (u16, Value) {
    s.server.call(
        Method::POST,
        "/v1/channels",
        &s.key,
        Some(json!({
            "name": "pager", "kind": "plugin", "plugin": "pagerduty", "allow_hosts": [allow],
            "config": { "url": receiver.url }, "secret_config": { "routing_key": "R0UTING-KEY-42" },
        })),
    )
}

/// A plugin channel named after its plugin, allowed to reach the local receivers.
fn plugin_channel(s: &Setup, plugin: &str, config: Value, secret_config: Value) -> Value {
    s.channel(json!({ "name": plugin, "kind": "plugin", "plugin": plugin, "allow_hosts": ["127.0.0.1"],
                      "config": config, "secret_config": secret_config }))
}

/// "Heavy usage": a customer's hours over 10 in a day, with a resolved notice when the day ends.
fn heavy_usage(s: &Setup, channel: &Value, severity: &str) -> String {
    let (status, body) = s.server.call(
        Method::POST,
        "/v1/rules",
        &s.key,
        Some(json!({
            "name": "Heavy usage", "scope": { "type": "each" }, "channels": [channel["id"]], "notify_on_resolve": true,
            "severity": severity,
            "condition": { "kind": "threshold", "window": { "calendar": "day" }, "operator": ">", "value": 10,
                           "metric": { "event_types": ["usage"], "aggregate": "sum", "property": "hours" } },
        })),
    );
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_string()
}

/// Sends 12 hours of usage by acme and answers the alarm's notification id.
fn use_heavily(s: &Setup) -> String {
    let now = s.server.call(Method::GET, "/v1/clock", crate::support::ADMIN, None).1["now"].clone();
    let event =
        json!({ "id": "u1", "customer_id": "acme", "type": "usage", "timestamp": now, "properties": { "hours": 12 } });
    let (status, body) = s.server.call(Method::POST, "/v1/events", &s.key, Some(json!({ "events": [event] })));
    assert_eq!((status, &body["notifications"]), (200, &json!(1)), "{body}");
    let (_, page) = s.server.call(Method::GET, "/v1/notifications?limit=1", &s.key, None);
    page["items"][0]["id"].as_str().unwrap().to_string()
}

/// The first attempt of `notification`'s delivery was told to retry: after how many seconds.
fn retried_after(s: &Setup, notification: &str) -> i64 {
    let first = s.wait_attempts(notification, 1);
    let attempt = &first["deliveries"][0]["attempts"][0];
    assert_eq!(attempt["verdict"], "retry", "{attempt}");
    let at = |field: &str| attempt[field].as_str().unwrap().parse::<Timestamp>().unwrap();
    at("retry_at").duration_since(at("at")).as_secs()
}

/// `secret` is in no attempt of `notification`, no line of `plugin`'s log and no payload shown.
fn never_shown(s: &Setup, notification: &str, plugin: &str, secret: &str) {
    let (_, attempts) = s.server.call(Method::GET, &format!("/v1/notifications/{notification}/attempts"), &s.key, None);
    let (_, logs) = s.server.call(Method::GET, &format!("/v1/plugins/{plugin}/logs"), &s.key, None);
    let (_, shown) = s.server.call(Method::GET, &format!("/v1/notifications/{notification}"), &s.key, None);
    for text in [attempts.to_string(), logs.to_string(), shown.to_string()] {
        assert!(!text.contains(secret), "{text}");
    }
}

/// What `plugin` makes of an answer, through the dry run.
fn classify(s: &Setup, plugin: &str, config: Value, status: u16, body: Value) -> Value {
    let (code, answer) = s.server.call(
        Method::POST,
        &format!("/v1/plugins/{plugin}/invoke"),
        &s.key,
        Some(json!({ "function": "classify", "config": config,
                     "response": { "status": status, "body": body.to_string() } })),
    );
    assert_eq!(code, 200, "{answer}");
    answer["output"].clone()
}

#[test]
fn a_pagerduty_channel_triggers_and_resolves_one_incident_per_alert() {
    let s = Setup::start("");
    pagerduty(&s);
    let receiver = Receiver::start();
    let (status, pager) = channel(&s, &receiver, "127.0.0.1");
    assert_eq!(status, 201, "{pager}");
    assert!(!pager.to_string().contains("R0UTING"), "the secret is never shown: {pager}");
    heavy_usage(&s, &pager, "critical");
    // PagerDuty is busy at first: the plugin asks to try again, and the next attempt lands.
    receiver.script(vec![
        Reply::json(429, json!({ "status": "throttled" })),
        Reply::json(202, json!({ "status": "success" })),
    ]);
    let alarm = use_heavily(&s);
    assert!((4..=6).contains(&retried_after(&s, &alarm)), "the host's backoff: 5 s, give or take a fifth");
    s.clock(&s.at("PT1H"));
    s.wait_status(&alarm, "delivered");
    let sent = receiver.wait_for(2);
    let trigger = sent[1].json();
    assert_eq!(trigger["event_action"], "trigger", "{trigger}");
    assert_eq!(trigger["routing_key"], "R0UTING-KEY-42");
    assert_eq!(trigger["payload"]["severity"], "critical");
    assert_eq!(trigger["payload"]["summary"], "Heavy usage for acme");
    let dedup_key = trigger["dedup_key"].as_str().unwrap().to_string();
    assert_eq!(sent[0].json()["dedup_key"], dedup_key, "the retry sends the same event");

    // The day ends, the alert resolves, and so does PagerDuty's incident.
    receiver.script(vec![Reply::json(202, json!({ "status": "success" }))]);
    s.clock(&s.at("PT24H"));
    let resolve = receiver.wait_for(3)[2].json();
    assert_eq!(resolve, json!({ "routing_key": "R0UTING-KEY-42", "event_action": "resolve", "dedup_key": dedup_key }));

    let (_, notification) = s.server.call(Method::GET, &format!("/v1/notifications/{alarm}"), &s.key, None);
    let request = &notification["deliveries"][0]["payload"]["requests"][0];
    assert!(request["body"].as_str().unwrap().contains("[redacted]"), "{notification}");
    never_shown(&s, &alarm, "pagerduty", "R0UTING-KEY-42");
}

#[test]
fn an_opsgenie_channel_opens_and_closes_one_alert_per_alert() {
    let s = Setup::start("");
    upload(&s, "opsgenie", &guests().opsgenie);
    let receiver = Receiver::start();
    let config = json!({ "url": receiver.url, "teams": ["billing-ops"], "tags": ["klaxon"] });
    let secret = "0PSGENIE-KEY-7f3a";
    let channel = plugin_channel(&s, "opsgenie", config.clone(), json!({ "api_key": secret }));
    let rule = heavy_usage(&s, &channel, "warning");
    receiver.script(vec![Reply::json(202, json!({ "result": "Request will be processed", "requestId": "r1" }))]);
    let alarm = use_heavily(&s);
    s.wait_status(&alarm, "delivered");
    let create = &receiver.wait_for(1)[0];
    assert_eq!(create.path, "/hook/v2/alerts");
    assert_eq!(create.header("authorization"), format!("GenieKey {secret}"));
    let alias = format!("klaxon/{rule}/acme");
    let alert = create.json();
    assert_eq!(alert["message"], "Heavy usage for acme", "{alert}");
    assert_eq!(alert["alias"], alias);
    assert_eq!(alert["priority"], "P3");
    assert_eq!(alert["entity"], "acme");
    assert_eq!(alert["responders"], json!([{ "type": "team", "name": "billing-ops" }]));
    assert_eq!(alert["tags"], json!(["klaxon"]));
    assert_eq!((&alert["details"]["value"], &alert["details"]["threshold"]), (&json!("12"), &json!("10")));

    // The day ends and the same alert is closed, found by its alias.
    receiver.script(vec![Reply::json(202, json!({ "result": "Request will be processed", "requestId": "r2" }))]);
    s.clock(&s.at("PT24H"));
    let close = &receiver.wait_for(2)[1];
    assert_eq!(close.path, format!("/hook/v2/alerts/klaxon%2F{rule}%2Facme/close?identifierType=alias"));
    assert_eq!(close.header("authorization"), format!("GenieKey {secret}"));
    assert_eq!(close.json()["note"], "Resolved in Klaxon");
    never_shown(&s, &alarm, "opsgenie", secret);

    // Opsgenie's refusals keep its message; its throttling is tried again.
    let config = json!({ "api_key": secret });
    let refused = classify(&s, "opsgenie", config.clone(), 422, json!({ "message": "Message can not be empty." }));
    assert_eq!(refused["reason"], "Opsgenie refused the request (422): Message can not be empty.", "{refused}");
    assert_eq!(classify(&s, "opsgenie", config, 429, json!({}))["outcome"], "retry");
    // A team without a name is refused when the channel is saved.
    let (status, body) = s.server.call(
        Method::POST,
        "/v1/channels",
        &s.key,
        Some(json!({ "name": "ops", "kind": "plugin", "plugin": "opsgenie", "allow_hosts": ["127.0.0.1"],
                     "config": { "url": receiver.url, "teams": [" "] }, "secret_config": { "api_key": secret } })),
    );
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("config")), "{body}");
}

#[test]
fn a_discord_channel_posts_an_embed_and_waits_out_its_rate_limit() {
    let s = Setup::start("");
    upload(&s, "discord", &guests().discord);
    let receiver = Receiver::start();
    let webhook = format!("{}/api/webhooks/1234/D1SCORD-T0KEN-xyz", receiver.url);
    let channel = plugin_channel(&s, "discord", json!({ "username": "Klaxon" }), json!({ "webhook_url": webhook }));
    heavy_usage(&s, &channel, "critical");
    // Discord's rate limit gives the wait in the body, with a fraction: the next attempt keeps to it.
    receiver.script(vec![
        Reply::json(429, json!({ "message": "You are being rate limited.", "retry_after": 30.2, "global": false })),
        Reply::json(200, json!({ "id": "1" })),
    ]);
    let alarm = use_heavily(&s);
    assert_eq!(retried_after(&s, &alarm), 31);
    s.clock(&s.at("PT1H"));
    s.wait_status(&alarm, "delivered");
    let posted = &receiver.wait_for(2)[1];
    assert_eq!(posted.path, "/hook/api/webhooks/1234/D1SCORD-T0KEN-xyz?wait=true");
    let message = posted.json();
    assert_eq!(message["username"], "Klaxon");
    assert_eq!(message["allowed_mentions"], json!({ "parse": [] }), "nobody is pinged by a customer's name");
    let embed = &message["embeds"][0];
    assert_eq!(embed["title"], "Heavy usage for acme", "{embed}");
    assert_eq!(embed["color"], 0xD7_3A_49);
    assert_eq!(embed["url"].as_str().map(|u| u.ends_with(&alarm)), Some(true), "{embed}");
    let fields: Vec<(&str, &str)> = embed["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap(), f["value"].as_str().unwrap()))
        .collect();
    assert_eq!(fields, [("Value", "12"), ("Threshold", "10"), ("Severity", "critical"), ("Customer", "acme")]);

    s.clock(&s.at("PT24H"));
    let resolved = receiver.wait_for(3)[2].json();
    assert_eq!(resolved["embeds"][0]["title"], "Resolved: Heavy usage for acme");
    assert_eq!(resolved["embeds"][0]["color"], 0x2E_A0_43);
    never_shown(&s, &alarm, "discord", "D1SCORD-T0KEN-xyz");

    // A webhook deleted on Discord's side will not come back.
    let gone = classify(&s, "discord", json!({ "webhook_url": webhook }), 404, json!({ "message": "Unknown Webhook" }));
    assert_eq!(gone["outcome"], "failed", "{gone}");
}

#[test]
fn a_telegram_channel_written_in_python_sends_and_follows_telegram_s_answers() {
    let s = Setup::start("");
    upload(&s, "telegram", python_channel());
    let receiver = Receiver::start();
    let (status, body) =
        s.server.call(Method::PUT, "/v1/customers/acme", &s.key, Some(json!({ "name": "Acme & <Sons>" })));
    assert_eq!(status, 201, "{body}");
    let token = "123456:T3LEGRAM-secret";
    let config = json!({ "chat_id": "-100777", "url": receiver.url });
    let channel = plugin_channel(&s, "telegram", config, json!({ "bot_token": token }));
    heavy_usage(&s, &channel, "info");
    receiver.script(vec![
        Reply::json(
            429,
            json!({ "ok": false, "error_code": 429, "description": "Too Many Requests: retry after 40",
                    "parameters": { "retry_after": 40 } }),
        ),
        Reply::json(200, json!({ "ok": true, "result": { "message_id": 7 } })),
    ]);
    let alarm = use_heavily(&s);
    assert_eq!(retried_after(&s, &alarm), 40);
    s.clock(&s.at("PT1H"));
    s.wait_status(&alarm, "delivered");
    let sent = &receiver.wait_for(2)[1];
    assert_eq!(sent.path, format!("/hook/bot{token}/sendMessage"));
    let message = sent.json();
    assert_eq!((&message["chat_id"], &message["parse_mode"]), (&json!("-100777"), &json!("HTML")), "{message}");
    assert_eq!(message["disable_notification"], true, "an info notice arrives without a sound");
    let text = message["text"].as_str().unwrap();
    assert!(text.contains("<b>Heavy usage for Acme &amp; &lt;Sons&gt;</b>"), "{text}");
    assert!(text.contains("Value 12 · Threshold 10"), "{text}");
    never_shown(&s, &alarm, "telegram", "T3LEGRAM-secret");

    // A group that became a supergroup: retrying cannot help, and the reason says what to change.
    let config = json!({ "bot_token": token, "chat_id": "-100777" });
    let moved = classify(
        &s,
        "telegram",
        config,
        400,
        json!({ "ok": false, "error_code": 400, "description": "Bad Request: group chat was upgraded to a supergroup chat",
                "parameters": { "migrate_to_chat_id": -1_001_234 } }),
    );
    assert_eq!(moved["outcome"], "failed", "{moved}");
    assert!(moved["reason"].as_str().unwrap().ends_with("(set chat_id to -1001234)"), "{moved}");
    // A token that is not a bot's is refused when the channel is saved, naming the config.
    let (status, body) = s.server.call(
        Method::POST,
        "/v1/channels",
        &s.key,
        Some(json!({ "name": "tg", "kind": "plugin", "plugin": "telegram", "allow_hosts": ["127.0.0.1"],
                     "config": { "chat_id": 1 }, "secret_config": { "bot_token": "nope" } })),
    );
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("config")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("bot_token"), "{body}");
}

#[test]
fn a_channel_plugin_asking_for_a_host_not_allowed_is_refused() {
    let s = Setup::start("");
    pagerduty(&s);
    let receiver = Receiver::start();
    // The plugin would send to 127.0.0.1; the channel allows another host.
    let (status, body) = channel(&s, &receiver, "events.pagerduty.com");
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("allow_hosts")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("127.0.0.1"), "{body}");
    // Hosts must be names, and pass the deployment's address policy.
    for (allow, field) in [("https://127.0.0.1", "allow_hosts[0]"), ("10.1.2.3", "allow_hosts[0]")] {
        let (status, body) = channel(&s, &receiver, allow);
        assert_eq!((status, body["error"]["field"].as_str()), (400, Some(field)), "{allow}: {body}");
    }
    // A config the plugin refuses names `config`.
    let (status, body) = s.server.call(
        Method::POST,
        "/v1/channels",
        &s.key,
        Some(json!({ "name": "pager", "kind": "plugin", "plugin": "pagerduty", "allow_hosts": ["127.0.0.1"],
                     "config": { "url": receiver.url, "routing_key": " " } })),
    );
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("config")), "{body}");
    assert!(receiver.requests().is_empty());

    // A plugin that asks for another host only for some notifications passes the check at save
    // (on the sample) and is stopped at send: that attempt fails, naming the host.
    upload(&s, "hostile", &guests().hostile_channel);
    let channel = s.channel(json!({ "name": "odd", "kind": "plugin", "plugin": "hostile",
                                    "allow_hosts": ["127.0.0.1"], "config": { "url": receiver.url } }));
    s.rule(&[&channel]);
    let elsewhere = s.signup("elsewhere");
    let failed = s.wait_status(&elsewhere, "failed");
    let error = failed["deliveries"][0]["attempts"][0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("elsewhere.example"), "{failed}");
    let fine = s.signup("fine");
    s.wait_status(&fine, "delivered");
    assert_eq!(receiver.requests().len(), 1, "only the allowed request was made");
}

#[test]
fn a_channel_plugin_that_traps_or_loops_fails_that_attempt_only() {
    let s = Setup::start("");
    let (status, body) = s.server.upload(&s.key, "hostile", "channel", &guests().hostile_channel);
    assert_eq!(status, 201, "{body}");
    let receiver = Receiver::start();
    let channel = s
        .channel(json!({ "name": "odd", "kind": "plugin", "plugin": "hostile", "allow_hosts": ["127.0.0.1"],
                                    "config": { "url": receiver.url } }));
    s.rule(&[&channel]);
    let trapped = s.signup("trap");
    let looped = s.signup("loop");
    let fine = s.signup("fine");
    s.wait_status(&fine, "delivered");
    assert_eq!(receiver.wait_for(1)[0].json(), json!({ "customer": "fine" }));
    // A loop is stopped by whichever limit it reaches first: its time or its fuel.
    for (id, words) in [(trapped, &["trapped"][..]), (looped, &["time limit", "ran out of fuel"][..])] {
        let failed = s.wait_status(&id, "failed");
        let error = failed["deliveries"][0]["attempts"][0]["error"].as_str().unwrap_or_default().to_string();
        assert!(words.iter().any(|w| error.contains(w)), "{id}: {failed}");
    }
    // The server goes on: another customer's notice is delivered after them.
    let after = s.signup("after");
    s.wait_status(&after, "delivered");
    assert_eq!(receiver.wait_for(2)[1].json(), json!({ "customer": "after" }));
}
