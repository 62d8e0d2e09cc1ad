//! `/v1/channels`: checks at save time (templates included), private addresses, preview, test
//! sends, template plugins, and what rules may name.

use reqwest::Method;
use serde_json::{Value, json};

use crate::delivery::Setup;
use crate::receivers::{Receiver, signature_valid};
use crate::support::{Server, guests};

/// The field and message of `path`'s refusal of `spec`.
fn refused(server: &Server, key: &str, path: &str, spec: Value) -> (String, String) {
    let (status, body) = server.call(Method::POST, path, key, Some(spec.clone()));
    assert_eq!(status, 400, "{spec} was accepted: {body}");
    let error = &body["error"];
    (error["field"].as_str().unwrap_or("").to_string(), error["message"].as_str().unwrap().to_string())
}

#[test]
fn bad_channels_and_templates_are_refused_with_the_field_at_fault() {
    let s = Setup::start("");
    let url = "http://127.0.0.1:9/hook";
    let cases = [
        (
            json!({ "name": "a", "kind": "webhook", "url": url, "body": "{\"rule\": \"{{rule.nmae}}\"}" }),
            "body",
            "rule.nmae",
        ),
        (
            json!({ "name": "a", "kind": "webhook", "url": url, "body": "{\"rule\": {{rule.name}}}" }),
            "body",
            "does not render to JSON",
        ),
        (
            json!({ "name": "a", "kind": "webhook", "url": url, "body": "{{#if rule}}" }),
            "body",
            "Failed to parse template",
        ),
        (
            json!({ "name": "a", "kind": "webhook", "url": url, "headers": { "X-Who": "{{customer.nmae}}" } }),
            "headers.X-Who",
            "customer.nmae",
        ),
        (
            json!({ "name": "a", "kind": "webhook", "url": url, "headers": { "webhook-id": "x" } }),
            "headers.webhook-id",
            "set by Klaxon",
        ),
        (json!({ "name": "a", "kind": "webhook", "url": url, "secrets": ["abc"] }), "secrets[0]", "whsec_"),
        (json!({ "name": "a", "kind": "webhook" }), "url", "required"),
        (json!({ "name": "a", "kind": "webhook", "url": "ftp://x.example/" }), "url", "http"),
        (json!({ "name": "a", "kind": "slack", "url": url, "to": ["a@example.com"] }), "to", "email"),
        (json!({ "name": "a", "kind": "slack", "url": url, "headers": { "X-A": "b" } }), "headers", "webhook"),
        (
            json!({ "name": "a", "kind": "teams", "url": url, "body": "{\"type\": \"message\", \"attachments\": [{\"contentType\": \"application/vnd.microsoft.card.adaptive\", \"content\": {\"type\": \"AdaptiveCard\", \"version\": \"1.5\"}}]}" }),
            "body",
            "1.4 or lower",
        ),
        (json!({ "name": "a", "kind": "webhook", "url": url, "max_in_flight": 0 }), "max_in_flight", "1 to 64"),
        (
            json!({ "name": "a", "kind": "webhook", "url": url, "template_plugin": "nope" }),
            "template_plugin",
            "no plugin",
        ),
        (json!({ "name": "", "kind": "webhook", "url": url }), "name", "1 to 200"),
        (json!({ "name": "a", "kind": "pager", "url": url }), "kind", "pager"),
        (json!({ "name": "a", "kind": "webhook", "url": url, "colour": "red" }), "colour", "unknown field"),
    ];
    for (spec, field, message) in cases {
        // Saving refuses it, and so does the check editors call as their author types.
        for path in ["/v1/channels", "/v1/channels/check"] {
            let (got_field, got_message) = refused(&s.server, &s.key, path, spec.clone());
            assert_eq!(got_field, field, "{path} {spec}: {got_message}");
            assert!(got_message.contains(message), "{path} {spec}: `{got_message}` lacks `{message}`");
        }
    }
    let good = json!({ "name": "a", "kind": "webhook", "url": url, "body": "{\"rule\": \"{{rule.name}}\"}" });
    let (status, checked) = s.server.call(Method::POST, "/v1/channels/check", &s.key, Some(good));
    assert_eq!(status, 200, "{checked}");
    let rendered: Value = serde_json::from_str(checked["payload"]["body"].as_str().unwrap()).unwrap();
    assert!(rendered["rule"].is_string(), "the sample rendered: {checked}");
    let (status, body) = s.server.call(Method::GET, "/v1/channels", &s.key, None);
    assert_eq!((status, body["items"].as_array().unwrap().len()), (200, 0), "nothing was kept: {body}");

    // Custom fields and event properties are the tenant's own: any name is accepted.
    s.channel(json!({ "name": "ok", "kind": "webhook", "url": url, "content_type": "text/plain",
                      "body": "{{customer.fields.plan}} {{event.properties.seats}}" }));

    // Rules may name only channels that exist, and a channel in use cannot be deleted.
    let (status, body) = s.server.call(
        Method::POST,
        "/v1/rules",
        &s.key,
        Some(json!({
            "name": "r", "scope": { "type": "each" }, "channels": ["chn_missing"],
            "condition": { "kind": "event_match", "matches": [{ "event_type": "signup" }] },
        })),
    );
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("channels[0]")), "{body}");
    let channel = s.webhook(url);
    s.rule(&[&channel]);
    let path = format!("/v1/channels/{}", channel["id"].as_str().unwrap());
    let (status, body) = s.server.call(Method::DELETE, &path, &s.key, None);
    assert_eq!(status, 409, "{body}");
}

