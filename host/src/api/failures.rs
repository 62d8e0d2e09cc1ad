//! Failed authentication per client address: a bearer key, a console session or a sign-in that
//! does not check out costs the address a token from a bucket of `BURST`, refilled at
//! `PER_SECOND`; an empty bucket is answered 429 with `Retry-After` before any check, so keys
//! cannot be guessed quickly, while the rightful owner goes on from any other address.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use crate::error::ApiError;

/// Failures an address may make at once, and how fast it may make more.
const BURST: f64 = 20.0;
const PER_SECOND: f64 = 1.0;
/// Addresses tracked at most; past it, those whose buckets are full again are forgotten.
const TRACKED: usize = 100_000;

#[derive(Default)]
pub struct Failures {
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn now(self, now: Instant) -> Bucket {
        Bucket { tokens: (self.tokens + now.duration_since(self.at).as_secs_f64() * PER_SECOND).min(BURST), at: now }
    }
}

impl Failures {
    /// Refuses an address whose failures used up its bucket.
    pub fn check(&self, client: Client) -> Result<(), ApiError> {
        let Some(address) = client.0 else { return Ok(()) };
        let now = Instant::now();
        let buckets = self.buckets.lock().expect("failures lock");
        match buckets.get(&address).map(|bucket| bucket.now(now)) {
            Some(bucket) if bucket.tokens < 1.0 => {
                let wait = Duration::from_secs_f64((1.0 - bucket.tokens) / PER_SECOND);
                Err(ApiError::RateLimited {
                    limit: "auth_failures",
                    message: format!("too many failed sign-ins or keys from {address}; try again in a moment"),
                    retry_after: wait.as_secs().max(1),
                })
            }
            _ => Ok(()),
        }
    }

    /// Counts a failure of the address.
    pub fn failed(&self, client: Client) {
        let Some(address) = client.0 else { return };
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("failures lock");
        if buckets.len() >= TRACKED {
            buckets.retain(|_, bucket| bucket.now(now).tokens < BURST);
        }
        let bucket = buckets.entry(address).or_insert(Bucket { tokens: BURST, at: now });
        *bucket = bucket.now(now);
        bucket.tokens -= 1.0;
    }
}

/// The client's address: the peer's, or behind a proxy on this machine (a loopback peer), the
/// last address of its `X-Forwarded-For`.
#[derive(Debug, Clone, Copy)]
pub struct Client(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(client(parts))
    }
}

pub fn client(parts: &Parts) -> Client {
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip());
    let forwarded = || {
        let header = parts.headers.get("x-forwarded-for")?.to_str().ok()?;
        header.rsplit(',').next()?.trim().parse::<IpAddr>().ok()
    };
    Client(match peer {
        Some(peer) if peer.is_loopback() => forwarded().or(Some(peer)),
        peer => peer,
    })
}
