//! SMS channels: texts sent in the request format of Twilio's Messages resource to a local
//! receiver standing in for the provider, its refusals and throttling, segments, and the phones
//! of a subscription's group.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use serde_json::{Value, json};

use crate::delivery::Setup;
use crate::receivers::{Receiver, Reply};

const SID: &str = "AC0123456789abcdef";
const TOKEN: &str = "token-of-the-account";

/// An SMS channel whose provider is `receiver`, with `extra` fields.
fn sms(s: &Setup, receiver: &Receiver, extra: Value) -> Value {
    let base = receiver.url.trim_end_matches("/hook");
    let mut spec = json!({
        "name": "billing texts", "kind": "sms",
        "sms": { "base_url": base, "account_sid": SID, "from": "+15005550006", "auth_token": TOKEN },
    });
    spec.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    s.channel(spec)
}

fn sent(sid: &str) -> Reply {
    Reply::json(201, json!({ "sid": sid, "status": "queued" }))
}

#[test]
fn a_text_goes_out_in_the_providers_request_format() {
    let s = Setup::start("");
    let receiver = Receiver::start();
    receiver.script(vec![sent("SM1"), sent("SM2")]);
    let channel = sms(&s, &receiver, json!({ "to": ["+4930123456", "+4940654321"] }));
    assert_eq!(channel["auth_token"], TOKEN, "shown to keys that may change channels");
    assert!(channel["sms"].get("auth_token").is_none(), "{channel}");
    let viewer = s.server.key(&s.key, "viewer");
    let path = format!("/v1/channels/{}", channel["id"].as_str().unwrap());
    let seen = s.server.call(Method::GET, &path, &viewer, None).1;
    assert!(seen.get("auth_token").is_none() && !seen.to_string().contains(TOKEN), "never to viewers: {seen}");

    s.rule(&[&channel]);
    let id = s.signup("cus_1");
    let n = s.wait_status(&id, "delivered");
    let requests = receiver.wait_for(2);
    for (request, to) in requests.iter().zip(["+4930123456", "+4940654321"]) {
        assert_eq!(request.path, format!("/2010-04-01/Accounts/{SID}/Messages.json"));
        assert_eq!(request.header("content-type"), "application/x-www-form-urlencoded");
        let basic = format!("Basic {}", STANDARD.encode(format!("{SID}:{TOKEN}")));
        assert_eq!(request.header("authorization"), basic);
        let form = request.form();
        assert_eq!((form["To"].as_str(), form["From"].as_str()), (to, "+15005550006"));
        assert!(form["Body"].starts_with("New signup matched an event for cus_1\nSeverity: warning"), "{form:?}");
    }
    let delivery = &n["deliveries"][0];
    assert_eq!(delivery["payload"]["segments"], 1, "{delivery}");
    let attempt = &delivery["attempts"][0];
    assert_eq!(attempt["status_code"], 201);
    assert!(attempt["response"].as_str().unwrap().contains("+4930123456: 201 SM1"), "{attempt}");

    // A messaging service instead of a number, and a template of its own.
    let service = sms(
        &s,
        &receiver,
        json!({ "to": ["+4930123456"], "body": "{{rule.name}}: {{customer.id}}",
                "sms": { "base_url": receiver.url.trim_end_matches("/hook"), "account_sid": SID,
                         "messaging_service_sid": "MG0123", "auth_token": TOKEN } }),
    );
    let (status, result) =
        s.server.call(Method::POST, &format!("/v1/channels/{}/test", service["id"].as_str().unwrap()), &s.key, None);
    assert_eq!((status, result["attempt"]["verdict"].as_str()), (200, Some("delivered")), "{result}");
    let form = receiver.wait_for(3)[2].form();
    assert_eq!((form["MessagingServiceSid"].as_str(), form["Body"].as_str()), ("MG0123", "Sample rule: cus_sample"));
    assert!(!form.contains_key("From"));
}

