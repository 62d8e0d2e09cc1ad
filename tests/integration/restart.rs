//! Restarts and crashes: plugins and their stored state survive, and are not compiled again.
//! Uploads are compiled at the baseline tier and optimized in the background; whatever a
//! restart interrupts is picked up again.

use std::path::{Path, PathBuf};

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Server, evaluation, guests, python_guests};

const BASELINE_COMPILES: &str = r#"klaxon_plugin_compilations_total{tier="baseline"}"#;
const OPTIMIZED_COMPILES: &str = r#"klaxon_plugin_compilations_total{tier="optimized"}"#;
const BASELINE_LOADED: &str = r#"klaxon_plugins_loaded{tier="baseline"}"#;
const OPTIMIZED_LOADED: &str = r#"klaxon_plugins_loaded{tier="optimized"}"#;

/// The artifact files under the data folder, as paths relative to `artifacts/`.
fn artifact_files(data: &Path) -> Vec<PathBuf> {
    let root = data.join("artifacts");
    let mut folders = vec![root.clone()];
    let mut files = Vec::new();
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else {
                files.push(path.strip_prefix(&root).unwrap().to_path_buf());
            }
        }
    }
    files.sort();
    files
}

/// The name of the optimized artifact file of a plugin's first version: the version and its
/// component's hash.
fn optimized_file(server: &Server, key: &str, plugin: &str) -> String {
    let (status, versions) = server.call(Method::GET, &format!("/v1/plugins/{plugin}/versions"), key, None);
    assert_eq!(status, 200, "{versions}");
    let sha256 = versions["items"][0]["sha256"].as_str().unwrap();
    format!("0000000001.{}.cwasm", &sha256[..16])
}

/// The week-over-week condition's input for a 90% drop, which fires.
fn big_drop() -> Value {
    let mut input = evaluation(json!({ "drop_percent": 20 }));
    input["value"] = json!({ "current": 10, "previous": 100 });
    input
}

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
    assert_eq!(server.metric(BASELINE_COMPILES), 2.0, "uploads compile at the baseline tier");
    assert_eq!(zscore_samples(&server, &key), "1");
    server.wait_until_optimized(2);
    assert_eq!(server.metric(OPTIMIZED_COMPILES), 2.0, "then once more, optimized");
    let tenant = artifact_files(&server.data())[0].iter().next().unwrap().to_owned();
    let files = ["wow", "zscore"].map(|name| Path::new(&tenant).join(name).join(optimized_file(&server, &key, name)));
    assert_eq!(artifact_files(&server.data()), files, "the optimized artifacts replaced the baseline ones");

    server.restart();

    assert_eq!(server.metric(OPTIMIZED_LOADED), 2.0, "loaded at start, optimized");
    assert_eq!(server.metric(BASELINE_LOADED), 0.0);
    let (_, plugin) = server.call(Method::GET, "/v1/plugins/wow", &key, None);
    assert_eq!(plugin["effective_limits"]["time_ms"], 50);
    assert_eq!(server.invoke(&key, "wow", big_drop()).1["output"]["fire"], true);
    assert_eq!(zscore_samples(&server, &key), "2", "the key-value store survived");
    assert_eq!(server.metric(BASELINE_COMPILES) + server.metric(OPTIMIZED_COMPILES), 0.0, "from stored artifacts");
}

#[test]
fn a_version_stopped_before_it_was_optimized_restarts_on_its_baseline_artifact() {
    let mut server = Server::start();
    let (tenant, key) = server.tenant("acme");
    // The 18 MB Python component's first call on its baseline tier took 142 ms on a machine
    // busy with other tests: time is plentiful here, the restart is what is checked.
    server.plentiful_time(&tenant);
    assert_eq!(server.upload(&key, "limit", "condition", &python_guests().condition).0, 201);
    let mut input = evaluation(json!({ "limit": 10 }));
    input["value"] = json!({ "current": 250.0 });
    let (status, before) = server.invoke(&key, "limit", input.clone());
    assert_eq!((status, &before["output"]["fire"]), (200, &json!(true)), "{before}");
    let compiled = |server: &Server| server.call(Method::GET, "/v1/plugins/limit", &key, None).1["compiled"].clone();
    assert_eq!(compiled(&server), "baseline", "the upload answered after the baseline compile");

    // Optimizing the 18 MB Python component takes seconds: the crash comes first.
    server.crash_and_restart();

    assert_eq!(server.metric(BASELINE_LOADED), 1.0, "loaded from its baseline artifact");
    assert_eq!(server.metric(BASELINE_COMPILES), 0.0, "not compiled again");
    assert_eq!(compiled(&server), "baseline");
    assert_eq!(server.invoke(&key, "limit", input.clone()).1["output"], before["output"]);
    server.wait_until_optimized(1);
    assert_eq!(compiled(&server), "optimized");
    assert_eq!(server.metric(OPTIMIZED_COMPILES), 1.0, "optimized after the restart");
    assert_eq!(server.invoke(&key, "limit", input).1["output"], before["output"], "the same verdict optimized");
    let files = artifact_files(&server.data());
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].ends_with(Path::new("limit").join(optimized_file(&server, &key, "limit"))), "{files:?}");
}

#[test]
fn a_version_deleted_and_uploaded_again_while_it_was_optimized_keeps_its_new_code() {
    let mut server = Server::start();
    let (_, key) = server.tenant("acme");
    assert_eq!(server.upload(&key, "limit", "condition", &python_guests().condition).0, 201);
    // While the Python component is being optimized, the plugin goes and version 1 of the same
    // name comes back with other code.
    assert_eq!(server.call(Method::DELETE, "/v1/plugins/limit", &key, None).0, 204);
    assert_eq!(server.upload(&key, "limit", "condition", &guests().week_over_week_drop).0, 201);

    server.wait_until_optimized(1);
    assert_eq!(server.invoke(&key, "limit", big_drop()).1["output"]["fire"], true);
    server.restart();
    let (status, body) = server.invoke(&key, "limit", big_drop());
    assert_eq!((status, &body["output"]["fire"]), (200, &json!(true)), "the artifact is the new code's: {body}");
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
    assert_eq!(server.invoke(&key, "wow", big_drop()).0, 200);
}

#[test]
fn an_artifact_this_build_cannot_use_is_compiled_again() {
    let mut server = Server::start();
    let (_, key) = server.tenant("acme");
    assert_eq!(server.upload(&key, "wow", "condition", &guests().week_over_week_drop).0, 201);

    server.wait_until_optimized(1);

    // As after an upgrade of wasmtime: the stored artifacts are not this build's.
    server.while_stopped(|data| {
        let files = artifact_files(data);
        assert_eq!(files.len(), 1, "one artifact file per uploaded version: {files:?}");
        std::fs::write(data.join("artifacts").join(&files[0]), b"an artifact from another build").unwrap();
    });

    assert_eq!(server.metric(BASELINE_COMPILES), 1.0, "compiled again from the stored component");
    assert_eq!(server.invoke(&key, "wow", big_drop()).1["output"]["fire"], true);
    server.wait_until_optimized(1);
    assert_eq!(server.metric(OPTIMIZED_COMPILES), 1.0);
    assert_eq!(server.invoke(&key, "wow", big_drop()).1["output"]["fire"], true);
}
