//! Fair sharing: what each tenant may use (events per second with a burst, rules, channels),
//! from the configuration's defaults or the platform admin's own limits for a tenant; over a
//! rate, 429 with `Retry-After` naming the limit; over a count, 403 naming it. One tenant's
//! limits never touch another's.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{ADMIN, Server};

const LIMITS: &str = "[tenant_limits]\nevents_per_second = 50.0\nevents_burst = 100\nmax_rules = 2\nmax_channels = 1\n";

fn batch(server: &Server, key: &str, from: usize, count: usize) -> reqwest::blocking::Response {
    let now = server.call(Method::GET, "/v1/clock", ADMIN, None).1["now"].clone();
    let events: Vec<Value> = (from..from + count)
        .map(|i| json!({ "id": format!("e{i}"), "customer_id": "c1", "type": "usage", "timestamp": now }))
        .collect();
    server.request(Method::POST, "/v1/events", Some(key)).json(&json!({ "events": events })).send().unwrap()
}

fn rule(n: usize) -> Value {
    json!({ "name": format!("r{n}"), "scope": { "type": "each" },
            "condition": { "kind": "event_match", "matches": [{ "event_type": "usage" }] } })
}

#[test]
fn a_tenant_over_its_limits_is_refused_naming_them_and_the_others_go_on() {
    let server = Server::start_with_config(Some(LIMITS));
    let (acme_id, acme) = server.tenant("acme");
    let (_, globex) = server.tenant("globex");

    // The burst goes at once; then the rate: 429, when to come back, which limit.
    assert_eq!(batch(&server, &acme, 0, 100).status(), 200);
    let refused = batch(&server, &acme, 100, 10);
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert_eq!(retry_after, 1, "10 events at 50 a second");
    let body: Value = refused.json().unwrap();
    assert_eq!(
        (body["error"]["code"].as_str(), body["error"]["limit"].as_str()),
        (Some("rate_limited"), Some("events_per_second"))
    );
    assert_eq!(batch(&server, &globex, 0, 100).status(), 200, "another tenant's events are its own");
    // A batch larger than the burst can never go.
    let too_large: Value = batch(&server, &globex, 100, 101).json().unwrap();
    assert_eq!(too_large["error"]["limit"], "events_burst", "{too_large}");
    std::thread::sleep(std::time::Duration::from_millis(250));
    assert_eq!(batch(&server, &acme, 100, 10).status(), 200, "the rate refills the bucket");

    // Counts: the third rule and the second channel are refused, naming the limit.
    for n in 0..2 {
        assert_eq!(server.call(Method::POST, "/v1/rules", &acme, Some(rule(n))).0, 201);
    }
    let (status, body) = server.call(Method::POST, "/v1/rules", &acme, Some(rule(2)));
    assert_eq!((status, body["error"]["limit"].as_str()), (403, Some("max_rules")), "{body}");
    let channel = |name: &str| json!({ "name": name, "kind": "webhook", "url": "https://hooks.example.com/k" });
    assert_eq!(server.call(Method::POST, "/v1/channels", &acme, Some(channel("a"))).0, 201);
    let (status, body) = server.call(Method::POST, "/v1/channels", &acme, Some(channel("b")));
    assert_eq!((status, body["error"]["limit"].as_str()), (403, Some("max_channels")), "{body}");

    // The platform admin raises acme's own rule limit; a limit that lets nothing through is refused.
    let path = format!("/v1/tenants/{acme_id}");
    let (status, body) = server.call(Method::PATCH, &path, ADMIN, Some(json!({ "limits": { "max_rules": 0 } })));
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("limits.max_rules")), "{body}");
    let (status, tenant) = server.call(Method::PATCH, &path, ADMIN, Some(json!({ "limits": { "max_rules": 3 } })));
    assert_eq!((status, &tenant["limits"]), (200, &json!({ "max_rules": 3 })), "{tenant}");
    assert_eq!(server.call(Method::POST, "/v1/rules", &acme, Some(rule(2))).0, 201);
    assert_eq!(server.call(Method::POST, "/v1/rules", &globex, Some(rule(0))).0, 201);
}

/// Sends `events` (id, customer) now; answers the status and body.
fn events_of(server: &Server, key: &str, events: &[(&str, &str)]) -> (u16, Value) {
    let now = server.call(Method::GET, "/v1/clock", ADMIN, None).1["now"].clone();
    let events: Vec<Value> = events
        .iter()
        .map(|(id, customer)| json!({ "id": id, "customer_id": customer, "type": "usage", "timestamp": now }))
        .collect();
    server.call(Method::POST, "/v1/events", key, Some(json!({ "events": events })))
}

