//! Plugins written in other languages than Rust, built from source by the test setup: each
//! language's example condition drives a rule and its example template makes a channel's
//! payload, against the real server; its hostile fixtures are contained with the limit named.

use reqwest::Method;
use serde_json::{Value, json};

use crate::delivery::Setup;
use crate::receivers::{Receiver, signature_valid};
use crate::support::{
    ADMIN, LanguageGuests, Server, c_guests, evaluation, guests, javascript_guests, python_guests, workspace_root,
};

/// A rule over each customer's hours in the last hour, judged by the condition plugin `plugin`,
/// notifying `channel`.
fn usage_rule(s: &Setup, plugin: &str, config: Value, channel: &Value) -> (u16, Value) {
    s.server.call(
        Method::POST,
        "/v1/rules",
        &s.key,
        Some(json!({
            "name": "Over the plan's limit", "scope": { "type": "each" }, "channels": [channel["id"]],
            "condition": { "kind": "plugin", "plugin": plugin, "config": config, "window": { "rolling": "1h" },
                           "metric": { "event_types": ["usage"], "aggregate": "sum", "property": "hours" } },
        })),
    )
}

fn customer(s: &Setup, id: &str, fields: Value) {
    let (status, body) =
        s.server.call(Method::PUT, &format!("/v1/customers/{id}"), &s.key, Some(json!({ "fields": fields })));
    assert!(status == 200 || status == 201, "{body}");
}

fn usage(s: &Setup, id: &str, customer: &str, hours: f64) {
    let now = s.server.call(Method::GET, "/v1/clock", ADMIN, None).1["now"].clone();
    let event = json!({ "id": id, "customer_id": customer, "type": "usage", "timestamp": now, "properties": { "hours": hours } });
    let (status, body) = s.server.call(Method::POST, "/v1/events", &s.key, Some(json!({ "events": [event] })));
    assert_eq!(status, 200, "{body}");
}

#[test]
fn python_condition_and_template_drive_a_rule_and_a_channel() {
    condition_and_template_drive_a_rule_and_a_channel(python_guests());
}

#[test]
fn javascript_condition_and_template_drive_a_rule_and_a_channel() {
    condition_and_template_drive_a_rule_and_a_channel(javascript_guests());
}

#[test]
fn c_condition_and_template_drive_a_rule_and_a_channel() {
    condition_and_template_drive_a_rule_and_a_channel(c_guests());
}

#[test]
fn hostile_python_is_contained_with_the_limit_named() {
    hostile_guest_is_contained_with_the_limit_named(python_guests());
}

#[test]
fn hostile_javascript_is_contained_with_the_limit_named() {
    hostile_guest_is_contained_with_the_limit_named(javascript_guests());
}

#[test]
fn hostile_c_is_contained_with_the_limit_named() {
    hostile_guest_is_contained_with_the_limit_named(c_guests());
}

/// The examples of every language behave alike: the condition picks the limit of the customer's
/// plan, the template renders a compact JSON message.
fn condition_and_template_drive_a_rule_and_a_channel(guests: &LanguageGuests) {
    let s = Setup::start("");
    for (name, kind, component) in
        [("usage-limit", "condition", &guests.condition), ("compact", "template", &guests.template)]
    {
        let (status, body) = s.server.upload(&s.key, name, kind, component);
        assert_eq!(status, 201, "{name}: {body}");
        assert_eq!(body["version"]["wit_version"], guests.wit_version, "{body}");
    }

    // Invoked directly: the condition reads the customer's plan.
    let mut input = evaluation(json!({ "limit": 10, "plans": { "enterprise": 100 } }));
    input["customer"] = json!({ "id": "cus_1", "fields": { "plan": "enterprise" } });
    input["value"] = json!({ "current": 250.0 });
    let (status, body) = s.server.invoke(&s.key, "usage-limit", input);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"]["fire"], true, "{body}");
    assert_eq!(body["output"]["severity"], "critical", "more than twice the limit: {body}");
    assert_eq!(body["output"]["labels"], json!({ "limit": "100", "plan": "enterprise" }));
    let logged = body["logs"][0]["message"].as_str().unwrap_or_default();
    assert!(logged.starts_with("cus_1: 250") && logged.ends_with(" of 100 (enterprise)"), "{body}");

    // The plugin's own validation reaches the tenant at rule save.
    let receiver = Receiver::start();
    let channel =
        s.channel(json!({ "name": "py", "kind": "webhook", "url": receiver.url, "template_plugin": "compact" }));
    let (status, error) = usage_rule(&s, "usage-limit", json!({ "limit": "ten" }), &channel);
    assert_eq!((status, error["error"]["field"].as_str()), (400, Some("condition.config")), "{error}");
    assert!(error["error"]["message"].as_str().unwrap().contains("limit: must be a number"), "{error}");

    // Through a rule and a channel: 20 hours is over the default limit, not the enterprise one.
    let (status, rule) =
        usage_rule(&s, "usage-limit", json!({ "limit": 10, "plans": { "enterprise": 100 } }), &channel);
    assert_eq!(status, 201, "{rule}");
    customer(&s, "small", json!({}));
    customer(&s, "big", json!({ "plan": "enterprise" }));
    usage(&s, "u1", "small", 20.0);
    usage(&s, "u2", "big", 20.0);
    s.clock(&s.at("PT1M"));
    let delivered = receiver.wait_for(1);
    let message = delivered[0].json();
    assert_eq!(message["headline"], "Over the plan's limit: alarm for small", "{message}");
    assert_eq!((message["state"].as_str(), message["value"].as_f64()), (Some("in_alarm"), Some(20.0)));
    assert_eq!(delivered[0].header("x-klaxon-rule"), rule["id"].as_str().unwrap());
    assert!(signature_valid(channel["secrets"][0]["secret"].as_str().unwrap(), &delivered[0]), "signed as any webhook");
    let (_, list) = s.server.call(
        Method::GET,
        &format!("/v1/notifications?rule_id={}", rule["id"].as_str().unwrap()),
        &s.key,
        None,
    );
    let customers: Vec<&str> =
        list["items"].as_array().unwrap().iter().filter_map(|n| n["customer_id"].as_str()).collect();
    assert_eq!(customers, ["small"], "{list}");
}

