//! API keys: token format and hashing.
//!
//! A token reads `klx_<key id>.<secret>`. Only the SHA-256 of the secret is stored; the token is
//! shown once, when the key is created.

use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ids::hex;

/// A stored API key. The secret itself is never kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    /// The name of its role, built-in or the tenant's own.
    pub role: String,
    /// Hex SHA-256 of the secret.
    pub secret_sha256: String,
    pub created_at: jiff::Timestamp,
}

/// A fresh secret: 32 random bytes, hex.
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    hex(&bytes)
}

pub fn token(key_id: &str, secret: &str) -> String {
    format!("klx_{key_id}.{secret}")
}

/// Splits a token into key id and secret.
pub fn parse_token(token: &str) -> Option<(&str, &str)> {
    token.strip_prefix("klx_")?.split_once('.')
}

pub fn sha256_hex(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// Compares two digests without an early exit.
pub fn digests_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::new_id;

    #[test]
    fn tokens_round_trip() {
        let id = new_id("key");
        let secret = new_secret();
        let token = token(&id, &secret);
        assert_eq!(parse_token(&token), Some((id.as_str(), secret.as_str())));
        assert_eq!(parse_token("Bearer nonsense"), None);
    }

    #[test]
    fn digest_comparison() {
        assert!(digests_equal(&sha256_hex("a"), &sha256_hex("a")));
        assert!(!digests_equal(&sha256_hex("a"), &sha256_hex("b")));
    }
}
