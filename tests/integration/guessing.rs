//! Guessing keys: failed bearer keys and sign-ins are limited per client address (429 with
//! `Retry-After`, naming the limit), and the rightful owner goes on from another address.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::Server;

/// A call with `key` from `address` (a proxy on the same machine forwards it).
fn from(server: &Server, address: &str, key: &str) -> (u16, Option<String>, Value) {
    let response =
        server.request(Method::GET, "/v1/rules", Some(key)).header("x-forwarded-for", address).send().unwrap();
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
    (status, retry_after, response.json().unwrap_or(Value::Null))
}

#[test]
fn guessing_keys_is_slowed_per_address_and_the_owner_goes_on_from_another() {
    let server = Server::start();
    let (_, key) = server.tenant("acme");
    let guesser = "198.51.100.7";
    let answers: Vec<u16> = (0..25).map(|i| from(&server, guesser, &format!("klx_key_{i}.wrong")).0).collect();
    assert_eq!(answers[..20], [401; 20], "{answers:?}");
    assert_eq!(answers[20..], [429; 5], "{answers:?}");
    let (status, retry_after, body) = from(&server, guesser, &key);
    assert_eq!(status, 429, "even a right key waits at an address that guessed: {body}");
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert_eq!(
        (body["error"]["code"].as_str(), body["error"]["limit"].as_str()),
        (Some("rate_limited"), Some("auth_failures"))
    );
    assert_eq!(from(&server, "203.0.113.9", &key).0, 200, "the owner from another address");

    // Signing in to the console is counted the same way.
    let sign_in = |address: &str, token: &str| {
        let request = server.request(Method::POST, "/console/session", None).header("x-forwarded-for", address);
        request.json(&json!({ "token": token })).send().unwrap().status().as_u16()
    };
    let answers: Vec<u16> = (0..22).map(|i| sign_in("198.51.100.8", &format!("wrong-{i}"))).collect();
    assert_eq!((answers[0], answers[19], answers[20]), (400, 400, 429), "{answers:?}");
    assert_eq!(sign_in("203.0.113.10", &key), 200);
    // The bucket refills: a second later the address may try once more.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(from(&server, guesser, &key).0, 200);
}
