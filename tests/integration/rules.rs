//! Rules: every condition kind and scope is saved and read back; bad rules are refused with the
//! field at fault, and nothing refused is kept.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Server, guests};

/// The design's seed examples, one rule each.
fn seed_rules() -> Vec<Value> {
    let usage_hours = json!({ "event_types": ["usage"], "aggregate": "sum", "property": "hours" });
    let enterprise_license = |event_type: &str| {
        json!({ "event_type": event_type, "filters": [
            { "field": "customer.seats", "op": ">", "value": 99 },
            { "field": "customer.tier", "op": "=", "value": "Enterprise" },
            { "field": "event.license_type", "op": "in", "value": ["paid", "community"] },
        ] })
    };
    vec![
        json!({ "name": "Over 1000 hours a week", "scope": { "type": "each" }, "notify_on_resolve": true,
                "condition": { "kind": "threshold", "metric": usage_hours, "window": { "calendar": "week" }, "operator": ">", "value": 1000 } }),
        json!({ "name": "Usage down 20% week over week", "scope": { "type": "customer", "customer_id": "cus_1" }, "timezone": "Europe/Berlin",
                "condition": { "kind": "percent_change", "metric": usage_hours, "window": { "calendar": "week" }, "direction": "down", "percent": 20 } }),
        json!({ "name": "Past prepaid credits", "scope": { "type": "each" }, "severity": "critical",
                "condition": { "kind": "balance", "metric": { "event_types": ["usage"], "aggregate": "sum", "property": "credits" }, "balance_field": "prepaid_credits" } }),
        json!({ "name": "Quarterly revenue target", "scope": { "type": "all" }, "category": "billing",
                "condition": { "kind": "steps", "metric": { "event_types": ["payment"], "aggregate": "sum", "property": "amount" },
                               "window": { "calendar": "quarter" }, "target": 250000, "steps": [25, 50, 75, 90] } }),
        json!({ "name": "Large enterprise license", "scope": { "type": "each" },
                "condition": { "kind": "event_match", "matches": [enterprise_license("license.activated"), enterprise_license("license.renewed")] } }),
        json!({ "name": "Quiet for 3 days", "scope": { "type": "group", "filters": [{ "field": "customer.tier", "op": "=", "value": "Enterprise" }] },
                "frequency": { "every": "1d" }, "max_per_window": 3,
                "condition": { "kind": "inactivity", "duration": "3d" } }),
        json!({ "name": "Contract ends in 7 days", "scope": { "type": "each" },
                "condition": { "kind": "offset", "field": "contract_end", "offset": "-7d" } }),
        json!({ "name": "Plugin: drop", "scope": { "type": "each" },
                "condition": { "kind": "plugin", "plugin": "wow", "config": { "drop_percent": 20 },
                               "metric": usage_hours, "window": { "rolling": "7d" } } }),
    ]
}

/// A rule as read, less what the server adds: what a client would send back.
fn strip_record_fields(rule: &Value) -> Value {
    let mut rule = rule.clone();
    for field in ["id", "created_by", "created_at", "updated_at", "alerts"] {
        rule.as_object_mut().unwrap().remove(field);
    }
    rule
}

/// Sets the value at a JSON pointer, adding the last key when it is absent.
fn set(rule: &mut Value, pointer: &str, value: Value) {
    let (parent, last) = pointer.rsplit_once('/').unwrap();
    match rule.pointer_mut(parent).unwrap_or_else(|| panic!("{pointer}")) {
        Value::Object(map) => {
            map.insert(last.to_string(), value);
        }
        Value::Array(items) => items[last.parse::<usize>().unwrap()] = value,
        other => panic!("{pointer} lands in {other}"),
    }
}

#[test]
fn every_condition_kind_and_scope_is_kept() {
    let server = Server::start();
    let (_, key) = server.tenant("acme");
    assert_eq!(server.upload(&key, "wow", "condition", &guests().week_over_week_drop).0, 201);

    let mut ids = Vec::new();
    for rule in seed_rules() {
        let (status, saved) = server.call(Method::POST, "/v1/rules", &key, Some(rule.clone()));
        assert_eq!(status, 201, "{rule}: {saved}");
        assert!(saved["id"].as_str().unwrap().starts_with("rul_"));
        assert_eq!(saved["condition"]["kind"], rule["condition"]["kind"]);
        assert_eq!(saved["scope"], rule["scope"]);
        // Saving what was read back changes nothing: the stored form is complete.
        let (status, again) = server.call(Method::POST, "/v1/rules", &key, Some(strip_record_fields(&saved)));
        assert_eq!(status, 201, "{again}");
        assert_eq!(again["condition"], saved["condition"]);
        server.call(Method::DELETE, &format!("/v1/rules/{}", again["id"].as_str().unwrap()), &key, None);
        ids.push(saved["id"].as_str().unwrap().to_string());
    }
    let (_, list) = server.call(Method::GET, "/v1/rules", &key, None);
    assert_eq!(list["items"].as_array().unwrap().len(), 8);

    let (_, first) = server.call(Method::GET, &format!("/v1/rules/{}", ids[0]), &key, None);
    assert_eq!((first["timezone"].as_str(), first["severity"].as_str()), (Some("UTC"), Some("warning")), "defaults");
    assert_eq!(first["frequency"], "once");
    let (_, inactivity) = server.call(Method::GET, &format!("/v1/rules/{}", ids[5]), &key, None);
    assert_eq!(inactivity["frequency"], json!({ "every": "1d" }));

    let mut renamed = seed_rules()[0].clone();
    renamed["name"] = json!("Over 1200 hours a week");
    renamed["condition"]["value"] = json!(1200);
    let (status, saved) = server.call(Method::PUT, &format!("/v1/rules/{}", ids[0]), &key, Some(renamed));
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["name"], "Over 1200 hours a week");
    assert_eq!(saved["condition"]["value"], 1200.0);
    assert_eq!(saved["created_at"], first["created_at"]);

    assert_eq!(server.call(Method::DELETE, &format!("/v1/rules/{}", ids[0]), &key, None).0, 204);
    assert_eq!(server.call(Method::GET, &format!("/v1/rules/{}", ids[0]), &key, None).0, 404);
}

