//! Health, readiness, metrics and the OpenAPI description.

use reqwest::Method;
use serde_json::Value;

use serde_json::json;

use crate::support::{ADMIN, Server, evaluation, guests, read};

#[test]
fn service_routes_answer_without_a_key() {
    let server = Server::start();
    assert_eq!(read(server.request(Method::GET, "/healthz", None)).0, 200);
    let (status, body) = read(server.request(Method::GET, "/readyz", None));
    assert_eq!((status, body["status"].as_str()), (200, Some("ready")));

    let response = server.request(Method::GET, "/metrics", None).send().unwrap();
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = response.text().unwrap();
    assert!(text.contains("# TYPE klaxon_http_responses_total counter"), "{text}");
    assert!(text.contains("klaxon_http_responses_total{status=\"200\"}"), "{text}");

    let (status, error) = read(server.request(Method::GET, "/v1/nothing-here", None));
    assert_eq!((status, error["error"]["code"].as_str()), (404, Some("not_found")));
}

#[test]
fn metrics_count_what_the_store_writes() {
    let server = Server::start();
    let (_, key) = server.tenant("acme");
    let (writes, bytes) =
        (r#"klaxon_store_writes_total{tree="events"}"#, r#"klaxon_store_written_bytes_total{tree="events"}"#);
    assert_eq!(server.metric(writes), 0.0);
    let timestamp = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1);
    let event = json!({"id": "evt_1", "type": "signup", "customer_id": "cus_1", "timestamp": timestamp});
    for accepted in [1, 0] {
        let (status, body) = server.call(Method::POST, "/v1/events", &key, Some(json!({ "events": [event] })));
        assert_eq!((status, body["accepted"].as_u64()), (200, Some(accepted)), "{body}");
    }
    // The second is a duplicate: nothing written for it.
    assert_eq!(server.metric(writes), 1.0);
    assert!(server.metric(bytes) > "acme/evt_1".len() as f64);
    assert_eq!(server.metric(r#"klaxon_store_writes_total{tree="events_by_time"}"#), 1.0);
}

#[test]
fn the_openapi_description_lists_every_route() {
    let server = Server::start();
    let (status, spec) = read(server.request(Method::GET, "/openapi.json", None));
    assert_eq!(status, 200);
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    let paths = spec["paths"].as_object().unwrap();
    let expected: [(&str, &[&str]); 70] = [
        ("/healthz", &["get"]),
        ("/console/session", &["get", "post", "delete"]),
        ("/readyz", &["get"]),
        ("/metrics", &["get"]),
        ("/openapi.json", &["get"]),
        ("/v1/tenants", &["get", "post"]),
        ("/v1/tenants/{id}", &["get", "patch", "delete"]),
        ("/v1/clock", &["get", "put"]),
        ("/v1/cluster", &["get"]),
        ("/v1/api-keys", &["get", "post"]),
        ("/v1/api-keys/{id}", &["delete"]),
        ("/v1/plugins", &["get", "post"]),
        ("/v1/plugins/{name}", &["get", "patch", "delete"]),
        ("/v1/plugins/{name}/versions", &["get"]),
        ("/v1/plugins/{name}/invoke", &["post"]),
        ("/v1/plugins/{name}/logs", &["get"]),
        ("/v1/customers", &["get"]),
        ("/v1/customers/{id}", &["get", "put", "delete"]),
        ("/v1/customers/{id}/cohorts", &["get"]),
        ("/v1/events", &["post"]),
        ("/v1/event-types", &["get"]),
        ("/v1/cohorts", &["get", "post"]),
        ("/v1/cohorts/{id}", &["get", "put", "delete"]),
        ("/v1/cohorts/{id}/members", &["get"]),
        ("/v1/rules", &["get", "post"]),
        ("/v1/rules/{id}", &["get", "put", "delete"]),
        ("/v1/rules/{id}/states", &["get"]),
        ("/v1/rules/{id}/stats", &["get"]),
        ("/v1/stats", &["get"]),
        ("/v1/rules/{id}/evaluate", &["post"]),
        ("/v1/rules/backtest", &["post"]),
        ("/v1/backtests/{id}", &["get", "delete"]),
        ("/v1/channels", &["get", "post"]),
        ("/v1/channels/{id}", &["get", "put", "delete"]),
        ("/v1/channels/check", &["post"]),
        ("/v1/channels/{id}/preview", &["post"]),
        ("/v1/channels/{id}/test", &["post"]),
        ("/v1/channels/{id}/rotate-secret", &["post"]),
        ("/v1/recipients", &["get", "post"]),
        ("/v1/recipients/{id}", &["get", "put", "delete"]),
        ("/v1/categories", &["get"]),
        ("/v1/categories/{name}", &["get", "put", "delete"]),
        ("/v1/subscriptions", &["get", "post"]),
        ("/v1/subscriptions/{id}", &["get", "put", "delete"]),
        ("/v1/subscriptions/{id}/test", &["post"]),
        ("/v1/silences", &["get", "post"]),
        ("/v1/silences/{id}", &["get", "delete"]),
        ("/v1/incidents", &["get", "post"]),
        ("/v1/incidents/{id}", &["get"]),
        ("/v1/incidents/{id}/updates", &["post"]),
        ("/v1/status-page", &["get", "put"]),
        ("/v1/roles", &["get", "post"]),
        ("/v1/roles/{name}", &["get", "put", "delete"]),
        ("/v1/customers/{id}/tokens", &["post"]),
        ("/v1/customer-tokens/revoke", &["post"]),
        ("/v1/portal", &["get", "put"]),
        ("/portal", &["get"]),
        ("/portal/confirm", &["get"]),
        ("/v1/time-intervals", &["get", "post"]),
        ("/v1/time-intervals/{name}", &["get", "put", "delete"]),
        ("/status/{slug}", &["get"]),
        ("/status/{slug}.json", &["get"]),
        ("/status/{slug}/feed.atom", &["get"]),
        ("/v1/notifications", &["get"]),
        ("/v1/notifications/{id}", &["get"]),
        ("/v1/notifications/{id}/attempts", &["get"]),
        ("/v1/notifications/{id}/resend", &["post"]),
        ("/v1/audit", &["get"]),
        ("/v1/admin/audit", &["get"]),
        ("/v1/admin/backup", &["post"]),
    ];
    assert_eq!(paths.len(), expected.len(), "{:?}", paths.keys().collect::<Vec<_>>());
    for (path, methods) in expected {
        let item: &Value = &paths[path];
        for method in methods {
            assert!(item[method].is_object(), "{method} {path} is described");
        }
    }
}

/// The served description passes a real OpenAPI 3.1 validator (PyPI `openapi-spec-validator`,
/// installed by `.ci/run`), so client generators can read it.
#[test]
fn the_openapi_description_is_valid_openapi_3_1() {
    let server = Server::start();
    let text = server.request(Method::GET, "/openapi.json", None).send().unwrap().text().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, text).unwrap();
    let output = std::process::Command::new("openapi-spec-validator")
        .args(["--schema", "3.1", "--validation-errors", "all"])
        .arg(&file)
        .output()
        .expect("openapi-spec-validator runs (pip install openapi-spec-validator)");
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success() && said.contains(": OK"), "{said}");
}

