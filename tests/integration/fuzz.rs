//! Fuzzing the parsers of untrusted input through the real server: event batches, rule and
//! channel specs with their filters, Handlebars templates checked at save and rendered on a
//! sample, durations and time zones, values crossing into and out of plugins (WIT), and console
//! sessions with their CSRF tokens. Each input is a valid request with parts dropped, replaced
//! by arbitrary JSON or added, or raw text near JSON; whatever it is, the answer is a success
//! or a 4xx whose JSON body says what is wrong, never a 5xx, and the server stays up.
//!
//! CI runs each target for proptest's default 256 cases; for longer, set `PROPTEST_CASES`
//! (`PROPTEST_CASES=20000 cargo test --release -p klaxon --test integration fuzz::`). Inputs
//! that failed are kept in a `proptest-regressions` folder beside this file (commit it) and
//! tried first every run; the backup file's reader has its own property in `backup.rs`.

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};
use reqwest::Method;
use serde_json::{Value, json};

use crate::delivery::Setup;
use crate::support::{ADMIN, Server, guests};

/// Runs `test` on inputs from `strategy`; a failure is shrunk, kept for the next runs and
/// reported.
fn run<S: Strategy>(strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let config = Config {
        source_file: Some(file!()),
        failure_persistence: Some(Box::new(FileFailurePersistence::SourceParallel("proptest-regressions"))),
        ..Config::default()
    };
    if let Err(failure) = TestRunner::new(config).run(&strategy, test) {
        panic!("{failure}");
    }
}

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("JSON numbers are finite", |f| f.is_finite()).prop_map(Value::from),
        "\\PC{0,24}".prop_map(Value::from),
        prop::sample::select(vec!["", "=", ">", "in", "exists", "15m", "-7d", "2030-01-01T00:00:00Z", "{{", "}}"])
            .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,10}", inner, 0..6)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// A change to a JSON document: at the `at`-th place (counted over every place in it, modulo
/// their number), remove what is there, replace it, or add a field beside it.
#[derive(Debug, Clone)]
enum Change {
    Remove(usize),
    Replace(usize, Value),
    Add(usize, String, Value),
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        any::<usize>().prop_map(Change::Remove),
        (any::<usize>(), any_json()).prop_map(|(at, value)| Change::Replace(at, value)),
        (any::<usize>(), "[a-z_]{1,10}", any_json()).prop_map(|(at, name, value)| Change::Add(at, name, value)),
    ]
}

/// Every place in `value` (a path of keys and indexes), the root first.
fn places(value: &Value, path: Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(path.clone());
    match value {
        Value::Object(fields) => {
            for (name, inner) in fields {
                places(inner, [path.clone(), vec![name.clone()]].concat(), out);
            }
        }
        Value::Array(items) => {
            for (i, inner) in items.iter().enumerate() {
                places(inner, [path.clone(), vec![i.to_string()]].concat(), out);
            }
        }
        _ => {}
    }
}

fn at_path<'a>(value: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    path.iter().try_fold(value, |value, step| match value {
        Value::Object(fields) => fields.get_mut(step),
        Value::Array(items) => step.parse::<usize>().ok().and_then(|i| items.get_mut(i)),
        _ => None,
    })
}

fn apply(mut document: Value, changes: &[Change]) -> Value {
    for change in changes {
        let mut all = Vec::new();
        places(&document, Vec::new(), &mut all);
        let pick = |at: usize| all[at % all.len()].clone();
        match change {
            Change::Remove(at) => {
                let path = pick(*at);
                if let Some((last, parent)) = path.split_last()
                    && let Some(parent) = at_path(&mut document, parent)
                {
                    match parent {
                        Value::Object(fields) => drop(fields.remove(last)),
                        Value::Array(items) => {
                            drop(last.parse::<usize>().ok().filter(|i| *i < items.len()).map(|i| items.remove(i)))
                        }
                        _ => {}
                    }
                }
            }
            Change::Replace(at, value) => {
                if let Some(place) = at_path(&mut document, &pick(*at)) {
                    *place = value.clone();
                }
            }
            Change::Add(at, name, value) => {
                if let Some(Value::Object(fields)) = at_path(&mut document, &pick(*at)) {
                    fields.insert(name.clone(), value.clone());
                }
            }
        }
    }
    document
}

