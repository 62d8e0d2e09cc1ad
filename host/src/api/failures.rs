//! Failed authentication per client address: a bearer key, a console session or a sign-in that
//! does not check out costs the address a token from its bucket (`RATE`); an empty bucket is
//! answered 429 with `Retry-After` before any check, so keys cannot be guessed quickly, while the
//! rightful owner goes on from any other address.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use crate::error::ApiError;
use crate::tenants::buckets::{Buckets, Rate, seconds};

/// Failures an address may make at once, and how fast it may make more.
const RATE: Rate = Rate { per_second: 1.0, burst: 20.0 };

#[derive(Default)]
pub struct Failures {
    buckets: Buckets<IpAddr>,
}

impl Failures {
    /// Refuses an address whose failures used up its bucket.
    pub fn check(&self, client: Client) -> Result<(), ApiError> {
        let Some(address) = client.0 else { return Ok(()) };
        let wait = self.buckets.wait(&address, 1.0, RATE);
        if wait.is_zero() {
            return Ok(());
        }
        Err(ApiError::RateLimited {
            limit: "auth_failures",
            message: format!("too many failed sign-ins or keys from {address}; try again in a moment"),
            retry_after: seconds(wait),
        })
    }

    /// Counts a failure of the address.
    pub fn failed(&self, client: Client) {
        if let Some(address) = client.0 {
            self.buckets.take(address, 1.0, RATE);
        }
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
