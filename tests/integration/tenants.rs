//! Tenants, API keys, roles and isolation.

use reqwest::Method;
use serde_json::json;

use crate::support::{ADMIN, Server, guests, read};

#[test]
fn platform_admin_manages_tenants() {
    let server = Server::start();
    let (id, key) = server.tenant("acme");
    assert_eq!(server.upload(&key, "wow", "condition", &guests().week_over_week_drop).0, 201);

    let (status, list) = server.call(Method::GET, "/v1/tenants", ADMIN, None);
    assert_eq!(status, 200);
    assert_eq!(list["items"][0]["id"], id.as_str());

    let (status, tenant) = server.call(
        Method::PATCH,
        &format!("/v1/tenants/{id}"),
        ADMIN,
        Some(json!({ "plugin_limits": { "fuel": 1000, "time_ms": 10, "memory_bytes": 1048576, "input_bytes": 100, "output_bytes": 100 } })),
    );
    assert_eq!(status, 200, "{tenant}");
    assert_eq!(tenant["plugin_limits"]["fuel"], 1000);

    let (status, error) = server.call(
        Method::PATCH,
        &format!("/v1/tenants/{id}"),
        ADMIN,
        Some(json!({ "plugin_limits": { "fuel": 0, "time_ms": 10, "memory_bytes": 1048576, "input_bytes": 100, "output_bytes": 100 } })),
    );
    assert_eq!(status, 400);
    assert_eq!(error["error"]["field"], "plugin_limits.fuel");

    let (status, error) = server.call(Method::POST, "/v1/tenants", ADMIN, Some(json!({ "nmae": "typo" })));
    assert_eq!(status, 400);
    assert!(error["error"]["message"].as_str().unwrap().contains("nmae"), "{error}");

    let page = json!({ "enabled": true, "slug": "acme-status", "title": "Acme",
        "components": [{ "name": "API" }] });
    assert_eq!(server.call(Method::PUT, "/v1/status-page", &key, Some(page.clone())).0, 200);

    assert_eq!(server.call(Method::DELETE, &format!("/v1/tenants/{id}"), ADMIN, None).0, 204);
    assert_eq!(server.call(Method::GET, &format!("/v1/tenants/{id}"), ADMIN, None).0, 404);
    assert_eq!(server.call(Method::DELETE, &format!("/v1/tenants/{id}"), ADMIN, None).0, 404);
    assert_eq!(server.call(Method::GET, "/v1/plugins", &key, None).0, 401, "a deleted tenant's keys stop working");
    assert_eq!(read(server.request(Method::GET, "/status/acme-status", None)).0, 404, "its status page is gone");
    let (_, other) = server.tenant("other");
    let (status, taken) = server.call(Method::PUT, "/v1/status-page", &other, Some(page));
    assert_eq!(status, 200, "a deleted tenant's slug is free: {taken}");
    assert_eq!(server.upload(&other, "wow", "condition", &guests().week_over_week_drop).0, 201);
}

#[test]
fn roles_are_enforced_on_every_route() {
    let server = Server::start();
    let (_, admin) = server.tenant("acme");
    let editor = server.key(&admin, "editor");
    let other_editor = server.key(&admin, "editor");
    let viewer = server.key(&admin, "viewer");
    let ingest = server.key(&admin, "ingest");
    let component = &guests().week_over_week_drop;

    // Upload: admin and editor yes; viewer and ingest no.
    assert_eq!(server.upload(&viewer, "wow", "condition", component).0, 403);
    assert_eq!(server.upload(&ingest, "wow", "condition", component).0, 403);
    assert_eq!(server.upload(&editor, "wow", "condition", component).0, 201);

    // Reading: everyone but ingest.
    assert_eq!(server.call(Method::GET, "/v1/plugins/wow", &viewer, None).0, 200);
    let (status, error) = server.call(Method::GET, "/v1/plugins", &ingest, None);
    assert_eq!(status, 403);
    assert!(error["error"]["message"].as_str().unwrap().contains("ingest"), "{error}");

    // Changing: the creating editor and admins, not another editor.
    let disable = Some(json!({ "enabled": false }));
    assert_eq!(server.call(Method::PATCH, "/v1/plugins/wow", &other_editor, disable.clone()).0, 403);
    assert_eq!(server.upload(&other_editor, "wow", "condition", component).0, 403);
    assert_eq!(server.call(Method::PATCH, "/v1/plugins/wow", &viewer, disable.clone()).0, 403);
    assert_eq!(server.call(Method::PATCH, "/v1/plugins/wow", &editor, disable.clone()).0, 200);
    assert_eq!(server.call(Method::PATCH, "/v1/plugins/wow", &admin, Some(json!({ "enabled": true }))).0, 200);
    assert_eq!(server.call(Method::DELETE, "/v1/plugins/wow", &other_editor, None).0, 403);

    // API keys: admins only; secrets are never listed.
    assert_eq!(server.call(Method::GET, "/v1/api-keys", &editor, None).0, 403);
    let (status, keys) = server.call(Method::GET, "/v1/api-keys", &admin, None);
    assert_eq!(status, 200);
    assert_eq!(keys["items"].as_array().unwrap().len(), 5);
    assert!(!keys.to_string().contains("klx_"), "listing shows no tokens: {keys}");

    // The platform admin manages tenants, not their objects; tenants do not manage tenants.
    assert_eq!(server.call(Method::GET, "/v1/plugins", ADMIN, None).0, 403);
    assert_eq!(server.call(Method::GET, "/v1/tenants", &admin, None).0, 403);
}

