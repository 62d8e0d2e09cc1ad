//! Restarts and crashes: plugins and their stored state survive, and are not compiled again.

use reqwest::Method;
use serde_json::json;

use crate::support::{Server, evaluation, guests};

fn zscore_samples(server: &Server, key: &str) -> String {
    let mut input = evaluation(json!({}));
    input["customer"] = json!({ "id": "cus_a" });
    input["value"] = json!({ "current": 10.0 });
    let (status, body) = server.invoke(key, "zscore", input);
    assert_eq!(status, 200, "{body}");
    body["output"]["labels"]["samples"].as_str().unwrap().to_string()
}

#[test]
fn a_restart_keeps_plugins_and_their_state_without_compiling_again() {
    let mut server = Server::start();
    let (_, key) = server.tenant("acme");
    server.upload(&key, "wow", "condition", &guests().week_over_week_drop);
    server.upload(&key, "zscore", "condition", &guests().zscore_anomaly);
    server.call(Method::PATCH, "/v1/plugins/wow", &key, Some(json!({ "limits": { "time_ms": 50 } })));
    assert_eq!(server.metric("klaxon_plugin_compilations_total"), 2.0);
    assert_eq!(zscore_samples(&server, &key), "1");

    server.restart();

    assert_eq!(server.metric("klaxon_plugins_loaded"), 2.0, "loaded at start");
    assert_eq!(server.metric("klaxon_plugin_compilations_total"), 0.0, "from stored artifacts");
    let (_, plugin) = server.call(Method::GET, "/v1/plugins/wow", &key, None);
    assert_eq!(plugin["effective_limits"]["time_ms"], 50);
    let mut input = evaluation(json!({ "drop_percent": 20 }));
    input["value"] = json!({ "current": 10, "previous": 100 });
    assert_eq!(server.invoke(&key, "wow", input).1["output"]["fire"], true);
    assert_eq!(zscore_samples(&server, &key), "2", "the key-value store survived");
    assert_eq!(server.metric("klaxon_plugin_compilations_total"), 0.0);
}

#[test]
fn a_crash_loses_no_acknowledged_change() {
    let mut server = Server::start();
    let (_, key) = server.tenant("acme");
    let viewer = server.key(&key, "viewer");
    assert_eq!(server.upload(&key, "wow", "condition", &guests().week_over_week_drop).0, 201);
    server.call(Method::PATCH, "/v1/plugins/wow", &key, Some(json!({ "pinned_version": 1 })));

    server.crash_and_restart();

    let (status, plugin) = server.call(Method::GET, "/v1/plugins/wow", &viewer, None);
    assert_eq!(status, 200, "{plugin}");
    assert_eq!(plugin["pinned_version"], 1);
    let mut input = evaluation(json!({ "drop_percent": 20 }));
    input["value"] = json!({ "current": 10, "previous": 100 });
    assert_eq!(server.invoke(&key, "wow", input).0, 200);
}

#[test]
fn an_artifact_this_build_cannot_use_is_compiled_again() {
    let mut server = Server::start();
    let (_, key) = server.tenant("acme");
    assert_eq!(server.upload(&key, "wow", "condition", &guests().week_over_week_drop).0, 201);

    // As after an upgrade of wasmtime: the stored artifacts are not this build's.
    server.while_stopped(|data| {
        let mut folders = vec![data.join("artifacts")];
        let mut replaced = 0;
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(folder).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    folders.push(path);
                } else if path.extension().is_some_and(|e| e == "cwasm") {
                    std::fs::write(&path, b"an artifact from another build").unwrap();
                    replaced += 1;
                }
            }
        }
        assert_eq!(replaced, 1, "one artifact file per uploaded version");
    });

    assert_eq!(server.metric("klaxon_plugin_compilations_total"), 1.0, "compiled again from the stored component");
    let mut input = evaluation(json!({ "drop_percent": 20 }));
    input["value"] = json!({ "current": 10, "previous": 100 });
    assert_eq!(server.invoke(&key, "wow", input).1["output"]["fire"], true);
}
