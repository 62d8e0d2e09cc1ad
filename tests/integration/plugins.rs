//! The plugin API: uploads and their errors, versions, settings, and the example plugins.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Server, evaluation, guests, read};

#[test]
fn uploads_are_checked_before_they_are_accepted() {
    let server = Server::start_with_config(Some("max_plugin_bytes = 200000\n"));
    let (_, key) = server.tenant("acme");
    let g = guests();

    let (status, error) = server.upload(&key, "junk", "condition", b"definitely not wasm");
    assert_eq!((status, error["error"]["code"].as_str()), (400, Some("not_a_component")), "{error}");

    let core_module = b"\0asm\x01\0\0\0";
    let (status, error) = server.upload(&key, "core", "condition", core_module);
    assert_eq!(status, 400);
    assert!(error["error"]["message"].as_str().unwrap().contains("core WebAssembly module"), "{error}");

    let (status, error) = server.upload(&key, "slack", "condition", &g.slack_blocks);
    assert_eq!((status, error["error"]["code"].as_str()), (400, Some("world_mismatch")), "{error}");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("the klaxon:plugin/condition@0.3.0 world") && message.contains("no export"), "{error}");

    let (status, error) = server.upload(&key, "Bad Name", "condition", &g.week_over_week_drop);
    assert_eq!((status, error["error"]["field"].as_str()), (400, Some("name")), "{error}");
    let (status, error) = server.upload(&key, "wow", "filter", &g.week_over_week_drop);
    assert_eq!((status, error["error"]["field"].as_str()), (400, Some("kind")), "{error}");
    let (status, error) = read(
        server
            .request(Method::POST, "/v1/plugins?kind=condition", Some(&key))
            .header("content-type", "application/wasm")
            .body(g.week_over_week_drop.clone()),
    );
    assert_eq!((status, error["error"]["field"].as_str()), (400, Some("name")), "{error}");

    let (status, _) = read(
        server
            .request(Method::POST, "/v1/plugins?name=wow&kind=condition", Some(&key))
            .header("content-type", "application/octet-stream")
            .body(g.week_over_week_drop.clone()),
    );
    assert_eq!(status, 415);

    let oversized = vec![0u8; 200_001];
    let (status, error) = server.upload(&key, "big", "condition", &oversized);
    assert_eq!(status, 413, "{error}");
    assert!(error["error"]["message"].as_str().unwrap().contains("200000"), "{error}");

    assert_eq!(server.upload(&key, "wow", "condition", &g.week_over_week_drop).0, 201);
    let (status, error) = server.upload(&key, "wow", "template", &g.slack_blocks);
    assert_eq!(status, 409, "{error}");

    // Nothing refused was kept.
    let (_, list) = server.call(Method::GET, "/v1/plugins", &key, None);
    let names: Vec<&str> = list["items"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["wow"]);
}