fn hostile_guest_is_contained_with_the_limit_named(guests: &LanguageGuests) {
    let server = Server::start();
    let (tenant, key) = server.tenant("mallory");
    // Time is plentiful, so the endless loop stops at its fuel even on a machine busy with other
    // tests.
    server.plentiful_time(&tenant);
    assert_eq!(server.upload(&key, "hostile", "condition", &guests.hostile).0, 201);
    for (behaviour, code, limit) in
        [("infinite-loop", "plugin_fuel_exhausted", "fuel"), ("memory-bomb", "plugin_memory_exceeded", "memory_bytes")]
    {
        let (status, body) = server.invoke(&key, "hostile", evaluation(json!({ "behaviour": behaviour })));
        assert_eq!((status, body["error"]["code"].as_str()), (422, Some(code)), "{behaviour}: {body}");
        assert_eq!(body["error"]["limit"], limit, "{behaviour}: {body}");
    }
    // The guest's own error, after both: the plugin still answers.
    let (status, body) = server.invoke(&key, "hostile", evaluation(json!({ "behaviour": "none" })));
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("plugin_error")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("unknown behaviour 'none'"), "{body}");
}

/// Components built against klaxon:plugin@0.1.0 (the JavaScript examples), 0.2.0 (the C examples)
/// and 0.3.0 (the Rust SDK's), in one tenant: each is called with the records of its own
/// version, before and after a restart.
#[test]
fn wit_versions_0_1_0_2_and_0_3_load_side_by_side() {
    let mut server = Server::start();
    let (_, key) = server.tenant("acme");
    let (js, c) = (javascript_guests(), c_guests());
    assert_eq!((js.wit_version, c.wit_version), ("0.1.0", "0.2.0"));
    for (name, kind, component) in [
        ("js-limit", "condition", &js.condition),
        ("js-compact", "template", &js.template),
        ("c-limit", "condition", &c.condition),
        ("c-compact", "template", &c.template),
        ("wow", "condition", &guests().week_over_week_drop),
    ] {
        assert_eq!(server.upload(&key, name, kind, component).0, 201, "{name}");
    }
    let version = |server: &Server, name: &str| {
        let (status, body) = server.call(Method::GET, &format!("/v1/plugins/{name}/versions"), &key, None);
        assert_eq!(status, 200, "{body}");
        body["items"][0].clone()
    };
    let check = |server: &Server| {
        let (old, new) = (version(server, "js-limit"), version(server, "c-limit"));
        assert_eq!((old["wit_version"].as_str(), new["wit_version"].as_str()), (Some("0.1.0"), Some("0.2.0")));
        assert_eq!(old["config_schema"], Value::Null, "0.1.0 has no config-schema");
        assert_eq!(new["config_schema"]["properties"]["limit"]["type"], "number", "{new}");
        assert_eq!(
            (
                version(server, "js-compact")["wit_version"].as_str(),
                version(server, "c-compact")["wit_version"].as_str()
            ),
            (Some("0.1.0"), Some("0.2.0"))
        );
        let wow = version(server, "wow");
        assert_eq!(wow["wit_version"], "0.3.0", "the Rust SDK builds against the newest version");
        assert_eq!(wow["config_schema"]["required"], json!(["drop_percent"]), "{wow}");

        // Conditions: the 0.1.0 one reads fields from JSON text, the 0.2.0 one from typed fields,
        // and both come to the same verdict.
        let mut input = evaluation(json!({ "limit": 10, "plans": { "pro": 1000 } }));
        input["customer"] = json!({ "id": "cus_1", "fields": { "plan": "pro", "seats": 120, "tags": ["a"] } });
        input["value"] = json!({ "current": 250.0 });
        let (status, from_c) = server.invoke(&key, "c-limit", input.clone());
        assert_eq!((status, from_c["output"]["fire"].as_bool()), (200, Some(false)), "{from_c}");
        assert_eq!(from_c["output"]["labels"], json!({ "limit": "1000", "plan": "pro" }));
        let (status, from_js) = server.invoke(&key, "js-limit", input);
        assert_eq!(status, 200, "{from_js}");
        assert_eq!(
            (&from_js["output"]["fire"], &from_js["output"]["labels"]),
            (&from_c["output"]["fire"], &from_c["output"]["labels"])
        );
        let mut input = evaluation(json!({ "drop_percent": 20 }));
        input["value"] = json!({ "current": 700.0, "previous": 1000.0 });
        let (status, body) = server.invoke(&key, "wow", input);
        assert_eq!((status, body["output"]["fire"].as_bool()), (200, Some(true)), "{body}");

        // Templates: a cohort notification's context; only 0.2.0 sees the cohort.
        let member = |id: &str| json!({ "id": id, "fields": { "plan": "pro" }, "at": "2030-01-07T00:00:00Z" });
        let context = json!({
            "tenant": "acme",
            "rule": { "id": "rule_1", "name": "Churn risk", "severity": "warning" },
            "state": { "previous": "ok", "current": "in_alarm" },
            "notification": { "id": "ntf_1", "timestamp": "2030-01-07T00:00:00Z", "url": "/v1/notifications/ntf_1" },
            "cohort": { "id": "coh_1", "name": "New and failing" },
            "entered": [member("cus_1"), member("cus_2")], "exited": [member("cus_3")],
            "entered_count": 2, "exited_count": 1,
        });
        let headline = |name: &str| {
            let (status, body) = server.invoke(&key, name, context.clone());
            assert_eq!(status, 200, "{body}");
            let message: Value = serde_json::from_str(body["output"]["body"].as_str().unwrap()).unwrap();
            message["headline"].as_str().unwrap().to_owned()
        };
        assert_eq!(headline("c-compact"), "New and failing: 2 entered, 1 left");
        assert_eq!(headline("js-compact"), "Churn risk: alarm for all customers", "0.1.0 has no cohort");
    };
    check(&server);
    server.restart();
    check(&server);
}