#[test]
fn private_addresses_are_refused_without_the_operators_allow_list() {
    let server = Server::start();
    let (_, key) = server.tenant("acme");
    for url in [
        "http://127.0.0.1:8080/x",
        "http://localhost/x",
        "http://169.254.169.254/latest",
        "http://10.0.0.7/",
        "http://[::1]/",
    ] {
        let (field, message) =
            refused(&server, &key, "/v1/channels", json!({ "name": "a", "kind": "webhook", "url": url }));
        assert_eq!(field, "url");
        assert!(message.contains("allow_private"), "{url}: {message}");
    }
    let (status, body) = server.call(
        Method::POST,
        "/v1/channels",
        &key,
        Some(json!({ "name": "public", "kind": "slack", "url": "https://hooks.slack.example/services/T0/B0/x" })),
    );
    assert_eq!(status, 201, "{body}");
}

#[test]
fn preview_renders_and_test_sends_once() {
    let s = Setup::start("");
    let receiver = Receiver::start();
    let channel = s.channel(json!({
        "name": "ops", "kind": "webhook", "url": receiver.url,
        "body": "{\"text\": {{json headline}}, \"seats\": {{json customer.fields.seats}}}",
    }));
    let id = channel["id"].as_str().unwrap();

    let (status, body) = s.server.call(Method::POST, &format!("/v1/channels/{id}/preview"), &s.key, None);
    assert_eq!(status, 200, "{body}");
    let payload = &body["payload"];
    assert_eq!(payload["type"], "http");
    let rendered: Value = serde_json::from_str(payload["body"].as_str().unwrap()).unwrap();
    assert_eq!(rendered, json!({ "text": "Sample rule is in alarm for Sample Customer", "seats": 120 }));

    let context = json!({
        "tenant": "t", "rule": { "id": "rul_1", "name": "Quota" },
        "customer": { "id": "cus_9", "fields": { "seats": 7 } },
        "notification": { "id": "ntf_1", "timestamp": "2030-01-01T00:00:00Z", "url": "/v1/notifications/ntf_1" },
    });
    let (status, body) = s.server.call(
        Method::POST,
        &format!("/v1/channels/{id}/preview"),
        &s.key,
        Some(json!({ "context": context, "kind": "resolved" })),
    );
    assert_eq!(status, 200, "{body}");
    let rendered: Value = serde_json::from_str(body["payload"]["body"].as_str().unwrap()).unwrap();
    assert_eq!(rendered, json!({ "text": "Quota is resolved for cus_9", "seats": 7 }));
    assert!(receiver.requests().is_empty(), "a preview sends nothing");

    // A context without a customer: the template names one, so rendering fails, and says where.
    let mut bare = context.clone();
    bare.as_object_mut().unwrap().remove("customer");
    let (status, body) =
        s.server.call(Method::POST, &format!("/v1/channels/{id}/preview"), &s.key, Some(json!({ "context": bare })));
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("body")), "{body}");

    let (status, result) = s.server.call(Method::POST, &format!("/v1/channels/{id}/test"), &s.key, None);
    assert_eq!(status, 200, "{result}");
    let attempt = &result["attempt"];
    assert_eq!(
        (attempt["verdict"].as_str(), attempt["status_code"].as_u64()),
        (Some("delivered"), Some(200)),
        "{result}"
    );
    let request = &receiver.wait_for(1)[0];
    assert!(signature_valid(channel["secrets"][0]["secret"].as_str().unwrap(), request));
    assert_eq!(request.body, result["payload"]["body"].as_str().unwrap());

    // A test to an endpoint that refuses shows the refusal.
    receiver.script(vec![crate::receivers::Reply::status(404)]);
    let (_, result) = s.server.call(Method::POST, &format!("/v1/channels/{id}/test"), &s.key, None);
    let attempt = &result["attempt"];
    assert_eq!((attempt["verdict"].as_str(), attempt["status_code"].as_u64()), (Some("retry"), Some(404)), "{result}");
}