/// `example` with up to four changes.
fn mutated(example: Value) -> impl Strategy<Value = Value> {
    prop::collection::vec(change(), 0..4).prop_map(move |changes| apply(example.clone(), &changes))
}

/// A body to send: a changed example as JSON, or its text with a few bytes changed.
#[derive(Debug, Clone)]
enum Body {
    Json(Value),
    Text(Vec<u8>),
}

fn body(example: Value) -> impl Strategy<Value = Body> {
    let text = serde_json::to_vec(&example).unwrap();
    prop_oneof![
        4 => mutated(example).prop_map(Body::Json),
        1 => prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4).prop_map(move |edits| {
            let mut text = text.clone();
            for (at, byte) in edits {
                let i = at.index(text.len());
                text[i] = byte;
            }
            Body::Text(text)
        }),
    ]
}

/// Sends `body` and checks the answer: a success, or a 4xx with an error that says what.
fn sends(server: &Server, key: &str, method: Method, path: &str, body: &Body) -> Result<(u16, Value), TestCaseError> {
    let request = server.request(method, path, Some(key)).header("content-type", "application/json");
    let bytes = match body {
        Body::Json(value) => serde_json::to_vec(value).unwrap(),
        Body::Text(text) => text.clone(),
    };
    let response = request.body(bytes).send().map_err(|e| TestCaseError::fail(format!("no answer: {e}")))?;
    let status = response.status().as_u16();
    let answer: Value = response.json().unwrap_or(Value::Null);
    prop_assert!(status < 500, "{path}: {status} {answer}");
    if status >= 400 {
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        prop_assert!(!message.is_empty(), "{path}: {status} without a message: {answer}");
    }
    Ok((status, answer))
}

fn still_up(server: &Server) {
    let (status, _) = server.call(Method::GET, "/healthz", ADMIN, None);
    assert_eq!(status, 200, "the server answers after the run");
}

#[test]
fn event_batches() {
    let s = Setup::start("");
    let now = s.server.call(Method::GET, "/v1/clock", ADMIN, None).1["now"].clone();
    let example = json!({ "events": [
        { "id": "e1", "customer_id": "acme", "type": "usage", "timestamp": now,
          "properties": { "hours": 3, "region": "eu", "tags": ["a"] } },
        { "id": "e2", "customer_id": "beta", "type": "signup", "timestamp": now },
    ] });
    run(body(example), |body| sends(&s.server, &s.key, Method::POST, "/v1/events", &body).map(drop));
    still_up(&s.server);
}

#[test]
fn rules_with_their_filters_windows_and_durations() {
    let s = Setup::start("");
    let examples = vec![
        json!({ "name": "Heavy", "scope": { "type": "group", "filters": [{ "field": "plan", "op": "in", "value": ["pro"] }] },
                "frequency": "1h", "for": "5m", "timezone": "Europe/Berlin",
                "condition": { "kind": "threshold", "window": { "rolling": "7d" }, "operator": ">=", "value": 1000,
                               "metric": { "event_types": ["usage"], "aggregate": "sum", "property": "hours",
                                           "filters": [{ "field": "event.region", "op": "=", "value": "eu" }] } } }),
        json!({ "name": "Big signups", "scope": { "type": "each" },
                "condition": { "kind": "event_match", "matches": [
                    { "event_type": "signup", "filters": [{ "field": "customer.seats", "op": ">", "value": 99 }] },
                    { "event_type": "upgrade", "filters": [{ "field": "event.plan", "op": "exists" }] } ] } }),
        json!({ "name": "Renewal", "scope": { "type": "each" },
                "condition": { "kind": "offset", "field": "contract_end", "offset": "-7d" } }),
        json!({ "name": "Run rate", "scope": { "type": "each" },
                "condition": { "kind": "forecast", "method": "holt", "window": { "calendar": "month" }, "value": 1e6,
                               "before": { "field": "contract_end" }, "lookback": "7d",
                               "metric": { "event_types": ["api.call"], "aggregate": "count" } } }),
    ];
    run(prop::sample::select(examples).prop_flat_map(body), |body| {
        sends(&s.server, &s.key, Method::POST, "/v1/rules", &body).map(drop)
    });
    still_up(&s.server);
}