#[test]
fn events_and_customers_kept_and_plugin_calls_are_limited_and_counted_across_a_restart() {
    let config = "[tenant_limits]\nmax_events = 6\nmax_customers = 3\nplugin_calls_per_second = 2.0\n";
    let mut server = Server::start_with_config(Some(config));
    let (acme_id, acme) = server.tenant("acme");
    let (globex_id, globex) = server.tenant("globex");

    // Three customers; a batch naming a fourth is refused whole, one of known customers goes.
    assert_eq!(events_of(&server, &acme, &[("e1", "c1"), ("e2", "c2"), ("e3", "c3")]).0, 200);
    let (status, body) = events_of(&server, &acme, &[("e4", "c1"), ("e5", "c4")]);
    assert_eq!((status, body["error"]["limit"].as_str()), (403, Some("max_customers")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("`c4`"), "{body}");
    let (status, body) = server.call(Method::PUT, "/v1/customers/c9", &acme, Some(json!({ "name": "New" })));
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("limit_reached")), "{body}");
    assert_eq!(server.call(Method::PUT, "/v1/customers/c1", &acme, Some(json!({ "name": "Known" }))).0, 200);
    // A re-sent event is not kept twice: six events kept, then the seventh batch is refused.
    let (status, body) = events_of(&server, &acme, &[("e1", "c1"), ("e4", "c1"), ("e5", "c2"), ("e6", "c3")]);
    assert_eq!((status, body["accepted"].as_u64()), (200, Some(3)), "{body}");
    let (status, body) = events_of(&server, &acme, &[("e7", "c1")]);
    assert_eq!((status, body["error"]["limit"].as_str()), (403, Some("max_events")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("6 events"), "{body}");
    let (_, kept) = server.call(Method::GET, &format!("/v1/tenants/{acme_id}"), ADMIN, None);
    assert_eq!(kept["usage"], json!({ "events": 6, "customers": 3, "rules": 0, "channels": 0 }), "{kept}");
    // The counts are kept with the data: after a restart the limits hold as before.
    server.restart();
    assert_eq!(events_of(&server, &acme, &[("e7", "c1")]).0, 403);
    // Deleting a customer makes room for a new one.
    assert_eq!(server.call(Method::DELETE, "/v1/customers/c3", &acme, None).0, 204);
    assert_eq!(server.call(Method::PUT, "/v1/customers/c9", &acme, Some(json!({ "name": "New" }))).0, 201);
    // Another tenant's counts are its own.
    assert_eq!(events_of(&server, &globex, &[("e1", "x1"), ("e2", "x2"), ("e3", "x3")]).0, 200);

    // Plugin calls: two a second, then 429 naming the limit, for this tenant only.
    let wow = &crate::support::guests().week_over_week_drop;
    assert_eq!(server.upload(&acme, "wow", "condition", wow).0, 201);
    assert_eq!(server.upload(&globex, "wow", "condition", wow).0, 201);
    let input = crate::support::evaluation(json!({ "drop_percent": 20 }));
    for _ in 0..2 {
        assert_eq!(server.invoke(&acme, "wow", input.clone()).0, 422, "the plugin ran (and said what it lacks)");
    }
    let refused = server.request(Method::POST, "/v1/plugins/wow/invoke", Some(&acme)).json(&input).send().unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: Value = refused.json().unwrap();
    assert_eq!(
        (body["error"]["code"].as_str(), body["error"]["limit"].as_str()),
        (Some("rate_limited"), Some("plugin_calls_per_second")),
        "{body}"
    );
    assert_eq!(server.invoke(&globex, "wow", input.clone()).0, 422, "another tenant's calls are its own");
    // The platform admin raises globex's own limit; unset ones still follow the configuration.
    let path = format!("/v1/tenants/{globex_id}");
    let (status, tenant) =
        server.call(Method::PATCH, &path, ADMIN, Some(json!({ "limits": { "plugin_calls_per_second": 1000.0 } })));
    assert_eq!(status, 200, "{tenant}");
    for _ in 0..5 {
        assert_eq!(server.invoke(&globex, "wow", input.clone()).0, 422);
    }
    assert_eq!(events_of(&server, &globex, &[("e4", "x4")]).0, 403, "max_customers still applies");
}
