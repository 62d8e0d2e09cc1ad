//! Customer tokens: what a tenant hands one of its own customers so that the customer manages
//! alerts on its own usage (through the API or the embeddable portal).
//!
//! A token reads `klc_<claims>.<signature>`: the claims (tenant, customer, expiry, allowances)
//! as base64url JSON, signed with HMAC-SHA256 under the tenant's portal key. Minting writes
//! nothing; rotating the key revokes every token and portal session at once.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::keys::{new_secret, sha256_hex};

const PREFIX: &str = "klc_";

/// What a token allows, as signed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    pub tenant_id: String,
    pub customer_id: String,
    pub expires_at: Timestamp,
    /// The condition kinds its rules may use.
    pub allowed: Vec<String>,
    /// How many rules the customer may keep at once.
    pub max_rules: u32,
}

impl Claims {
    /// The owner its objects record (`created_by`): never a key id, which starts `key_`.
    pub fn owner(&self) -> String {
        owner(&self.customer_id)
    }
}

/// The `created_by` of what customer `id` made.
pub fn owner(customer_id: &str) -> String {
    format!("{OWNER_PREFIX}{customer_id}")
}

/// What every customer-made object's `created_by` starts with.
pub const OWNER_PREFIX: &str = "customer:";

/// A tenant's portal: the key its customer tokens are signed with, and where its page may be
/// embedded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Portal {
    /// Hex; never shown.
    signing_key: String,
    pub rotated_at: Timestamp,
    /// Origins (`https://app.example.com`) whose pages may frame the portal.
    #[serde(default)]
    pub frame_ancestors: Vec<String>,
}

impl Portal {
    pub fn new(now: Timestamp) -> Portal {
        Portal { signing_key: new_secret(), rotated_at: now, frame_ancestors: Vec::new() }
    }

    /// A new signing key: every token signed before is refused from now on.
    pub fn rotate(&mut self, now: Timestamp) {
        self.signing_key = new_secret();
        self.rotated_at = now;
    }

    /// A digest of the signing key, kept by portal sessions to notice a rotation.
    pub fn key_digest(&self) -> String {
        sha256_hex(&self.signing_key)
    }

    pub fn mint(&self, claims: &Claims) -> String {
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialize"));
        let signature = URL_SAFE_NO_PAD.encode(self.mac(&body).finalize().into_bytes());
        format!("{PREFIX}{body}.{signature}")
    }

    /// The claims of a token this key signed, whatever their expiry.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        let (body, signature) = token.strip_prefix(PREFIX)?.split_once('.')?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        self.mac(body).verify_slice(&signature).ok()?;
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()
    }

    fn mac(&self, body: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.signing_key.as_bytes()).expect("HMAC takes any key");
        mac.update(body.as_bytes());
        mac
    }
}

/// Whether `token` reads like a customer token, and the tenant it names (unverified: only
/// to find the key it must be checked with).
pub fn claimed_tenant(token: &str) -> Option<String> {
    let body = token.strip_prefix(PREFIX)?.split_once('.')?.0;
    let claims: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()?;
    Some(claims.tenant_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            tenant_id: "ten_1".into(),
            customer_id: "acme".into(),
            expires_at: Timestamp::UNIX_EPOCH,
            allowed: vec!["balance".into()],
            max_rules: 3,
        }
    }

    #[test]
    fn a_token_verifies_under_its_key_only_until_the_key_rotates() {
        let mut portal = Portal::new(Timestamp::UNIX_EPOCH);
        let token = portal.mint(&claims());
        assert_eq!(claimed_tenant(&token).as_deref(), Some("ten_1"));
        assert_eq!(portal.verify(&token), Some(claims()));
        assert_eq!(Portal::new(Timestamp::UNIX_EPOCH).verify(&token), None, "another tenant's key");
        let (body, signature) = token.split_once('.').unwrap();
        let mut forged = claims();
        forged.max_rules = 1000;
        let forged_body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(portal.verify(&format!("klc_{forged_body}.{signature}")), None, "changed claims");
        assert_eq!(portal.verify(&format!("{body}.AAAA")), None);
        portal.rotate(Timestamp::UNIX_EPOCH);
        assert_eq!(portal.verify(&token), None);
    }
}