/// Handlebars snippets, whole and broken, for templates.
fn template() -> impl Strategy<Value = String> {
    let part = prop::sample::select(vec![
        "{{rule.name}}",
        "{{value}}",
        "{{customer.fields.plan}}",
        "{{#if value}}",
        "{{/if}}",
        "{{#each labels}}",
        "{{/each}}",
        "{{else}}",
        "{{json this}}",
        "{{> partial}}",
        "{{{raw}}}",
        "{{!comment}}",
        "{{",
        "}}",
        "{{#",
        "{{lookup rule \"name\"}}",
        "{{nope.nothing}}",
        "\"",
        "\\",
        "{",
        "}",
        "text",
        "\u{0}",
        "ü",
    ]);
    prop::collection::vec(part, 0..8).prop_map(|parts| parts.concat())
}

#[test]
fn channels_and_their_templates() {
    let s = Setup::start("");
    let examples = vec![
        json!({ "name": "hook", "kind": "webhook", "url": "https://hooks.example.com/k",
                "headers": { "X-Team": "{{rule.category}}" }, "body": "{\"rule\": \"{{rule.name}}\"}" }),
        json!({ "name": "mail", "kind": "email", "to": ["ops@example.com"], "subject": "{{rule.name}}", "text": "{{value}}" }),
        json!({ "name": "slack", "kind": "slack", "url": "https://hooks.slack.com/services/T/B/x",
                "quiet_hours": { "start": "22:00", "end": "07:00", "timezone": "America/New_York" } }),
    ];
    let channel = prop::sample::select(examples).prop_flat_map(body);
    let with_template = (prop::sample::select(vec!["body", "subject", "text"]), template(), any::<u8>());
    run((channel, with_template), |(body, (field, text, choice))| {
        let body = match body {
            // Half the JSON bodies carry a generated template where one goes.
            Body::Json(Value::Object(mut spec)) if choice % 2 == 0 => {
                spec.insert(field.to_string(), Value::from(text));
                Body::Json(Value::Object(spec))
            }
            other => other,
        };
        sends(&s.server, &s.key, Method::POST, "/v1/channels/check", &body)?;
        sends(&s.server, &s.key, Method::POST, "/v1/channels", &body).map(drop)
    });
    still_up(&s.server);
}

#[test]
fn time_intervals_and_silences() {
    let s = Setup::start("");
    let zones = prop::sample::select(vec!["UTC", "Europe/Berlin", "America/New_York", "Mars/Olympus", "", "+01:00"]);
    let interval = (zones, "[0-9:\\-]{0,13}", -40i64..40).prop_flat_map(|(zone, times, day)| {
        body(json!({ "name": "window", "timezone": zone,
                     "ranges": [{ "weekdays": ["sunday", "monday:friday"], "times": [times, "02:00-04:00"],
                                  "days_of_month": [day, "1:7"], "months": ["january", "3"], "years": ["2030"] }] }))
    });
    run(interval, |body| sends(&s.server, &s.key, Method::POST, "/v1/time-intervals", &body).map(drop));
    let silence = body(json!({ "matchers": [{ "field": "rule.id", "op": "=", "value": "r" },
                                            { "field": "customer.plan", "op": "in", "value": ["a", "b"] }],
                               "starts_at": "2030-01-01T00:00:00Z", "ends_at": "2030-01-02T00:00:00Z",
                               "during": ["window"], "comment": "maintenance" }));
    run(silence, |body| sends(&s.server, &s.key, Method::POST, "/v1/silences", &body).map(drop));
    still_up(&s.server);
}

