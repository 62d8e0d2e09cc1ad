//! Roles a tenant defines: one permission check for every operation, ownership, and the roles'
//! own lifecycle.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Server, read};

/// "Support Engineer": creates and changes its own subscriptions and silences, reads everyone's
/// and the notification history, and nothing else.
const SUPPORT: &[&str] = &[
    "subscriptions:read",
    "subscriptions:create",
    "subscriptions:update:own",
    "subscriptions:delete:own",
    "silences:read",
    "silences:create",
    "silences:delete:own",
    "notifications:read",
];

fn support_key(server: &Server, admin: &str) -> String {
    let role = json!({ "name": "support-engineer", "description": "Support Engineer", "permissions": SUPPORT });
    let (status, body) = server.call(Method::POST, "/v1/roles", admin, Some(role));
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["built_in"], false);
    server.key(admin, "support-engineer")
}

/// Whether the support role grants `permission` (for some objects at least).
fn granted(permission: &str) -> bool {
    SUPPORT.iter().any(|p| *p == permission || p.strip_suffix(":own") == Some(permission))
}

#[test]
fn every_operation_in_the_openapi_description_is_checked_against_the_role() {
    let server = Server::start();
    let (_, admin) = server.tenant("acme");
    let support = support_key(&server, &admin);
    let (_, openapi) = read(server.request(Method::GET, "/openapi.json", None));
    let mut probed = 0;
    for (path, operations) in openapi["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let Some(permission) = operation["x-permission"].as_str() else { continue };
            let concrete = path.replace("{id}", "nope").replace("{name}", "nope");
            let method: Method = method.to_uppercase().parse().unwrap();
            let (status, body) =
                read(server.request(method.clone(), &concrete, Some(&support)).json(&json!({ "bogus": true })));
            let what = format!("{method} {path} ({permission}): {status} {body}");
            if permission != "platform-admin" && granted(permission) {
                assert!(![401, 403].contains(&status), "allowed, but refused: {what}");
            } else {
                assert_eq!(status, 403, "refused: {what}");
                if permission != "platform-admin" {
                    let message = body["error"]["message"].as_str().unwrap();
                    assert!(message.contains(&format!("`{permission}`")), "the refusal names the permission: {what}");
                }
            }
            probed += 1;
        }
    }
    assert!(probed >= 80, "every operation was probed ({probed})");
}

#[test]
fn the_support_role_changes_only_its_own_subscriptions_and_silences_and_reads_everyones() {
    let server = Server::start();
    let (_, admin) = server.tenant("acme");
    let support = support_key(&server, &admin);
    let create = |key: &str, path: &str, body: Value| {
        let (status, created) = server.call(Method::POST, path, key, Some(body));
        assert_eq!(status, 201, "{path}: {created}");
        created["id"].as_str().unwrap().to_string()
    };
    create(&admin, "/v1/recipients", json!({ "name": "Ada", "email": "ada@example.com", "groups": ["Support"] }));
    let channel = create(
        &admin,
        "/v1/channels",
        json!({ "name": "hook", "kind": "webhook", "url": "https://hooks.example.com/support" }),
    );
    let subscription = |name: &str| json!({ "name": name, "group": "Support", "channels": { "billing": [channel] } });
    let theirs = create(&admin, "/v1/subscriptions", subscription("admins'"));
    let ends_at = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1)).to_string();
    let silence = json!({ "matchers": [{ "field": "rule.category", "op": "=", "value": "billing" }],
                          "ends_at": ends_at, "comment": "maintenance" });
    let their_silence = create(&admin, "/v1/silences", silence.clone());

    // Its own: created, changed, deleted.
    let mine = create(&support, "/v1/subscriptions", subscription("support's"));
    let path = format!("/v1/subscriptions/{mine}");
    let (status, changed) = server.call(Method::PUT, &path, &support, Some(subscription("support's, renamed")));
    assert_eq!(status, 200, "{changed}");
    let my_silence = create(&support, "/v1/silences", silence);

    // Everyone's: read, not changed.
    let (status, all) = server.call(Method::GET, "/v1/subscriptions", &support, None);
    assert_eq!(status, 200);
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
    assert_eq!(server.call(Method::GET, "/v1/silences", &support, None).1["items"].as_array().unwrap().len(), 2);
    assert_eq!(server.call(Method::GET, "/v1/notifications", &support, None).0, 200);
    let theirs_path = format!("/v1/subscriptions/{theirs}");
    let (status, refused) = server.call(Method::PUT, &theirs_path, &support, Some(subscription("taken over")));
    assert_eq!(status, 403);
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains("another key") && message.contains("`subscriptions:update:own`"), "{message}");
    assert_eq!(server.call(Method::DELETE, &theirs_path, &support, None).0, 403);
    assert_eq!(server.call(Method::DELETE, &format!("/v1/silences/{their_silence}"), &support, None).0, 403);
    // Nothing else: not the channels it routes to, not the rules.
    let (status, refused) = server.call(Method::GET, "/v1/channels", &support, None);
    assert_eq!(status, 403);
    assert!(refused["error"]["message"].as_str().unwrap().contains("`channels:read`"), "{refused}");

    assert_eq!(server.call(Method::DELETE, &format!("/v1/silences/{my_silence}"), &support, None).0, 200, "expired");
    assert_eq!(server.call(Method::DELETE, &path, &support, None).0, 204);
    // The admin changes anyone's.
    assert_eq!(server.call(Method::DELETE, &theirs_path, &admin, None).0, 204);
}