#[test]
fn keys_are_revocable_and_the_last_admin_key_stays() {
    let server = Server::start();
    let (_, admin) = server.tenant("acme");
    let (status, keys) = server.call(Method::GET, "/v1/api-keys", &admin, None);
    assert_eq!(status, 200);
    let admin_id = keys["items"][0]["id"].as_str().unwrap().to_string();
    let (status, error) = server.call(Method::DELETE, &format!("/v1/api-keys/{admin_id}"), &admin, None);
    assert_eq!(status, 409, "{error}");

    let viewer = server.key(&admin, "viewer");
    let viewer_id = viewer.trim_start_matches("klx_").split('.').next().unwrap().to_string();
    assert_eq!(server.call(Method::GET, "/v1/plugins", &viewer, None).0, 200);
    let forged = format!("klx_{viewer_id}.{}", "0".repeat(64));
    assert_eq!(server.call(Method::GET, "/v1/plugins", &forged, None).0, 401, "a known key id needs its secret");
    assert_eq!(server.call(Method::DELETE, &format!("/v1/api-keys/{viewer_id}"), &admin, None).0, 204);
    assert_eq!(server.call(Method::GET, "/v1/plugins", &viewer, None).0, 401);

    let (status, error) =
        server.call(Method::POST, "/v1/api-keys", &admin, Some(json!({ "name": "x", "role": "root" })));
    assert_eq!(status, 400);
    assert_eq!(error["error"]["field"], "role");
}

#[test]
fn tenants_never_see_each_other() {
    let server = Server::start();
    let (_, alpha) = server.tenant("alpha");
    let (_, beta) = server.tenant("beta");
    assert_eq!(server.upload(&alpha, "secret", "condition", &guests().week_over_week_drop).0, 201);

    for (method, path) in [
        (Method::GET, "/v1/plugins/secret"),
        (Method::GET, "/v1/plugins/secret/versions"),
        (Method::PATCH, "/v1/plugins/secret"),
        (Method::DELETE, "/v1/plugins/secret"),
        (Method::POST, "/v1/plugins/secret/invoke"),
    ] {
        let (status, body) = server.call(method.clone(), path, &beta, Some(json!({})));
        assert_eq!(status, 404, "{method} {path}: {body}");
    }
    let (_, list) = server.call(Method::GET, "/v1/plugins", &beta, None);
    assert_eq!(list["items"], json!([]));

    let alpha_key_id = {
        let (_, keys) = server.call(Method::GET, "/v1/api-keys", &alpha, None);
        keys["items"][0]["id"].as_str().unwrap().to_string()
    };
    assert_eq!(server.call(Method::DELETE, &format!("/v1/api-keys/{alpha_key_id}"), &beta, None).0, 404);

    // No key, a malformed header, an unknown key.
    assert_eq!(read(server.request(Method::GET, "/v1/plugins", None)).0, 401);
    assert_eq!(read(server.request(Method::GET, "/v1/plugins", None).header("authorization", "Basic x")).0, 401);
    assert_eq!(server.call(Method::GET, "/v1/plugins", "klx_key_nope.nope", None).0, 401);
}

/// Every operation of the OpenAPI description, with its path parameters filled in.
fn operations(server: &Server) -> Vec<(Method, String)> {
    let (status, spec) = read(server.request(Method::GET, "/openapi.json", None));
    assert_eq!(status, 200);
    let mut operations = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        let path = path.split('/').map(|s| if s.starts_with('{') { "x" } else { s }).collect::<Vec<_>>().join("/");
        for method in item.as_object().unwrap().keys().filter(|m| *m != "parameters") {
            operations.push((method.to_uppercase().parse().unwrap(), path.clone()));
        }
    }
    operations
}

#[test]
fn a_caller_without_the_role_is_refused_before_its_body_or_query_is_read() {
    let server = Server::start();
    let (_, admin) = server.tenant("acme");
    let viewer = server.key(&admin, "viewer");
    let ingest = server.key(&admin, "ingest");
    let garbage = |method: &Method, path: &str, token: &str| {
        read(
            server
                .request(method.clone(), &format!("{path}?limit=lots"), Some(token))
                .header("content-type", "application/json")
                .body("{\"name\": [oops"),
        )
    };

    // The reproduction: a viewer's invalid rule.
    let (status, error) = garbage(&Method::POST, "/v1/rules", &viewer);
    assert_eq!((status, error["error"]["code"].as_str()), (403, Some("forbidden")), "{error}");

    let read_only_posts = ["/v1/channels/check", "/v1/channels/x/preview", "/v1/rules/x/evaluate"];
    let ingest_routes =
        [(Method::POST, "/v1/events"), (Method::PUT, "/v1/customers/x"), (Method::DELETE, "/v1/customers/x")];
    let mut checked = 0;
    for (method, path) in operations(&server) {
        if !path.starts_with("/v1/") {
            continue;
        }
        if !ingest_routes.iter().any(|(m, p)| *m == method && *p == path) {
            let (status, body) = garbage(&method, &path, &ingest);
            assert_eq!(status, 403, "{method} {path} as an ingest key: {body}");
            checked += 1;
        }
        if method != Method::GET && !read_only_posts.contains(&path.as_str()) {
            let (status, body) = garbage(&method, &path, &viewer);
            assert_eq!(status, 403, "{method} {path} as a viewer: {body}");
        }
        // The platform admin's own routes: tenants, the clock, the cluster, backups, its trail.
        let own = ["/v1/clock", "/v1/cluster", "/v1/admin/backup", "/v1/admin/audit"];
        if !path.starts_with("/v1/tenants") && !own.contains(&path.as_str()) {
            let (status, body) = garbage(&method, &path, ADMIN);
            assert_eq!(status, 403, "{method} {path} with the platform admin token: {body}");
        }
    }
    assert!(checked > 70, "only {checked} operations were checked");
}