#[test]
fn values_crossing_into_and_out_of_plugins() {
    let s = Setup::start("");
    for (name, kind, component) in [
        ("zscore", "condition", &guests().zscore_anomaly),
        ("slack", "template", &guests().slack_blocks),
        ("pager", "channel", &guests().pagerduty),
    ] {
        assert_eq!(s.server.upload(&s.key, name, kind, component).0, 201);
    }
    let context = json!({
        "tenant": "acme",
        "rule": { "id": "rule_1", "name": "Usage", "severity": "critical", "category": "billing" },
        "customer": { "id": "cus_42", "name": "Globex", "fields": { "tier": "Enterprise", "seats": 120, "tags": ["a"] } },
        "state": { "previous": "ok", "current": "in_alarm" },
        "value": 1250.0, "threshold": 1000.0,
        "window": { "start": "2026-11-16T00:00:00Z", "end": "2026-11-23T00:00:00Z" },
        "event": { "id": "e1", "customer_id": "cus_42", "type": "usage", "timestamp": "2026-11-23T09:00:00Z",
                   "properties": { "hours": 3, "nested": { "a": [1, 2] } } },
        "notification": { "id": "ntf_1", "timestamp": "2026-11-23T10:00:00Z", "url": "https://k.example/n/ntf_1" },
    });
    let evaluation = json!({
        "rule": { "id": "rule_1", "name": "Usage" }, "config": { "threshold": 3.0, "min_samples": 5 },
        "customer": context["customer"], "event": context["event"],
        "value": { "current": 12.5, "previous": 10.0 }, "window": context["window"],
    });
    let calls = vec![
        ("zscore", evaluation),
        ("slack", context.clone()),
        ("pager", json!({ "function": "requests", "context": context, "config": { "routing_key": "R" } })),
        (
            "pager",
            json!({ "function": "classify", "index": 0, "config": { "routing_key": "R" },
                          "response": { "status": 429, "headers": [["retry-after", "3"]], "body": "{}" } }),
        ),
    ];
    let invoke = prop::sample::select(calls).prop_flat_map(|(plugin, example)| (Just(plugin), body(example)));
    run(invoke, |(plugin, body)| {
        let (status, answer) = sends(&s.server, &s.key, Method::POST, &format!("/v1/plugins/{plugin}/invoke"), &body)?;
        prop_assert!(status != 404 || answer["error"]["code"] != "not_found", "{answer}");
        Ok(())
    });
    still_up(&s.server);
}

#[test]
fn console_sessions_and_their_csrf_tokens() {
    let s = Setup::start("");
    let signed_in =
        s.server.request(Method::POST, "/console/session", None).json(&json!({ "token": s.key })).send().unwrap();
    let cookie = signed_in.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let csrf = signed_in.json::<Value>().unwrap()["csrf"].as_str().unwrap().to_string();
    let header = "[ -~]{0,80}";
    let (real_cookie, real_csrf) = (cookie.clone(), csrf.clone());
    let cookies = prop_oneof![Just(cookie.clone()), header, header.prop_map(move |h| format!("{cookie}{h}"))];
    let tokens = prop_oneof![Just(csrf), header];
    let case = (cookies, tokens, prop::option::of(header), any_json());
    run(case, |(cookie, csrf, authorization, token)| {
        let mut request = s.server.request(Method::POST, "/v1/silences", None).header("cookie", &cookie);
        request = request.header("x-csrf-token", &csrf);
        if let Some(authorization) = &authorization {
            request = request.header("authorization", authorization);
        }
        let body =
            json!({ "matchers": [{ "field": "rule.id", "op": "=", "value": "r" }], "ends_at": "2031-01-01T00:00:00Z" });
        let response = request.json(&body).send().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let status = response.status().as_u16();
        prop_assert!(status < 500, "{status}");
        // Only the session itself, with its own CSRF token, changes anything.
        let own = authorization.is_none() && cookie.starts_with(&real_cookie) && csrf == real_csrf;
        prop_assert!(status != 201 || own, "{status} for {cookie:?} {csrf:?} {authorization:?}");
        let signing_in = s.server.request(Method::POST, "/console/session", None).json(&json!({ "token": token }));
        let status = signing_in.send().map_err(|e| TestCaseError::fail(e.to_string()))?.status().as_u16();
        prop_assert!(status < 500, "sign-in: {status}");
        Ok(())
    });
    still_up(&s.server);
}
