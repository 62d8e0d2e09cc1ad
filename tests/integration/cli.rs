//! The `klaxon` command line against a real server: every resource's subcommands, tables and
//! JSON, profiles, the exit codes scripts rely on, and the API's errors shown with their field.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::delivery::Setup;
use crate::receivers::Receiver;
use crate::support::{ADMIN, Server, guests};

/// The command line pointed at one server with one key, with a profiles file of its own.
struct Cli {
    url: String,
    key: String,
    home: tempfile::TempDir,
}

/// What one run printed and how it ended.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Cli {
    fn new(server: &Server, key: &str) -> Cli {
        Cli { url: server.base.clone(), key: key.into(), home: tempfile::tempdir().expect("temp dir") }
    }

    /// `klaxon ARGS` with no connection flags, standard input `stdin` and extra environment.
    fn bare(&self, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Run {
        let mut command = Command::new(env!("CARGO_BIN_EXE_klaxon"));
        command
            .args(args)
            .env_remove("KLAXON_URL")
            .env_remove("KLAXON_KEY")
            .env_remove("KLAXON_PROFILE")
            .env("KLAXON_PROFILES", self.home.path().join("profiles.toml"))
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("klaxon runs");
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        let output = child.wait_with_output().unwrap();
        Run {
            code: output.status.code().expect("an exit code"),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        }
    }

    fn run(&self, args: &[&str]) -> Run {
        let mut full = vec!["--url", &self.url, "--key", &self.key];
        full.extend_from_slice(args);
        self.bare(&full, "", &[])
    }

    /// A run that must succeed; its JSON answer (`null` when there is none).
    fn json(&self, args: &[&str]) -> Value {
        let mut full = args.to_vec();
        full.extend(["-o", "json"]);
        let run = self.run(&full);
        assert_eq!(run.code, 0, "klaxon {args:?}: {}", run.stderr);
        if run.stdout.is_empty() { Value::Null } else { serde_json::from_str(&run.stdout).expect("JSON on stdout") }
    }

    /// A run that must succeed; its table.
    fn table(&self, args: &[&str]) -> String {
        let run = self.run(args);
        assert_eq!(run.code, 0, "klaxon {args:?}: {}", run.stderr);
        run.stdout
    }

    /// A run that must fail with `code`.
    fn fails(&self, code: i32, args: &[&str]) -> Run {
        let run = self.run(args);
        assert_eq!(run.code, code, "klaxon {args:?}: {}{}", run.stdout, run.stderr);
        run
    }

    /// Writes `contents` to a file of this command line's folder; answers its path.
    fn file(&self, name: &str, contents: impl AsRef<[u8]>) -> String {
        let path = self.home.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path.to_str().unwrap().to_owned()
    }
}

/// The names in the first column of a table, under its header.
fn first_column(table: &str) -> Vec<&str> {
    table.lines().skip(1).filter_map(|l| l.split_whitespace().next()).collect()
}