#[test]
fn a_provider_refusal_fails_at_once_and_throttling_is_retried() {
    let s = Setup::start("");
    let receiver = Receiver::start();
    let refusal = json!({ "code": 21211, "message": "The 'To' number +4930000000 is not a valid phone number.",
                          "status": 400 });
    receiver.script(vec![Reply::json(400, refusal)]);
    let channel = sms(&s, &receiver, json!({ "to": ["+4930000000"] }));
    s.rule(&[&channel]);
    let id = s.signup("cus_1");
    let n = s.wait_status(&id, "failed");
    let attempts = n["deliveries"][0]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "not retried: {n:#}");
    assert_eq!((attempts[0]["status_code"].as_u64(), attempts[0]["verdict"].as_str()), (Some(400), Some("failed")));
    let error = attempts[0]["error"].as_str().unwrap();
    assert!(error.contains("provider error 21211: The 'To' number"), "{error}");

    receiver.script(vec![Reply::status(429), sent("SM9")]);
    let id = s.signup("cus_2");
    let n = s.wait_attempts(&id, 1);
    let first = &n["deliveries"][0]["attempts"][0];
    assert_eq!((first["status_code"].as_u64(), first["verdict"].as_str()), (Some(429), Some("retry")), "{n:#}");
    s.clock(&s.at("PT10S"));
    let n = s.wait_status(&id, "delivered");
    assert_eq!(n["deliveries"][0]["attempts"].as_array().unwrap().len(), 2);
}

#[test]
fn a_long_ucs2_text_is_cut_to_ten_segments_and_counted() {
    let s = Setup::start("");
    let receiver = Receiver::start();
    let channel =
        sms(&s, &receiver, json!({ "to": ["+4930123456"], "body": "Łódź {{customer.id}} ".repeat(200).trim() }));
    let path = format!("/v1/channels/{}/preview", channel["id"].as_str().unwrap());
    let (status, preview) = s.server.call(Method::POST, &path, &s.key, None);
    assert_eq!(status, 200, "{preview}");
    let payload = &preview["payload"];
    assert_eq!((payload["type"].as_str(), payload["segments"].as_u64()), (Some("sms"), Some(10)), "{payload}");
    let body = payload["body"].as_str().unwrap();
    assert!(body.ends_with('…'), "{body}");
    assert!(body.encode_utf16().count() <= 670, "{}", body.encode_utf16().count());

    s.rule(&[&channel]);
    let id = s.signup("cus_1");
    let n = s.wait_status(&id, "delivered");
    assert_eq!(n["deliveries"][0]["payload"]["segments"], 10);
    let text = &receiver.wait_for(1)[0].form()["Body"];
    assert!(text.starts_with("Łódź cus_1 Łódź") && text.ends_with('…'), "{text}");
}

#[test]
fn a_subscriptions_group_adds_its_phones_and_bad_numbers_are_refused() {
    let s = Setup::start("");
    let receiver = Receiver::start();
    let create = |path: &str, body: Value| {
        let (status, created) = s.server.call(Method::POST, path, &s.key, Some(body));
        assert_eq!(status, 201, "{created}");
        created
    };
    for (name, phone) in [("Bo", Some("+4915112345678")), ("Cy", None)] {
        let mut spec = json!({ "name": name, "email": format!("{name}@example.com"), "groups": ["Billing Admins"] });
        if let Some(phone) = phone {
            spec["phone"] = json!(phone);
        }
        create("/v1/recipients", spec);
    }
    let channel = sms(&s, &receiver, json!({}));
    let subscription = create(
        "/v1/subscriptions",
        json!({ "name": "billing", "group": "Billing Admins", "channels": { "billing": [channel["id"]] } }),
    );
    let path = format!("/v1/subscriptions/{}/test", subscription["id"].as_str().unwrap());
    let (status, tested) = s.server.call(Method::POST, &path, &s.key, None);
    assert_eq!(status, 200, "{tested}");
    assert_eq!(tested["items"][0]["payload"]["to"], json!(["+4915112345678"]), "{tested}");
    assert_eq!(receiver.wait_for(1)[0].form()["To"], "+4915112345678");

    let refused = |path: &str, body: Value| {
        let (status, error) = s.server.call(Method::POST, path, &s.key, Some(body));
        assert_eq!(status, 400, "{error}");
        error["error"]["field"].as_str().unwrap().to_string()
    };
    let phone = json!({ "name": "Di", "email": "di@example.com", "phone": "030 123456" });
    assert_eq!(refused("/v1/recipients", phone), "phone");
    let base = json!({ "base_url": "http://127.0.0.1:9", "account_sid": SID, "from": "+15005550006" });
    let channel = |extra: Value| {
        let mut spec = json!({ "name": "t", "kind": "sms", "sms": base });
        spec.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        refused("/v1/channels", spec)
    };
    assert_eq!(channel(json!({})), "sms.auth_token");
    assert_eq!(channel(json!({ "to": ["+49301234567890123"] })), "to[0]");
    assert_eq!(channel(json!({ "sms": { "account_sid": SID, "auth_token": "t" } })), "sms.from");
    assert_eq!(channel(json!({ "url": "http://127.0.0.1:9/x" })), "url");
    assert_eq!(channel(json!({ "sms": null })), "sms");
}