#[test]
fn versions_pins_switches_limits_and_deletion() {
    let server = Server::start();
    let (tenant, key) = server.tenant("acme");
    let wow = &guests().week_over_week_drop;

    let (status, first) = server.upload(&key, "wow", "condition", wow);
    assert_eq!(status, 201);
    assert_eq!(first["version"]["version"], 1);
    let (_, second) = server.upload(&key, "wow", "condition", wow);
    assert_eq!(second["version"]["version"], 2);
    assert_eq!(second["plugin"]["active_version"], 2);

    let (status, versions) = server.call(Method::GET, "/v1/plugins/wow/versions", &key, None);
    assert_eq!(status, 200);
    let versions = versions["items"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["size_bytes"], wow.len());
    assert_eq!(versions[0]["sha256"], versions[1]["sha256"]);

    let patch = |body: Value| server.call(Method::PATCH, "/v1/plugins/wow", &key, Some(body));
    let (status, plugin) = patch(json!({ "pinned_version": 1 }));
    assert_eq!((status, plugin["active_version"].as_u64()), (200, Some(1)));
    let (status, error) = patch(json!({ "pinned_version": 9 }));
    assert_eq!((status, error["error"]["field"].as_str()), (400, Some("pinned_version")), "{error}");
    let (_, plugin) = patch(json!({ "pinned_version": null }));
    assert_eq!(plugin["active_version"], 2);

    let input = evaluation(json!({ "drop_percent": 20 }));
    let (_, plugin) = patch(json!({ "enabled": false }));
    assert_eq!(plugin["enabled"], false);
    let (status, error) = server.invoke(&key, "wow", input.clone());
    assert_eq!(status, 409, "{error}");
    patch(json!({ "enabled": true }));
    assert_eq!(server.invoke(&key, "wow", input.clone()).0, 422, "no value in the input: the plugin says so");

    let (status, error) = patch(json!({ "limits": { "fuel": 999999999999u64 } }));
    assert_eq!((status, error["error"]["field"].as_str()), (400, Some("limits.fuel")), "{error}");
    let (status, plugin) = patch(json!({ "limits": { "fuel": 1000 } }));
    assert_eq!(status, 200);
    assert_eq!(plugin["effective_limits"]["fuel"], 1000);
    let (status, body) = server.invoke(&key, "wow", input);
    assert_eq!((status, body["error"]["limit"].as_str()), (422, Some("fuel")), "{body}");
    let (status, error) = patch(json!({ "pinned": 1 }));
    assert_eq!(status, 400, "unknown fields are refused: {error}");

    let artifacts = server.data().join("artifacts").join(&tenant).join("wow");
    let files = || std::fs::read_dir(&artifacts).map_or(0, |files| files.count());
    assert_eq!(files(), 2, "one compiled artifact file per version");
    assert_eq!(server.call(Method::DELETE, "/v1/plugins/wow", &key, None).0, 204);
    assert_eq!(files(), 0, "the artifacts go with the plugin");
    assert_eq!(server.call(Method::GET, "/v1/plugins/wow", &key, None).0, 404);
    assert_eq!(server.call(Method::GET, "/v1/plugins/wow/versions", &key, None).0, 404);
    assert_eq!(server.upload(&key, "wow", "condition", wow).1["version"]["version"], 1, "a new plugin starts over");
}

#[test]
fn week_over_week_drop_fires_on_a_big_enough_drop() {
    let server = Server::start();
    let (_, key) = server.tenant("acme");
    server.upload(&key, "wow", "condition", &guests().week_over_week_drop);

    let run = |current: f64, previous: f64| {
        let mut input = evaluation(json!({ "drop_percent": 20 }));
        input["value"] = json!({ "current": current, "previous": previous });
        let (status, body) = server.invoke(&key, "wow", input);
        assert_eq!(status, 200, "{body}");
        body
    };
    let body = run(750.0, 1000.0);
    assert_eq!(body["output"]["fire"], true);
    assert_eq!(body["output"]["value"], -25.0);
    assert!(body["output"]["message"].as_str().unwrap().contains("-25.0%"), "{body}");
    assert!(body["fuel_used"].as_u64().unwrap() > 0);
    assert!(body["duration_us"].as_u64().is_some());

    assert_eq!(run(900.0, 1000.0)["output"]["fire"], false, "10% is not 20%");
    assert_eq!(run(1200.0, 1000.0)["output"]["fire"], false, "a rise is not a drop");

    let (status, body) =
        server.invoke(&key, "wow", json!({ "function": "validate", "config": { "drop_percent": 20 } }));
    assert_eq!((status, &body["output"]), (200, &json!({ "valid": true })));
    let (status, body) =
        server.invoke(&key, "wow", json!({ "function": "validate", "config": { "drop_percent": 150 } }));
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("plugin_error")));
    assert!(body["error"]["message"].as_str().unwrap().contains("drop_percent"), "{body}");
    let (status, body) = server.invoke(&key, "wow", json!({ "function": "validate", "config": { "drop": 20 } }));
    assert_eq!(status, 422);
    assert!(body["error"]["message"].as_str().unwrap().contains("invalid config"), "{body}");

    let (status, error) = server.invoke(&key, "wow", json!({ "function": "explode" }));
    assert_eq!((status, error["error"]["field"].as_str()), (400, Some("function")));
    let (status, error) = server.invoke(&key, "wow", json!({ "config": {} }));
    assert_eq!((status, error["error"]["field"].as_str()), (400, Some("rule")), "{error}");
}

