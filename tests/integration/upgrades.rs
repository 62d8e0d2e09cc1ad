//! Upgrades: the data folder an earlier release wrote (`tests/fixtures/data-<version>.tar.gz`,
//! made by `write_this_release_s_data_folder` with that release's own code, and what its API
//! answered beside it in `data-<version>.json`) opens in this one with every record intact and
//! working. When a release is cut, run
//! `cargo test -p klaxon --test integration upgrades::write -- --ignored` and commit the two
//! files it writes; keep the earlier ones.

use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{ADMIN, Server, guests, workspace_root};

/// What the check reads through the API, as the tenant's admin key.
const READS: &[&str] = &[
    "/v1/rules",
    "/v1/customers",
    "/v1/channels",
    "/v1/notifications?limit=100",
    "/v1/plugins",
    "/v1/silences",
    "/v1/time-intervals",
    "/v1/roles/support",
    "/v1/api-keys",
    "/v1/event-types",
];

/// Fields an answer works out when asked (from the clock, the plugin engine's progress, the
/// release's catalogue of system events), not from what is stored.
const NOT_STORED: &[&str] = &["holds_now", "next_start", "compiled", "system"];

fn fixtures() -> PathBuf {
    workspace_root().join("tests/fixtures")
}

fn call(server: &Server, method: Method, path: &str, key: &str, body: Value) -> Value {
    let (status, answer) = server.call(method, path, key, Some(body));
    assert!((200..300).contains(&status), "{path}: {status} {answer}");
    answer
}

#[test]
#[ignore = "writes this release's data folder into tests/fixtures: run it when cutting a release"]
fn write_this_release_s_data_folder() {
    let mut server = Server::start_with(None, &["--manual-clock"]);
    let (tenant, key) = server.tenant("fixture");
    let viewer = server.key(&key, "viewer");
    for (id, fields) in
        [("acme", json!({ "plan": "enterprise", "seats": 120 })), ("beta", json!({ "plan": "starter" }))]
    {
        call(&server, Method::PUT, &format!("/v1/customers/{id}"), &key, json!({ "name": id, "fields": fields }));
    }
    call(
        &server,
        Method::POST,
        "/v1/channels",
        &key,
        json!({ "name": "ops", "kind": "webhook", "url": "https://hooks.example.com/klaxon" }),
    );
    let rule = call(
        &server,
        Method::POST,
        "/v1/rules",
        &key,
        json!({ "name": "Heavy usage", "scope": { "type": "each" }, "channels": [], "notify_on_resolve": true,
                "condition": { "kind": "threshold", "window": { "calendar": "day" }, "operator": ">", "value": 10,
                               "metric": { "event_types": ["usage"], "aggregate": "sum", "property": "hours" } } }),
    );
    let (status, plugin) = server.upload(&key, "wow-drop", "condition", &guests().week_over_week_drop);
    assert_eq!(status, 201, "{plugin}");
    call(
        &server,
        Method::POST,
        "/v1/time-intervals",
        &key,
        json!({ "name": "weekends", "timezone": "Europe/Berlin", "ranges": [{ "weekdays": ["saturday", "sunday"] }] }),
    );
    call(
        &server,
        Method::POST,
        "/v1/silences",
        &key,
        json!({ "matchers": [{ "field": "customer.plan", "op": "=", "value": "starter" }], "during": ["weekends"],
                "comment": "starters rest at weekends" }),
    );
    call(
        &server,
        Method::POST,
        "/v1/roles",
        &key,
        json!({ "name": "support", "permissions": ["rules:read", "silences:*"] }),
    );
    let now = server.call(Method::GET, "/v1/clock", ADMIN, None).1["now"].clone();
    let events: Vec<Value> = [("acme", 12), ("beta", 3)]
        .iter()
        .map(|(customer, hours)| {
            json!({ "id": format!("u-{customer}"), "customer_id": customer, "type": "usage",
                                         "timestamp": now, "properties": { "hours": hours } })
        })
        .collect();
    let ingested = call(&server, Method::POST, "/v1/events", &key, json!({ "events": events }));
    assert_eq!(ingested["notifications"], 1, "{ingested}");

    let reads: serde_json::Map<String, Value> =
        READS.iter().map(|path| (path.to_string(), server.call(Method::GET, path, &key, None).1)).collect();
    server.stop("TERM");
    // Compiled artifacts belong to the engine that made them; a later release compiles anew.
    std::fs::remove_dir_all(server.data().join("artifacts")).ok();
    let version = env!("CARGO_PKG_VERSION");
    std::fs::create_dir_all(fixtures()).unwrap();
    let archive = fixtures().join(format!("data-{version}.tar.gz"));
    let tar = Command::new("tar").arg("-czf").arg(&archive).arg("-C").arg(server.data()).arg(".").status();
    assert!(tar.expect("tar runs").success());
    let expected = json!({ "release": version, "tenant": tenant, "key": key, "viewer": viewer,
                           "rule": rule["id"], "reads": reads });
    let text = serde_json::to_string_pretty(&expected).unwrap() + "\n";
    std::fs::write(fixtures().join(format!("data-{version}.json")), text).unwrap();
}

