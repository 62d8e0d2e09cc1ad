//! Customers and event batches: per-event validation, idempotency, durability, limits, roles.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Server, read};

/// An event an hour old: inside the events Klaxon keeps, whatever the day the test runs.
fn event(id: &str, customer: &str) -> Value {
    let timestamp = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1);
    json!({ "id": id, "customer_id": customer, "type": "usage", "timestamp": timestamp, "properties": { "hours": 3 } })
}

fn send(server: &Server, key: &str, events: Vec<Value>) -> (u16, Value) {
    server.call(Method::POST, "/v1/events", key, Some(json!({ "events": events })))
}

#[test]
fn each_event_is_judged_on_its_own_and_kept_once() {
    let mut server = Server::start();
    let (_, admin) = server.tenant("acme");
    let ingest = server.key(&admin, "ingest");

    let mut no_timestamp = event("evt_2", "cus_a");
    no_timestamp.as_object_mut().unwrap().remove("timestamp");
    let mut empty_type = event("evt_3", "cus_a");
    empty_type["type"] = json!("");
    let mut future = event("evt_4", "cus_a");
    future["timestamp"] = json!("2999-01-01T00:00:00Z");
    let batch = vec![
        event("evt_1", "cus_a"),
        no_timestamp,
        empty_type,
        future,
        event("evt_5", "cus_new"),
        event("evt_1", "cus_a"),
    ];

    let (status, outcome) = send(&server, &ingest, batch.clone());
    assert_eq!(status, 200, "{outcome}");
    assert_eq!((outcome["accepted"].as_u64(), outcome["duplicates"].as_u64()), (Some(2), Some(1)), "{outcome}");
    let rejected: Vec<(u64, &str)> = outcome["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["index"].as_u64().unwrap(), r["field"].as_str().unwrap()))
        .collect();
    assert_eq!(rejected, [(1, "timestamp"), (2, "type"), (3, "timestamp")]);

    // An event for an unknown customer created it.
    let (status, customer) = server.call(Method::GET, "/v1/customers/cus_new", &admin, None);
    assert_eq!((status, &customer["fields"]), (200, &json!({})), "{customer}");

    // What was acknowledged survives a crash: the same batch again only finds duplicates.
    server.crash_and_restart();
    let (_, outcome) = send(&server, &ingest, batch);
    assert_eq!((outcome["accepted"].as_u64(), outcome["duplicates"].as_u64()), (Some(0), Some(3)), "{outcome}");
    assert_eq!(outcome["rejected"].as_array().unwrap().len(), 3);
}

#[test]
fn batches_have_limits() {
    let server = Server::start_with_config(Some("[ingest]\nmax_batch_events = 3\nmax_batch_bytes = 2000\n"));
    let (_, key) = server.tenant("acme");

    let four = (0..4).map(|i| event(&format!("evt_{i}"), "cus_a")).collect();
    let (status, error) = send(&server, &key, four);
    assert_eq!(status, 413, "{error}");
    assert!(error["error"]["message"].as_str().unwrap().contains("limit is 3"), "{error}");

    let mut big = event("evt_big", "cus_a");
    big["properties"]["note"] = json!("x".repeat(3000));
    let (status, error) = send(&server, &key, vec![big]);
    assert_eq!(status, 413, "{error}");

    let (status, error) = send(&server, &key, vec![]);
    assert_eq!((status, error["error"]["field"].as_str()), (400, Some("events")));
    let (status, _) = server.call(Method::POST, "/v1/events", &key, Some(json!({ "event": [] })));
    assert_eq!(status, 400);
    let (status, _) = read(server.request(Method::POST, "/v1/events", Some(&key)).body("not json"));
    assert_eq!(status, 400);
    assert_eq!(send(&server, &key, vec![event("evt_ok", "cus_a")]).0, 200);
}

#[test]
fn customers_carry_fields_and_page() {
    let server = Server::start();
    let (_, admin) = server.tenant("acme");
    let put = |id: &str, body: Value| server.call(Method::PUT, &format!("/v1/customers/{id}"), &admin, Some(body));

    let (status, customer) =
        put("cus_b", json!({ "name": "Globex", "fields": { "tier": "Enterprise", "seats": 120 } }));
    assert_eq!(status, 201, "{customer}");
    let (status, customer) = put("cus_b", json!({ "name": "Globex", "fields": { "tier": "Pro" } }));
    assert_eq!((status, &customer["fields"]), (200, &json!({ "tier": "Pro" })), "PUT replaces");
    let (status, error) = put("cus_c", json!({ "fields": { "address": { "city": "Oslo" } } }));
    assert_eq!((status, error["error"]["field"].as_str()), (400, Some("fields.address")), "{error}");
    let (status, error) = put("cus_c", json!({ "feilds": {} }));
    assert_eq!(status, 400, "{error}");

    // An event does not overwrite a described customer.
    send(&server, &admin, vec![event("evt_1", "cus_b")]);
    assert_eq!(server.call(Method::GET, "/v1/customers/cus_b", &admin, None).1["fields"]["tier"], "Pro");

    put("cus_a", json!({}));
    put("cus_c", json!({}));
    let (_, first) = server.call(Method::GET, "/v1/customers?limit=2", &admin, None);
    let ids = |page: &Value| {
        page["items"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
    };
    assert_eq!(ids(&first), ["cus_a", "cus_b"]);
    let after = first["next_after"].as_str().unwrap();
    let (_, second) = server.call(Method::GET, &format!("/v1/customers?limit=2&after={after}"), &admin, None);
    assert_eq!(ids(&second), ["cus_c"]);
    assert!(second.get("next_after").is_none());
    assert_eq!(server.call(Method::GET, "/v1/customers?limit=0", &admin, None).0, 400);

    assert_eq!(server.call(Method::DELETE, "/v1/customers/cus_a", &admin, None).0, 204);
    assert_eq!(server.call(Method::GET, "/v1/customers/cus_a", &admin, None).0, 404);
    assert_eq!(server.call(Method::DELETE, "/v1/customers/cus_a", &admin, None).0, 404);
}

#[test]
fn ingest_roles_and_tenant_isolation() {
    let server = Server::start();
    let (_, alpha) = server.tenant("alpha");
    let (_, beta) = server.tenant("beta");
    let ingest = server.key(&alpha, "ingest");
    let editor = server.key(&alpha, "editor");
    let viewer = server.key(&alpha, "viewer");

    assert_eq!(send(&server, &ingest, vec![event("evt_1", "cus_a")]).0, 200);
    assert_eq!(send(&server, &editor, vec![event("evt_2", "cus_a")]).0, 403);
    assert_eq!(server.call(Method::PUT, "/v1/customers/cus_z", &viewer, Some(json!({}))).0, 403);
    assert_eq!(server.call(Method::PUT, "/v1/customers/cus_z", &ingest, Some(json!({}))).0, 201);
    assert_eq!(server.call(Method::GET, "/v1/customers/cus_a", &ingest, None).0, 403, "ingest keys only send");
    assert_eq!(server.call(Method::GET, "/v1/customers/cus_a", &viewer, None).0, 200);

    // Another tenant sees none of it, and its event ids are its own.
    assert_eq!(server.call(Method::GET, "/v1/customers/cus_a", &beta, None).0, 404);
    assert_eq!(server.call(Method::GET, "/v1/customers", &beta, None).1["items"], json!([]));
    let (_, outcome) = send(&server, &beta, vec![event("evt_1", "cus_a")]);
    assert_eq!(outcome["accepted"], 1, "{outcome}");
}