#[test]
fn tenants_and_keys_with_errors_and_exit_codes() {
    let server = Server::start();
    let admin = Cli::new(&server, ADMIN);

    let created = admin.json(&["tenants", "create", "-d", r#"{"name": "acme"}"#]);
    let tenant = created["tenant"]["id"].as_str().unwrap().to_owned();
    let tenant_admin = created["admin_key"]["token"].as_str().unwrap().to_owned();
    let list = admin.table(&["tenants", "list"]);
    assert!(list.starts_with("ID "), "{list}");
    assert!(list.lines().any(|l| l.starts_with(&tenant) && l.contains(" acme ")), "{list}");
    admin.json(&["tenants", "update", &tenant, "-d", r#"{"name": "Acme Inc"}"#]);
    let shown = admin.table(&["tenants", "get", &tenant]);
    assert!(shown.lines().any(|l| l.starts_with("name ") && l.ends_with(" Acme Inc")), "{shown}");

    // The API's refusal: exit 4, the field named on stderr, the error JSON on stdout with -o json.
    let refused = admin.fails(4, &["tenants", "create", "-d", r#"{"nam": "typo"}"#]);
    assert!(refused.stderr.contains("HTTP 400 invalid_request at `nam`"), "{}", refused.stderr);
    let refused = admin.fails(4, &["tenants", "update", &tenant, "-d", r#"{"name": ""}"#, "-o", "json"]);
    let body: Value = serde_json::from_str(&refused.stdout).unwrap();
    assert_eq!(body["error"]["field"], "name", "{body}");
    // A body that is not JSON is caught before anything is sent: exit 1, no tenant made.
    let local = admin.fails(1, &["tenants", "create", "-d", "{name: acme}"]);
    assert!(local.stderr.contains("--data is not JSON"), "{}", local.stderr);
    let local = admin.fails(1, &["tenants", "create", "-f", "/nonexistent/tenant.json"]);
    assert!(local.stderr.contains("/nonexistent/tenant.json"), "{}", local.stderr);
    assert_eq!(admin.json(&["tenants", "list"])["items"].as_array().unwrap().len(), 1);
    // Usage errors (a missing body, an unknown verb) are exit 2; nothing reaches the server.
    admin.fails(2, &["tenants", "create"]);
    admin.fails(2, &["tenants", "rename", &tenant]);
    let serve = admin.bare(&["serve", "--url", &server.base], "", &[]);
    assert_eq!(serve.code, 2, "the client's flags are not the server's: {}", serve.stderr);
    // The connection flags may also follow the verb.
    let after = admin.bare(&["tenants", "list", "--key", ADMIN, "--url", &server.base, "-o", "json"], "", &[]);
    assert_eq!(after.code, 0, "{}", after.stderr);
    // Not found 5, not allowed 6, unreachable 3.
    admin.fails(5, &["tenants", "get", "ten_missing"]);
    let denied = Cli::new(&server, &tenant_admin).fails(6, &["tenants", "list"]);
    assert!(denied.stderr.contains("HTTP 403 forbidden"), "{}", denied.stderr);
    let anonymous = admin.bare(&["--url", &server.base, "tenants", "list"], "", &[]);
    assert_eq!(anonymous.code, 6, "{}", anonymous.stderr);
    let closed = admin.bare(&["--url", "http://127.0.0.1:9", "--key", ADMIN, "tenants", "list"], "", &[]);
    assert_eq!(closed.code, 3, "{}", closed.stderr);
    assert!(closed.stderr.contains("cannot reach http://127.0.0.1:9"), "{}", closed.stderr);

    // Keys, as the tenant's admin: the token shown once, whole, then listed without it.
    let cli = Cli::new(&server, &tenant_admin);
    let key = cli.table(&["keys", "create", "-d", r#"{"name": "ci", "role": "editor"}"#]);
    let token = key.lines().find_map(|l| l.strip_prefix("token")).unwrap().trim();
    assert!(token.starts_with("klx_key_") && token.len() > 70, "{key}");
    let id = key.lines().find_map(|l| l.strip_prefix("id")).unwrap().trim().to_owned();
    let keys = cli.table(&["keys", "list"]);
    assert!(keys.lines().any(|l| l.starts_with(&id) && l.contains(" editor ")), "{keys}");
    assert!(!keys.contains(token), "{keys}");
    let editor = Cli::new(&server, token);
    editor.fails(6, &["keys", "list"]);
    let role = cli.fails(4, &["keys", "create", "-d", r#"{"name": "x", "role": "owner"}"#]);
    assert!(role.stderr.contains("at `role`"), "{}", role.stderr);
    assert_eq!(cli.json(&["keys", "delete", &id]), Value::Null);
    editor.fails(6, &["rules", "list"]);

    admin.json(&["tenants", "delete", &tenant]);
    admin.fails(5, &["tenants", "get", &tenant]);
    // This server's clock is not manual: it can be read, not moved.
    assert!(admin.json(&["clock", "get"])["now"].is_string());
    admin.fails(4, &["clock", "set", "-d", r#"{"now": "2030-01-01T00:00:00Z"}"#]);
}

#[test]
fn profiles_choose_the_server_and_key() {
    let server = Server::start();
    let (_, key) = server.tenant("acme");
    let cli = Cli::new(&server, &key);
    cli.file(
        "profiles.toml",
        format!(
            "default = \"acme\"\n\n[profiles.acme]\nurl = \"{}/\"\nkey = \"{key}\"\n\n\
             [profiles.platform]\nurl = \"{}\"\nkey = \"{ADMIN}\"\n",
            server.base, server.base
        ),
    );
    // The default profile, then a named one, then flags and environment over a profile.
    let rules = cli.bare(&["rules", "list"], "", &[]);
    assert_eq!(rules.code, 0, "{}", rules.stderr);
    let tenants = cli.bare(&["--profile", "platform", "tenants", "list", "-o", "json"], "", &[]);
    assert_eq!(tenants.code, 0, "{}", tenants.stderr);
    assert_eq!(serde_json::from_str::<Value>(&tenants.stdout).unwrap()["items"][0]["name"], "acme");
    let overridden = cli.bare(&["--profile", "platform", "--key", &key, "tenants", "list"], "", &[]);
    assert_eq!(overridden.code, 6, "{}", overridden.stderr);
    let elsewhere = cli.bare(&["rules", "list"], "", &[("KLAXON_URL", "http://127.0.0.1:9")]);
    assert_eq!(elsewhere.code, 3, "{}", elsewhere.stderr);
    // A profile the file does not have, and a file that is not TOML: exit 1, said plainly.
    let unknown = cli.bare(&["--profile", "staging", "rules", "list"], "", &[]);
    assert_eq!(unknown.code, 1);
    assert!(unknown.stderr.contains("no profile `staging` (the file has: acme, platform)"), "{}", unknown.stderr);
    cli.file("profiles.toml", "[profiles.acme\n");
    let broken = cli.bare(&["rules", "list"], "", &[]);
    assert_eq!(broken.code, 1);
    assert!(broken.stderr.contains("profiles.toml"), "{}", broken.stderr);
}

#[test]
fn plugins_upload_pin_invoke_logs_and_delete() {
    let server = Server::start();
    let (_, key) = server.tenant("acme");
    let cli = Cli::new(&server, &key);
    let wow = cli.file("wow.wasm", &guests().week_over_week_drop);
    let zscore = cli.file("zscore.wasm", &guests().zscore_anomaly);
    let hostile = cli.file("hostile.wasm", &guests().hostile);

    // Version 1 another condition, version 2 the week-over-week drop.
    let uploaded = cli.json(&["plugins", "upload", &zscore, "--name", "wow", "--kind", "condition"]);
    assert_eq!(uploaded["version"]["version"], 1, "{uploaded}");
    cli.json(&["plugins", "upload", &wow, "--name", "wow", "--kind", "condition"]);
    let versions = cli.table(&["plugins", "versions", "wow"]);
    assert!(versions.starts_with("VERSION  WIT_VERSION"), "{versions}");
    let mut numbers = first_column(&versions);
    numbers.sort();
    assert_eq!(numbers, ["1", "2"], "{versions}");
    assert_eq!(cli.json(&["plugins", "pin", "wow", "1"])["active_version"], 1);
    assert_eq!(cli.json(&["plugins", "get", "wow"])["pinned_version"], 1);
    let latest = cli.json(&["plugins", "pin", "wow", "latest"]);
    assert_eq!((&latest["active_version"], &latest["pinned_version"]), (&json!(2), &Value::Null));
    cli.fails(2, &["plugins", "pin", "wow", "two"]);
    let missing = cli.fails(4, &["plugins", "pin", "wow", "9"]);
    assert!(missing.stderr.contains("at `pinned_version`"), "{}", missing.stderr);
    assert_eq!(cli.json(&["plugins", "update", "wow", "-d", r#"{"enabled": false}"#])["enabled"], false);
    cli.json(&["plugins", "update", "wow", "-d", r#"{"enabled": true}"#]);
    // Pinning away and back unloaded version 2: no code is loaded until its next call.
    let listed = cli.table(&["plugins", "list"]);
    assert!(listed.lines().any(|l| l.split_whitespace().eq(["wow", "condition", "true", "2", "-", "2"])), "{listed}");

    // Invoke with a JSON input from a file and from standard input.
    let input = json!({ "rule": { "id": "rule_1", "name": "r" }, "config": { "drop_percent": 20 },
                        "value": { "current": 50, "previous": 100 } });
    let path = cli.file("input.json", input.to_string());
    let report = cli.json(&["plugins", "invoke", "wow", "-f", &path]);
    assert_eq!(report["output"]["fire"], true, "{report}");
    let compiled = cli.json(&["plugins", "get", "wow"])["compiled"].clone();
    assert!(compiled == "baseline" || compiled == "optimized", "loaded by the call: {compiled}");
    let piped = cli.bare(
        &["--url", &cli.url, "--key", &key, "plugins", "invoke", "wow", "-f", "-", "-o", "json"],
        &json!({ "function": "validate", "config": { "drop_percent": 20 } }).to_string(),
        &[],
    );
    assert_eq!(piped.code, 0, "{}", piped.stderr);
    assert_eq!(serde_json::from_str::<Value>(&piped.stdout).unwrap()["output"]["valid"], true);
    let invalid = json!({ "function": "validate", "config": { "drop_percent": 150 } }).to_string();
    let refused = cli.fails(4, &["plugins", "invoke", "wow", "-d", &invalid]);
    assert!(refused.stderr.contains("HTTP 422 plugin_error"), "{}", refused.stderr);
    let bad = cli.fails(4, &["plugins", "invoke", "wow", "-d", r#"{"function": "explode"}"#]);
    assert!(bad.stderr.contains("HTTP 400"), "{}", bad.stderr);

    // A hostile call's failure is exit 4 with the limit named, and is in the plugin's log.
    cli.json(&["plugins", "upload", &hostile, "--name", "hostile", "--kind", "condition"]);
    let looping = json!({ "rule": { "id": "rule_1", "name": "r" }, "config": { "behaviour": "infinite-loop" } });
    let fuel = cli.fails(4, &["plugins", "invoke", "hostile", "-d", &looping.to_string()]);
    assert!(fuel.stderr.contains("plugin_fuel_exhausted (limit: fuel)"), "{}", fuel.stderr);
    let logs = cli.table(&["plugins", "logs", "hostile", "--level", "error", "--limit", "5"]);
    assert!(logs.starts_with("AT ") && logs.contains("plugin_fuel_exhausted"), "{logs}");
    let bad_level = cli.fails(4, &["plugins", "logs", "hostile", "--limit", "0"]);
    assert!(bad_level.stderr.contains("at `limit`"), "{}", bad_level.stderr);

    // Not a component: refused by the server; a file that is not there: refused here.
    let junk = cli.file("junk.wasm", b"not wasm");
    let refused = cli.fails(4, &["plugins", "upload", &junk, "--name", "junk", "--kind", "condition"]);
    assert!(refused.stderr.contains("not_a_component"), "{}", refused.stderr);
    cli.fails(1, &["plugins", "upload", "/nonexistent.wasm", "--name", "x", "--kind", "condition"]);
    cli.fails(2, &["plugins", "upload", &wow, "--name", "wow"]);

    assert_eq!(cli.json(&["plugins", "delete", "wow"]), Value::Null);
    cli.fails(5, &["plugins", "get", "wow"]);
    assert_eq!(first_column(&cli.table(&["plugins", "list"])), ["hostile"]);
}

#[test]
fn rules_channels_events_and_notifications() {
    let s = Setup::start("");
    let cli = Cli::new(&s.server, &s.key);
    let receiver = Receiver::start();
    let hook = json!({ "name": "ops", "kind": "webhook", "url": receiver.url }).to_string();

    // Channels: check before saving, create, preview, send a test, rotate the secret.
    assert!(cli.json(&["channels", "check", "-d", &hook]).is_object());
    let bad_url = cli.fails(4, &["channels", "check", "-d", r#"{"name": "x", "kind": "webhook", "url": "nope"}"#]);
    assert!(bad_url.stderr.contains("at `url`"), "{}", bad_url.stderr);
    let channel = cli.json(&["channels", "create", "-d", &hook]);
    let channel_id = channel["id"].as_str().unwrap().to_owned();
    let preview = cli.json(&["channels", "preview", &channel_id, "-d", r#"{"message": "Hello from the CLI"}"#]);
    assert!(preview["payload"].to_string().contains("Hello from the CLI"), "{preview}");
    assert!(receiver.requests().is_empty(), "a preview sends nothing");
    cli.json(&["channels", "test", &channel_id]);
    assert_eq!(receiver.wait_for(1).len(), 1);
    cli.json(&["channels", "rotate-secret", &channel_id]);
    let channels = cli.table(&["channels", "list"]);
    assert!(channels.lines().any(|l| l.split_whitespace().eq([channel_id.as_str(), "ops", "webhook", "true"])));
    let renamed = json!({ "name": "ops-2", "kind": "webhook", "url": receiver.url }).to_string();
    assert_eq!(cli.json(&["channels", "replace", &channel_id, "-d", &renamed])["name"], "ops-2");
    assert_eq!(cli.json(&["channels", "get", &channel_id])["name"], "ops-2");
    cli.fails(5, &["channels", "get", "chn_missing"]);

    // A rule from a file, an event from standard input, the notification it made.
    let rule = json!({ "name": "signups", "scope": { "type": "each" }, "channels": [channel_id],
                       "condition": { "kind": "event_match", "matches": [{ "event_type": "signup" }] } });
    let rule = cli.json(&["rules", "create", "-f", &cli.file("rule.json", rule.to_string())]);
    let rule_id = rule["id"].as_str().unwrap().to_owned();
    assert_eq!(cli.json(&["rules", "get", &rule_id])["name"], "signups");
    let rules = cli.table(&["rules", "list"]);
    assert!(rules.lines().any(|l| l.starts_with(&rule_id) && l.contains("event_match")), "{rules}");
    let bad_rule = cli.fails(4, &["rules", "create", "-d", r#"{"name": "x", "condition": {"kind": "nope"}}"#]);
    assert!(bad_rule.stderr.contains("at `condition"), "{}", bad_rule.stderr);
    cli.json(&["customers", "put", "cus_1", "-d", r#"{"name": "First", "fields": {"plan": "pro"}}"#]);
    let bad_fields = cli.fails(4, &["customers", "put", "cus_2", "-d", r#"{"fields": ["pro"]}"#]);
    assert!(bad_fields.stderr.contains("at `fields`"), "{}", bad_fields.stderr);
    let no_events = cli.fails(4, &["events", "send", "-d", r#"{"event": []}"#]);
    assert!(no_events.stderr.contains("HTTP 400"), "{}", no_events.stderr);
    let events =
        json!({ "events": [{ "id": "ev1", "customer_id": "cus_1", "type": "signup", "timestamp": s.at("PT1M") }] });
    let sent = cli.bare(&["--url", &cli.url, "--key", &s.key, "events", "send", "-f", "-"], &events.to_string(), &[]);
    assert_eq!(sent.code, 0, "{}", sent.stderr);
    assert!(sent.stdout.lines().any(|l| l.split_whitespace().eq(["notifications", "1"])), "{}", sent.stdout);
    assert!(cli.table(&["events", "types"]).lines().any(|l| l.starts_with("signup ")));
    receiver.wait_for(2);

    let listed = cli.json(&["notifications", "list", "--rule-id", &rule_id, "--limit", "1"]);
    let notification = listed["items"][0]["id"].as_str().unwrap().to_owned();
    assert!(listed["next_before"].is_string(), "a full page points at the next: {listed}");
    let table = cli.run(&["notifications", "list", "--rule-id", &rule_id, "--limit", "1"]);
    assert!(table.stdout.starts_with("ID ") && table.stdout.contains(&notification), "{}", table.stdout);
    assert!(table.stderr.contains(&format!("more: add --before {notification}")), "{}", table.stderr);
    cli.fails(4, &["notifications", "list", "--status", "lost"]);
    assert_eq!(cli.json(&["notifications", "get", &notification])["id"], notification.as_str());
    let attempts = cli.table(&["notifications", "attempts", &notification]);
    assert!(attempts.lines().nth(1).is_some_and(|l| l.starts_with(&channel_id) && l.contains(" 200 ")), "{attempts}");
    cli.json(&["notifications", "resend", &notification]);
    receiver.wait_for(3);
    let conflict = cli.fails(4, &["channels", "delete", &channel_id]);
    assert!(conflict.stderr.contains("HTTP 409 conflict"), "{}", conflict.stderr);

    // The rule's state and a dry run; replace and delete.
    assert!(cli.json(&["rules", "states", &rule_id]).is_object());
    assert!(cli.json(&["rules", "evaluate", &rule_id]).is_object());
    let renamed = json!({ "name": "signups, renamed", "scope": { "type": "each" }, "channels": [channel_id],
                          "condition": { "kind": "event_match", "matches": [{ "event_type": "signup" }] } });
    let replaced = cli.json(&["rules", "replace", &rule_id, "-d", &renamed.to_string()]);
    assert_eq!(replaced["name"], "signups, renamed", "{replaced}");
    cli.json(&["rules", "delete", &rule_id]);
    cli.fails(5, &["rules", "get", &rule_id]);
    cli.json(&["channels", "delete", &channel_id]);

    // Customers, and the clock of a manual-clock server (platform admin).
    assert_eq!(first_column(&cli.table(&["customers", "list"])), ["cus_1"]);
    assert_eq!(cli.json(&["customers", "get", "cus_1"])["fields"]["plan"], "pro");
    assert_eq!(cli.table(&["customers", "cohorts", "cus_1"]), "COHORT_ID  NAME  ENTERED_AT\n");
    cli.json(&["customers", "delete", "cus_1"]);
    cli.fails(5, &["customers", "get", "cus_1"]);
    let admin = Cli::new(&s.server, ADMIN);
    admin.json(&["clock", "set", "-d", &json!({ "now": s.at("PT2H") }).to_string()]);
    assert_eq!(admin.json(&["clock", "get"])["now"], s.at("PT2H").as_str());
}

#[test]
fn routing_cohorts_and_incidents() {
    let s = Setup::start("");
    let cli = Cli::new(&s.server, &s.key);
    let receiver = Receiver::start();
    let channel = cli.json(&[
        "channels",
        "create",
        "-d",
        &json!({ "name": "ops", "kind": "webhook", "url": receiver.url }).to_string(),
    ]);
    let channel_id = channel["id"].as_str().unwrap();

    // Recipients, categories, subscriptions.
    let ann =
        cli.json(&["recipients", "create", "-d", r#"{"name": "Ann", "email": "ann@example.com", "groups": ["ops"]}"#]);
    let ann_id = ann["id"].as_str().unwrap();
    let bad = cli.fails(4, &["recipients", "create", "-d", r#"{"name": "Bob", "email": "not an address"}"#]);
    assert!(bad.stderr.contains("at `email`"), "{}", bad.stderr);
    assert!(cli.table(&["recipients", "list"]).lines().any(|l| l.split_whitespace().eq([
        ann_id,
        "Ann",
        "ann@example.com"
    ])));
    cli.json(&[
        "recipients",
        "replace",
        ann_id,
        "-d",
        r#"{"name": "Ann B", "email": "ann@example.com", "groups": ["ops"]}"#,
    ]);
    assert_eq!(cli.json(&["recipients", "get", ann_id])["name"], "Ann B");
    cli.json(&["categories", "put", "deploys", "-d", r#"{"description": "Releases"}"#]);
    assert_eq!(cli.json(&["categories", "get", "deploys"])["description"], "Releases");
    assert!(
        cli.table(&["categories", "list"]).lines().any(|l| l.split_whitespace().eq(["deploys", "false", "Releases"]))
    );
    let subscription = json!({ "name": "ops", "group": "ops", "channels": { "deploys": [channel_id] } });
    let subscription = cli.json(&["subscriptions", "create", "-d", &subscription.to_string()]);
    let subscription_id = subscription["id"].as_str().unwrap();
    cli.json(&["subscriptions", "test", subscription_id]);
    receiver.wait_for(1);
    let replacement =
        json!({ "name": "ops", "group": "ops", "channels": { "deploys": [channel_id] }, "min_severity": "critical" });
    assert_eq!(
        cli.json(&["subscriptions", "replace", subscription_id, "-d", &replacement.to_string()])["min_severity"],
        "critical"
    );
    assert!(cli.table(&["subscriptions", "list"]).contains("critical"));
    assert_eq!(cli.json(&["subscriptions", "get", subscription_id])["name"], "ops");
    cli.fails(4, &["categories", "delete", "deploys"]);
    cli.json(&["subscriptions", "delete", subscription_id]);
    cli.json(&["categories", "delete", "deploys"]);
    cli.json(&["recipients", "delete", ann_id]);

    // Silences: created, listed, expired (and still listed).
    let silence = json!({ "matchers": [{ "field": "customer.id", "op": "=", "value": "cus_1" }],
                          "ends_at": s.at("PT1H"), "comment": "known" });
    let silence = cli.json(&["silences", "create", "-d", &silence.to_string()]);
    let silence_id = silence["id"].as_str().unwrap();
    assert!(cli.table(&["silences", "list"]).lines().any(|l| l.starts_with(silence_id) && l.ends_with("known")));
    cli.json(&["silences", "expire", silence_id]);
    assert!(cli.json(&["silences", "get", silence_id]).is_object());
    cli.fails(4, &["silences", "create", "-d", r#"{"matchers": [], "ends_at": "soon"}"#]);

    // Incidents: opened, filtered, updated to resolved.
    let incident =
        json!({ "title": "API latency", "category": "infrastructure", "severity": "critical", "message": "Slow" });
    let incident = cli.json(&["incidents", "create", "-d", &incident.to_string()]);
    let incident_id = incident["id"].as_str().unwrap();
    assert_eq!(first_column(&cli.table(&["incidents", "list", "--status", "investigating"])), [incident_id]);
    let wrong = cli.fails(4, &["incidents", "update", incident_id, "-d", r#"{"status": "scheduled"}"#]);
    assert!(wrong.stderr.contains("at `status`"), "{}", wrong.stderr);
    cli.json(&["incidents", "update", incident_id, "-d", r#"{"status": "resolved", "message": "Fixed"}"#]);
    assert_eq!(cli.json(&["incidents", "get", incident_id])["status"], "resolved");
    assert!(first_column(&cli.table(&["incidents", "list", "--status", "investigating"])).is_empty());
    let closed = cli.fails(4, &["incidents", "update", incident_id, "-d", r#"{"message": "Again"}"#]);
    assert!(closed.stderr.contains("HTTP 409 conflict"), "{}", closed.stderr);

    // Cohorts: a customer seen with the field is a member.
    cli.json(&["customers", "put", "cus_1", "-d", r#"{"name": "First", "fields": {"plan": "pro"}}"#]);
    let events =
        json!({ "events": [{ "id": "ev1", "customer_id": "cus_1", "type": "login", "timestamp": s.at("PT1M") }] });
    cli.json(&["events", "send", "-d", &events.to_string()]);
    let cohort = json!({ "name": "Pro", "filters": [{ "field": "customer.plan", "op": "=", "value": "pro" }] });
    let cohort = cli.json(&["cohorts", "create", "-d", &cohort.to_string()]);
    let cohort_id = cohort["id"].as_str().unwrap();
    let unnamed = json!({ "name": "Plans", "filters": [{ "field": "plan", "op": "=", "value": "pro" }] });
    let refused = cli.fails(4, &["cohorts", "create", "-d", &unnamed.to_string()]);
    assert!(refused.stderr.contains("at `filters[0].field`: must read `customer.<field>`"), "{}", refused.stderr);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while first_column(&cli.table(&["cohorts", "members", cohort_id])) != ["cus_1"] {
        assert!(std::time::Instant::now() < deadline, "cus_1 never entered the cohort");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(first_column(&cli.table(&["customers", "cohorts", "cus_1"])), [cohort_id]);
    assert!(cli.table(&["cohorts", "list"]).lines().any(|l| l.starts_with(cohort_id) && l.contains(" ready ")));
    let renamed = json!({ "name": "Pro plan", "filters": [{ "field": "customer.plan", "op": "=", "value": "pro" }] });
    assert_eq!(cli.json(&["cohorts", "replace", cohort_id, "-d", &renamed.to_string()])["name"], "Pro plan");
    assert_eq!(cli.json(&["cohorts", "get", cohort_id])["name"], "Pro plan");
    cli.json(&["cohorts", "delete", cohort_id]);
    cli.fails(5, &["cohorts", "members", cohort_id]);
}