#[test]
fn a_manual_clock_moves_only_when_told_and_plugins_see_it() {
    let server = Server::start_with(None, &["--manual-clock"]);
    let (status, clock) = server.call(Method::GET, "/v1/clock", ADMIN, None);
    assert_eq!((status, clock["manual"].as_bool()), (200, Some(true)));

    let (status, _) = server.call(Method::PUT, "/v1/clock", ADMIN, Some(json!({ "now": "2031-01-01T00:00:00Z" })));
    assert_eq!(status, 200);
    let (_, key) = server.tenant("acme");
    let (status, uploaded) = server.upload(&key, "probe", "condition", &guests().wasi_probe);
    assert_eq!(status, 201);
    assert_eq!(uploaded["plugin"]["created_at"], "2031-01-01T00:00:00Z");
    let (_, body) = server.invoke(&key, "probe", evaluation(json!({})));
    assert_eq!(body["output"]["labels"]["unix_seconds"], "1924992000", "the guest's clock is the server's");

    let (status, error) = server.call(Method::PUT, "/v1/clock", ADMIN, Some(json!({ "now": "2030-01-01T00:00:00Z" })));
    assert_eq!((status, error["error"]["field"].as_str()), (400, Some("now")), "{error}");
    assert_eq!(server.call(Method::PUT, "/v1/clock", &key, Some(json!({ "now": "2032-01-01T00:00:00Z" }))).0, 403);
}

#[test]
fn the_system_clock_cannot_be_moved() {
    let server = Server::start();
    let (_, clock) = server.call(Method::GET, "/v1/clock", ADMIN, None);
    assert_eq!(clock["manual"], false);
    let (status, _) = server.call(Method::PUT, "/v1/clock", ADMIN, Some(json!({ "now": "2031-01-01T00:00:00Z" })));
    assert_eq!(status, 409);
}

#[test]
fn the_grafana_dashboard_reads_only_what_the_server_exports() {
    let server = Server::start();
    let text = server.request(Method::GET, "/metrics", None).send().unwrap().text().unwrap();
    let families: Vec<(&str, &str)> =
        text.lines().filter_map(|line| line.strip_prefix("# TYPE ")).filter_map(|line| line.split_once(' ')).collect();
    let path = crate::support::workspace_root().join("examples/grafana/klaxon-dashboard.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut queried = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for name in
                expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|t| t.starts_with("klaxon_"))
            {
                // A histogram is queried by its series: `_bucket`, `_sum`, `_count`.
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| {
                        name.strip_suffix(suffix).filter(|base| families.contains(&(*base, "histogram")))
                    })
                    .unwrap_or(name);
                assert!(
                    families.iter().any(|(f, _)| *f == family),
                    "{} queries {name}, which /metrics lacks",
                    panel["title"]
                );
                queried += 1;
            }
        }
    }
    assert!(queried >= 8, "{queried}");
    for tree in ["events", "notifications"] {
        assert!(text.contains(&format!("klaxon_store_writes_total{{tree=\"{tree}\"}}")), "{text}");
    }
}
