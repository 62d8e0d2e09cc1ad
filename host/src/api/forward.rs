//! Batches of events sent on to the node holding their tenant's partition, so a tenant's rules
//! are evaluated on one node however its events are spread over the cluster (nodes evaluating
//! one tenant's events at once would write the same alerts and customers, and put each other's
//! transactions one after the other). The holder answers as if the batch had come to it; a
//! holder that cannot be reached is not waited for: the batch is ingested where it came in (its
//! transaction is serializable, so the outcome is the same).

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

/// The header a node sets on a batch it forwards: the receiving node ingests it itself.
pub const FORWARDED_BY: &str = "klaxon-forwarded-by";

/// Waiting for the holder to connect; a dead one refuses at once.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Waiting for its answer: long enough for a batch of 1,000 on a busy node, short enough that a
/// stalled holder does not hold the client past its own timeout.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Forwarder {
    http: reqwest::Client,
    node: HeaderValue,
}

impl Forwarder {
    pub fn new(node: &str) -> Self {
        // Straight to the node: no proxy from the environment, no redirects.
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(ANSWER_TIMEOUT)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client with timeouts builds");
        Forwarder { http, node: HeaderValue::from_str(node).expect("node ids are header-safe") }
    }

    /// Sends `body` as `POST {holder}/v1/events` with the caller's key, and answers the holder's
    /// answer; an error when the holder could not be reached or did not answer in time.
    pub async fn events(&self, holder: &str, headers: &HeaderMap, body: Bytes) -> Result<Response, reqwest::Error> {
        let mut request = self.http.post(format!("{holder}/v1/events")).header(FORWARDED_BY, self.node.clone());
        for name in [header::AUTHORIZATION, header::CONTENT_TYPE] {
            if let Some(value) = headers.get(&name) {
                request = request.header(name, value);
            }
        }
        let answer = request.body(body).send().await?;
        let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        let content_type = answer.headers().get(header::CONTENT_TYPE).cloned();
        let bytes = answer.bytes().await?;
        let mut response = (status, bytes).into_response();
        if let Some(content_type) = content_type {
            response.headers_mut().insert(header::CONTENT_TYPE, content_type);
        }
        Ok(response)
    }
}
