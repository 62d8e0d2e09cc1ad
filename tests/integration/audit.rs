//! The audit trail: each change made through the API kept once, with its actor (key, console
//! session, platform admin), its address and the fields it changed; no secret in it; readable by
//! a tenant's admins and, for the platform's changes, by the platform admin only.

use reqwest::Method;
use serde_json::{Value, json};

use crate::console::{sign_in, with_cookie};
use crate::delivery::Setup;
use crate::support::ADMIN;

/// A key's id, from its token (`klx_<id>.<secret>`).
fn key_id(token: &str) -> String {
    token.trim_start_matches("klx_").split('.').next().unwrap().to_string()
}

fn trail(s: &Setup, query: &str) -> Vec<Value> {
    let (status, page) = s.server.call(Method::GET, &format!("/v1/audit{query}"), &s.key, None);
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

#[test]
fn each_change_is_kept_once_with_its_actor_and_what_it_changed_and_no_secret() {
    let s = Setup::start("");
    let editor = s.server.key(&s.key, "editor");
    let call = |method: Method, path: &str, body: Option<Value>| {
        let (status, answer) = s.server.call(method, path, &editor, body);
        assert!((200..300).contains(&status), "{path}: {status} {answer}");
        answer
    };
    let channel = call(
        Method::POST,
        "/v1/channels",
        Some(json!({ "name": "ops", "kind": "webhook", "url": "https://hooks.example.com/a" })),
    );
    let id = channel["id"].as_str().unwrap().to_string();
    let mut renamed = channel.clone();
    for shown in ["id", "secrets", "created_at", "updated_at", "created_by", "failing_since", "disabled_reason"] {
        renamed.as_object_mut().unwrap().remove(shown);
    }
    renamed["name"] = json!("ops webhook");
    call(Method::PUT, &format!("/v1/channels/{id}"), Some(renamed));
    call(Method::POST, &format!("/v1/channels/{id}/rotate-secret"), Some(json!({})));
    let rule = call(
        Method::POST,
        "/v1/rules",
        Some(json!({ "name": "Signups", "scope": { "type": "each" }, "channels": [id],
                     "condition": { "kind": "event_match", "matches": [{ "event_type": "signup" }] } })),
    );
    let rule_id = rule["id"].as_str().unwrap().to_string();
    call(Method::DELETE, &format!("/v1/rules/{rule_id}"), None);
    // What changes nothing is not kept: events, previews, checks.
    let now = s.server.call(Method::GET, "/v1/clock", ADMIN, None).1["now"].clone();
    let event = json!({ "id": "e1", "customer_id": "c1", "type": "signup", "timestamp": now });
    let (status, body) = s.server.call(Method::POST, "/v1/events", &s.key, Some(json!({ "events": [event] })));
    assert_eq!(status, 200, "{body}");
    call(Method::POST, &format!("/v1/channels/{id}/preview"), Some(json!({})));

    // The tenant's admin key made the editor's key; the editor the rest. Newest first.
    let entries = trail(&s, "");
    let seen: Vec<(&str, &str)> =
        entries.iter().map(|e| (e["resource"].as_str().unwrap(), e["action"].as_str().unwrap())).collect();
    assert_eq!(
        seen,
        [
            ("rules", "delete"),
            ("rules", "create"),
            ("channels", "update"),
            ("channels", "update"),
            ("channels", "create"),
            ("keys", "create")
        ],
        "{entries:#?}"
    );
    let by_editor = json!({ "kind": "key", "id": key_id(&editor) });
    assert!(entries[..5].iter().all(|e| e["actor"] == by_editor), "{entries:#?}");
    assert_eq!(entries[5]["actor"], json!({ "kind": "key", "id": key_id(&s.key) }));
    assert!(entries.iter().all(|e| e["address"] == "127.0.0.1"), "{entries:#?}");
    // The rename changed the name and nothing else; the rotation the secrets, not shown.
    assert_eq!(entries[3]["object"], id.as_str());
    assert_eq!(entries[3]["operation"], "PUT /v1/channels/{id}");
    assert_eq!(entries[3]["changes"], json!([{ "field": "name", "old": "ops", "new": "ops webhook" }]));
    assert_eq!(entries[2]["operation"], "POST /v1/channels/{id}/rotate-secret");
    assert!(entries[2]["changes"].as_array().unwrap().iter().all(|c| c["new"] == "[redacted]"), "{}", entries[2]);
    // A creation shows the new values, a deletion the old ones.
    let created = entries[1]["changes"].as_array().unwrap();
    assert!(created.contains(&json!({ "field": "name", "old": null, "new": "Signups" })), "{created:?}");
    let deleted = entries[0]["changes"].as_array().unwrap();
    assert!(deleted.contains(&json!({ "field": "name", "old": "Signups", "new": null })), "{deleted:?}");
    assert_eq!(entries[0]["object"], rule_id.as_str());

    // No secret is in the trail: not the signing secrets, not the editor's token.
    let text = serde_json::to_string(&entries).unwrap();
    for secret in ["whsec_", editor.as_str(), "klx_"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    // Filters and pages.
    assert_eq!(trail(&s, "?resource=channels").len(), 3);
    assert_eq!(trail(&s, &format!("?object={id}")).len(), 3);
    assert_eq!(trail(&s, &format!("?actor={}", key_id(&s.key))).len(), 1);
    let first = trail(&s, "?limit=4");
    let (_, page) = s.server.call(Method::GET, "/v1/audit?limit=4", &s.key, None);
    let rest = trail(&s, &format!("?before={}", page["next_before"].as_str().unwrap()));
    assert_eq!([first, rest].concat(), entries);

    // Who may read it: the tenant's admins; not an editor or a viewer; not another tenant.
    let viewer = s.server.key(&s.key, "viewer");
    for key in [&editor, &viewer] {
        let (status, body) = s.server.call(Method::GET, "/v1/audit", key, None);
        assert_eq!(status, 403, "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("audit:read"), "{body}");
    }
    let (_, other) = s.server.tenant("globex");
    assert_eq!(s.server.call(Method::GET, "/v1/audit", &other, None).1["items"], json!([]));
}

#[test]
fn a_console_session_s_changes_and_the_platform_admin_s_are_kept_as_theirs() {
    let s = Setup::start("");
    let (cookie, csrf) = sign_in(&s.server, &s.key);
    let (status, body) = with_cookie(
        &s.server,
        Method::POST,
        "/v1/silences",
        &cookie,
        Some(&csrf),
        Some(json!({ "matchers": [{ "field": "customer.id", "op": "=", "value": "c1" }],
                     "ends_at": "2031-01-01T00:00:00Z", "comment": "migration" })),
    );
    assert_eq!(status, 201, "{body}");
    let entries = trail(&s, "");
    assert_eq!(entries[0]["actor"], json!({ "kind": "session", "id": key_id(&s.key) }), "{entries:#?}");
    assert_eq!((&entries[0]["resource"], &entries[0]["object"]), (&json!("silences"), &body["id"]));

    // The platform admin's changes are the platform's trail, readable by it alone.
    let (status, made) = s.server.call(Method::POST, "/v1/tenants", ADMIN, Some(json!({ "name": "globex" })));
    assert_eq!(status, 201, "{made}");
    let (status, page) = s.server.call(Method::GET, "/v1/admin/audit?resource=tenants", ADMIN, None);
    assert_eq!(status, 200, "{page}");
    let tenants = page["items"].as_array().unwrap();
    assert_eq!(tenants.len(), 2, "acme's and globex's creation: {page:#}");
    assert_eq!(tenants[0]["actor"], json!({ "kind": "platform" }));
    assert_eq!(tenants[0]["object"], made["tenant"]["id"]);
    let text = page.to_string();
    assert!(!text.contains(made["admin_key"]["token"].as_str().unwrap()), "the new admin key's token: {text}");
    assert_eq!(s.server.call(Method::GET, "/v1/admin/audit", &s.key, None).0, 403);
    assert!(trail(&s, "?resource=tenants").is_empty(), "a tenant does not see the platform's trail");
}