#[test]
fn zscore_anomaly_learns_each_customers_normal() {
    let server = Server::start();
    let (_, key) = server.tenant("acme");
    server.upload(&key, "zscore", "condition", &guests().zscore_anomaly);

    let run = |customer: &str, value: f64| {
        let mut input = evaluation(json!({ "threshold": 3.0, "min_samples": 5 }));
        input["customer"] = json!({ "id": customer, "fields": { "tier": "pro" } });
        input["value"] = json!({ "current": value });
        let (status, body) = server.invoke(&key, "zscore", input);
        assert_eq!(status, 200, "{body}");
        body["output"].clone()
    };
    for value in [100.0, 102.0, 98.0, 101.0, 99.0] {
        let verdict = run("cus_a", value);
        assert_eq!(verdict["fire"], false);
        assert!(verdict["message"].as_str().unwrap().starts_with("learning"), "{verdict}");
    }
    assert_eq!(run("cus_a", 100.5)["fire"], false, "a normal value");
    let spike = run("cus_a", 500.0);
    assert_eq!(spike["fire"], true, "{spike}");
    assert!(spike["value"].as_f64().unwrap() > 3.0);
    assert_eq!(spike["labels"]["samples"], "7");

    let other = run("cus_b", 500.0);
    assert_eq!(
        (other["fire"].as_bool(), other["labels"]["samples"].as_str()),
        (Some(false), Some("1")),
        "customers do not share state"
    );
}

#[test]
fn slack_blocks_template_renders_within_slacks_limits() {
    let server = Server::start();
    let (_, key) = server.tenant("acme");
    assert_eq!(server.upload(&key, "slack", "template", &guests().slack_blocks).0, 201);

    let long_name = "Usage over plan ".repeat(20);
    let context = json!({
        "tenant": "acme",
        "rule": { "id": "rule_1", "name": long_name, "severity": "critical" },
        "customer": { "id": "cus_42", "name": "Globex", "fields": { "tier": "Enterprise" } },
        "state": { "previous": "ok", "current": "in_alarm" },
        "value": 1250.0,
        "threshold": 1000.0,
        "window": { "start": "2026-11-16T00:00:00Z", "end": "2026-11-23T00:00:00Z" },
        "notification": { "id": "ntf_1", "timestamp": "2026-11-23T10:00:00Z", "url": "https://klaxon.example/v1/notifications/ntf_1" },
    });
    let (status, body) = server.invoke(&key, "slack", context.clone());
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"]["content_type"], "application/json");
    let message: Value = serde_json::from_str(body["output"]["body"].as_str().unwrap()).unwrap();
    let blocks = message["blocks"].as_array().unwrap();
    assert!(blocks.len() <= 50);
    let header = blocks[0]["text"]["text"].as_str().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert!(header.chars().count() <= 150, "header cut to 150 characters: {header}");
    assert!(header.starts_with(":rotating_light: Alert"), "{header}");
    let summary = blocks[1]["text"]["text"].as_str().unwrap();
    assert!(summary.contains("Globex") && summary.contains("1250") && summary.chars().count() <= 3000, "{summary}");
    assert!(message.to_string().contains("https://klaxon.example/v1/notifications/ntf_1"));

    let mut resolved = context;
    resolved["state"] = json!({ "previous": "in_alarm", "current": "ok" });
    let (_, body) = server.invoke(&key, "slack", resolved);
    let message: Value = serde_json::from_str(body["output"]["body"].as_str().unwrap()).unwrap();
    assert!(message["blocks"][0]["text"]["text"].as_str().unwrap().contains("Resolved"), "{message}");
}