/// Two components an upload must refuse, built from the hostile C fixture: one whose
/// `config-schema` answers text that is not JSON, and one built against a WIT version this
/// server does not know (the newest one renamed 0.4.0).
#[test]
fn a_schema_that_is_not_json_and_an_unknown_wit_version_are_refused() {
    let root = workspace_root();
    let out = tempfile::tempdir().unwrap();
    let future = out.path().join("wit");
    std::fs::create_dir(&future).unwrap();
    let newest = std::fs::read_to_string(root.join("wit/klaxon.wit")).unwrap();
    std::fs::write(future.join("klaxon.wit"), newest.replace("@0.3.0", "@0.4.0")).unwrap();
    let build = |wasm: &str, env: (&str, &str)| {
        std::process::Command::new("bash")
            .arg(root.join("examples/c/build.sh"))
            .arg("condition")
            .arg(root.join("tests/components/c-hostile/hostile.c"))
            .arg(out.path().join(wasm))
            .env(env.0, env.1)
            .spawn()
            .expect("the C build runs")
    };
    let builds = [
        build("not-json.wasm", ("CFLAGS", "-DSCHEMA_NOT_JSON")),
        build("future.wasm", ("WIT", future.to_str().unwrap())),
    ];
    for mut child in builds {
        assert!(child.wait().unwrap().success(), "a C fixture builds");
    }
    let server = Server::start();
    let (_, key) = server.tenant("acme");
    let refused = |wasm: &str| {
        let (status, body) = server.upload(&key, "odd", "condition", &std::fs::read(out.path().join(wasm)).unwrap());
        assert_eq!(status, 400, "{body}");
        body["error"]["message"].as_str().unwrap().to_owned()
    };
    let message = refused("not-json.wasm");
    assert!(message.contains("its config-schema is not JSON"), "{message}");
    let message = refused("future.wasm");
    assert!(message.contains("built against klaxon:plugin@0.4.0"), "{message}");
    assert!(message.contains("0.3.0 or 0.2.0 or 0.1.0"), "{message}");
    // Nothing of either was kept; the fixture as built normally is accepted.
    let (status, body) = server.call(Method::GET, "/v1/plugins", &key, None);
    assert_eq!((status, body["items"].as_array().map(Vec::len)), (200, Some(0)), "{body}");
    assert_eq!(server.upload(&key, "odd", "condition", &c_guests().hostile).0, 201);
}