#[test]
fn preview_and_test_render_the_custom_fields_and_properties_a_save_accepted() {
    let s = Setup::start("");
    let receiver = Receiver::start();
    let channel = s.channel(json!({
        "name": "plans", "kind": "webhook", "url": receiver.url,
        "body": "{\"plan\": {{json customer.fields.plan}}, \"region\": \"{{event.properties.region.name}}\"}",
        "headers": { "X-Plan": "{{customer.fields.plan}}" },
    }));
    let id = channel["id"].as_str().unwrap();
    let placeholders = json!({ "customer.fields.plan": "sample plan", "event.properties.region.name": "sample name" });
    let expected = json!({ "plan": "sample plan", "region": "sample name" });

    let (status, preview) = s.server.call(Method::POST, &format!("/v1/channels/{id}/preview"), &s.key, None);
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["placeholders"], placeholders);
    assert_eq!(serde_json::from_str::<Value>(preview["payload"]["body"].as_str().unwrap()).unwrap(), expected);

    let (status, result) = s.server.call(Method::POST, &format!("/v1/channels/{id}/test"), &s.key, None);
    assert_eq!((status, result["attempt"]["verdict"].as_str()), (200, Some("delivered")), "{result}");
    assert_eq!(result["placeholders"], placeholders);
    let request = &receiver.wait_for(1)[0];
    assert_eq!(request.json(), expected);
    assert_eq!(request.header("x-plan"), "sample plan");

    // A channel whose templates name no custom field makes nothing up.
    let plain = s.channel(json!({ "name": "plain", "kind": "webhook", "url": receiver.url }));
    let path = format!("/v1/channels/{}/preview", plain["id"].as_str().unwrap());
    let (status, preview) = s.server.call(Method::POST, &path, &s.key, None);
    assert_eq!((status, preview.get("placeholders")), (200, None), "{preview}");
}

#[test]
fn a_template_plugin_makes_the_payload() {
    let s = Setup::start("");
    let receiver = Receiver::start();
    let (status, body) = s.server.upload(&s.key, "blocks", "template", &guests().slack_blocks);
    assert_eq!(status, 201, "{body}");
    let channel =
        s.channel(json!({ "name": "slack", "kind": "slack", "url": receiver.url, "template_plugin": "blocks" }));
    s.rule(&[&channel]);
    let id = s.signup("cus_1");
    s.wait_status(&id, "delivered");
    let message = receiver.wait_for(1)[0].json();
    let header = message["blocks"][0]["text"]["text"].as_str().unwrap();
    assert!(header.contains("New signup"), "{message}");
}