#[test]
fn bad_rules_are_refused_naming_the_field() {
    let server = Server::start();
    let (_, key) = server.tenant("acme");
    server.upload(&key, "wow", "condition", &guests().week_over_week_drop);
    server.upload(&key, "slack", "template", &guests().slack_blocks);
    let seeds = seed_rules();

    let cases: Vec<(usize, &str, Value, &str)> = vec![
        (0, "/name", json!(""), "name"),
        (0, "/condition/metric/property", Value::Null, "condition.metric.property"),
        (0, "/condition/metric/event_types", json!([]), "condition.metric.event_types"),
        (0, "/condition/window", json!({ "rolling": "-1d" }), "condition.window.rolling"),
        (0, "/timezone", json!("Mars/Olympus_Mons"), "timezone"),
        (0, "/max_per_window", json!(0), "max_per_window"),
        (0, "/condition/operator", json!("in"), "condition.operator"),
        (1, "/condition/percent", json!(0), "condition.percent"),
        (3, "/condition/steps", json!([50, 25]), "condition.steps[1]"),
        (3, "/condition/steps", json!([50, 120]), "condition.steps[1]"),
        (4, "/condition/matches/1/filters/0/field", json!("seats"), "condition.matches[1].filters[0].field"),
        (4, "/condition/matches/0/filters/2/value", json!("paid"), "condition.matches[0].filters[2].value"),
        (4, "/notify_on_resolve", json!(true), "notify_on_resolve"),
        (5, "/scope/filters", json!([]), "scope.filters"),
        (5, "/scope/filters/0/field", json!("event.plan"), "scope.filters[0].field"),
        // Inside the tagged `condition`, serde reports errors at `condition`; where the message
        // quotes the value and one place holds it, that place is named. A null names nothing.
        (5, "/condition/duration", json!("3 days"), "condition.duration"),
        (0, "/condition/window", Value::Null, "condition"),
        (6, "/condition/field", json!(""), "condition.field"),
        (7, "/condition/plugin", json!("nope"), "condition.plugin"),
        (7, "/condition/plugin", json!("slack"), "condition.plugin"),
        (7, "/condition/config", json!({ "drop_percent": 200 }), "condition.config"),
    ];
    for (seed, pointer, value, field) in cases {
        let mut rule = seeds[seed].clone();
        set(&mut rule, pointer, value.clone());
        let (status, error) = server.call(Method::POST, "/v1/rules", &key, Some(rule));
        assert_eq!(status, 400, "{pointer} = {value}: {error}");
        assert_eq!(error["error"]["field"], field, "{pointer} = {value}: {error}");
    }

    // The plugin's own words reach the tenant.
    let mut rule = seeds[7].clone();
    rule["condition"]["config"] = json!({ "drop_percent": 200 });
    let (_, error) = server.call(Method::POST, "/v1/rules", &key, Some(rule));
    assert!(error["error"]["message"].as_str().unwrap().contains("drop_percent must be above 0"), "{error}");

    // Unknown kinds and fields are refused too.
    let mut rule = seeds[0].clone();
    rule["condition"]["kind"] = json!("treshold");
    let (status, error) = server.call(Method::POST, "/v1/rules", &key, Some(rule));
    assert_eq!(status, 400);
    assert!(error["error"]["message"].as_str().unwrap().contains("treshold"), "{error}");
    let mut rule = seeds[0].clone();
    rule["notify_on_resolved"] = json!(true);
    assert_eq!(server.call(Method::POST, "/v1/rules", &key, Some(rule)).0, 400);

    let (_, list) = server.call(Method::GET, "/v1/rules", &key, None);
    assert_eq!(list["items"], json!([]), "nothing refused was kept");
}

#[test]
fn rule_roles_and_isolation() {
    let server = Server::start();
    let (_, admin) = server.tenant("alpha");
    let (_, beta) = server.tenant("beta");
    let editor = server.key(&admin, "editor");
    let other_editor = server.key(&admin, "editor");
    let viewer = server.key(&admin, "viewer");
    let rule = seed_rules()[0].clone();

    assert_eq!(server.call(Method::POST, "/v1/rules", &viewer, Some(rule.clone())).0, 403);
    let (status, saved) = server.call(Method::POST, "/v1/rules", &editor, Some(rule.clone()));
    assert_eq!(status, 201);
    let path = format!("/v1/rules/{}", saved["id"].as_str().unwrap());

    assert_eq!(server.call(Method::GET, &path, &viewer, None).0, 200);
    assert_eq!(server.call(Method::PUT, &path, &other_editor, Some(rule.clone())).0, 403);
    assert_eq!(server.call(Method::DELETE, &path, &other_editor, None).0, 403);
    assert_eq!(server.call(Method::PUT, &path, &editor, Some(rule.clone())).0, 200);
    for method in [Method::GET, Method::PUT, Method::DELETE] {
        assert_eq!(server.call(method.clone(), &path, &beta, Some(rule.clone())).0, 404, "{method}");
    }
    assert_eq!(server.call(Method::DELETE, &path, &admin, None).0, 204);
}