#[test]
fn roles_are_defined_changed_and_deleted_only_when_no_key_has_them() {
    let server = Server::start();
    let (_, admin) = server.tenant("acme");

    let (status, roles) = server.call(Method::GET, "/v1/roles", &admin, None);
    assert_eq!(status, 200);
    let built_in: Vec<&str> = roles["items"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(built_in, ["admin", "editor", "viewer", "ingest"]);
    assert_eq!(roles["items"][1]["permissions"][2], "rules:update:own", "built-in roles are written the same way");

    let refused = |method: Method, path: &str, body: Value| server.call(method, path, &admin, Some(body));
    let (status, error) =
        refused(Method::POST, "/v1/roles", json!({ "name": "r", "permissions": ["rules:read", "rule:write"] }));
    assert_eq!(status, 400);
    assert_eq!(error["error"]["field"], "permissions[1]");
    assert!(error["error"]["message"].as_str().unwrap().contains("no resource `rule`"), "{error}");
    let (status, error) =
        refused(Method::POST, "/v1/roles", json!({ "name": "r", "permissions": ["categories:update:own"] }));
    assert_eq!((status, error["error"]["field"].as_str()), (400, Some("permissions[0]")));
    assert_eq!(
        refused(Method::POST, "/v1/roles", json!({ "name": "a b", "permissions": ["*"] })).1["error"]["field"],
        "name"
    );
    assert_eq!(refused(Method::POST, "/v1/roles", json!({ "name": "admin", "permissions": ["*"] })).0, 409);
    assert_eq!(refused(Method::PUT, "/v1/roles/editor", json!({ "permissions": ["*"] })).0, 409);
    assert_eq!(server.call(Method::DELETE, "/v1/roles/viewer", &admin, None).0, 409);

    // A role that reads rules; its key reads rules at once, and more once the role grows.
    let (status, _) = refused(Method::POST, "/v1/roles", json!({ "name": "auditor", "permissions": ["rules:read"] }));
    assert_eq!(status, 201);
    let auditor = server.key(&admin, "auditor");
    assert_eq!(server.call(Method::GET, "/v1/rules", &auditor, None).0, 200);
    assert_eq!(server.call(Method::GET, "/v1/channels", &auditor, None).0, 403);
    let (status, role) = refused(Method::PUT, "/v1/roles/auditor", json!({ "permissions": ["*:read"] }));
    assert_eq!(status, 200, "{role}");
    assert_eq!(server.call(Method::GET, "/v1/channels", &auditor, None).0, 200);
    assert_eq!(server.call(Method::GET, "/v1/roles/auditor", &auditor, None).1["permissions"], json!(["*:read"]));
    assert_eq!(
        server.call(Method::POST, "/v1/roles", &auditor, Some(json!({ "name": "x", "permissions": ["*"] }))).0,
        403
    );

    // In use: 409 naming the key; free once the key is gone.
    let (status, error) = server.call(Method::DELETE, "/v1/roles/auditor", &admin, None);
    assert_eq!(status, 409);
    let keys = server.call(Method::GET, "/v1/api-keys", &admin, None).1;
    let key_id = keys["items"].as_array().unwrap().iter().find(|k| k["role"] == "auditor").unwrap()["id"].clone();
    assert!(error["error"]["message"].as_str().unwrap().contains(key_id.as_str().unwrap()), "{error}");
    assert_eq!(server.call(Method::DELETE, &format!("/v1/api-keys/{}", key_id.as_str().unwrap()), &admin, None).0, 204);
    assert_eq!(server.call(Method::DELETE, "/v1/roles/auditor", &admin, None).0, 204);
    assert_eq!(server.call(Method::GET, "/v1/roles/auditor", &admin, None).0, 404);

    // A key gives no more than it holds.
    let (status, _) = refused(
        Method::POST,
        "/v1/roles",
        json!({ "name": "key-maker", "permissions": ["keys:create", "rules:read"] }),
    );
    assert_eq!(status, 201);
    let maker = server.key(&admin, "key-maker");
    let new_key =
        |role: &str| server.call(Method::POST, "/v1/api-keys", &maker, Some(json!({ "name": "k", "role": role })));
    let (status, error) = new_key("admin");
    assert_eq!(status, 403);
    assert!(error["error"]["message"].as_str().unwrap().contains("does not hold"), "{error}");
    assert_eq!(new_key("viewer").0, 403, "the viewer reads channels, which the maker does not");
    assert_eq!(new_key("key-maker").0, 201);
    let (status, error) = new_key("nobody");
    assert_eq!((status, error["error"]["field"].as_str()), (400, Some("role")));
}
