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