#[test]
fn every_earlier_release_s_data_folder_opens_with_everything_intact() {
    let mut releases: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .expect("tests/fixtures")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    releases.sort();
    assert!(!releases.is_empty(), "at least this release's data folder is kept");
    for release in releases {
        check(&release);
    }
}

fn check(release: &Path) {
    let expected: Value = serde_json::from_str(&std::fs::read_to_string(release).unwrap()).unwrap();
    let archive = release.with_extension("tar.gz");
    // The server opens the folder at the time it was written (when the writer's one notification
    // was made): a day later, the alert over a daily window would resolve as it opens.
    let notifications = expected["reads"]["/v1/notifications?limit=100"]["items"].as_array().unwrap();
    let written_at = notifications.iter().filter_map(|n| n["created_at"].as_str()).max().expect("a notification");
    let server = Server::start_on(None, &["--manual-clock-start", written_at], |data| {
        std::fs::create_dir_all(data).unwrap();
        let tar = Command::new("tar").arg("-xzf").arg(&archive).arg("-C").arg(data).status();
        assert!(tar.expect("tar runs").success(), "{}", archive.display());
    });
    let name = expected["release"].as_str().unwrap();
    let key = expected["key"].as_str().unwrap();
    for (path, was) in expected["reads"].as_object().unwrap() {
        let (status, now) = server.call(Method::GET, path, key, None);
        assert_eq!(status, 200, "{name} {path}: {now}");
        if let Err(at) = holds(was, &now, path.clone()) {
            panic!("release {name}'s data at {at}: was {was:#}\nnow {now:#}");
        }
    }

    // What the tenant keeps was counted as the store was migrated.
    let kept: u64 = expected["reads"]["/v1/event-types"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["count"].as_u64().unwrap())
        .sum();
    let tenant_path = format!("/v1/tenants/{}", expected["tenant"].as_str().unwrap());
    let (_, tenant) = server.call(Method::GET, &tenant_path, ADMIN, None);
    let customers = expected["reads"]["/v1/customers"]["items"].as_array().unwrap().len() as u64;
    assert_eq!(
        (tenant["usage"]["events"].as_u64(), tenant["usage"]["customers"].as_u64()),
        (Some(kept), Some(customers)),
        "{name}: {tenant}"
    );

    // It works as it did: the rule fires for another customer, the plugin evaluates (compiled
    // anew from its stored component), the viewer reads and may not write.
    let now = server.call(Method::GET, "/v1/clock", ADMIN, None).1["now"].clone();
    let event = json!({ "id": "after-upgrade", "customer_id": "beta", "type": "usage", "timestamp": now,
                        "properties": { "hours": 30 } });
    let ingested = call(&server, Method::POST, "/v1/events", key, json!({ "events": [event] }));
    assert_eq!(ingested["notifications"], 1, "{name}: {ingested}");
    let invoked = call(
        &server,
        Method::POST,
        "/v1/plugins/wow-drop/invoke",
        key,
        json!({ "rule": { "id": "r", "name": "r" }, "config": { "drop_percent": 20 },
                "value": { "current": 50.0, "previous": 100.0 } }),
    );
    assert_eq!(invoked["output"]["fire"], true, "{name}: {invoked}");
    let viewer = expected["viewer"].as_str().unwrap();
    assert_eq!(server.call(Method::GET, "/v1/rules", viewer, None).0, 200, "{name}");
    assert_eq!(server.call(Method::DELETE, &format!("/v1/rules/{}", expected["rule"]), viewer, None).0, 403);
}

/// Whether `now` still holds everything `was` held (added fields are fine, values from the
/// clock or the release are not compared); `Err` names where it differs.
fn holds(was: &Value, now: &Value, at: String) -> Result<(), String> {
    match (was, now) {
        (Value::Object(was), Value::Object(now)) => {
            was.iter().filter(|(field, _)| !NOT_STORED.contains(&field.as_str())).try_for_each(|(field, value)| {
                holds(value, now.get(field).unwrap_or(&Value::Null), format!("{at}.{field}"))
            })
        }
        (Value::Array(was), Value::Array(now)) if was.len() == now.len() => {
            was.iter().zip(now).enumerate().try_for_each(|(i, (was, now))| holds(was, now, format!("{at}[{i}]")))
        }
        _ if was == now => Ok(()),
        _ => Err(at),
    }
}
