//! Console and portal sessions. A browser signs in once with an API key, the platform admin
//! token or a customer token, and then carries a random session token in a cookie. Only the
//! session token's SHA-256 is stored, with the digest of the credential it was opened with (a
//! customer token's claims and its tenant's portal key); that credential is checked again on
//! every request, so deleting the key (or changing the admin token, or rotating the portal key)
//! ends its sessions at once.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::customer_tokens::{self, Claims};
use super::keys::{self, digests_equal, sha256_hex};
use super::known::Known;
use super::{ApiKey, Principal, TenantKey, Tenants, roles};
use crate::store::StoreResult;

/// How long a session lasts after sign-in.
pub const SESSION_TTL: SignedDuration = SignedDuration::from_hours(8);

/// A stored session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    credential: Credential,
    /// What a request changing anything must carry in its `X-CSRF-Token` header.
    pub csrf: String,
    pub expires_at: Timestamp,
}

/// What a bearer token proves, as digests.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
enum Credential {
    Admin {
        token_sha256: String,
    },
    Key {
        key_id: String,
        secret_sha256: String,
    },
    /// A customer token that verified, with the digest of the portal key that signed it.
    Customer {
        claims: Claims,
        portal_key_sha256: String,
    },
    /// Anything else: it proves nothing.
    Nothing,
}

impl Tenants {
    /// Resolves a bearer token to its principal; `None` for anything unknown, revoked or expired.
    pub fn authenticate(&self, token: &str, now: Timestamp) -> StoreResult<Option<Principal>> {
        self.principal(&self.credential(token)?, now)
    }

    /// What `token` claims to be: the admin token when it is that (whatever it looks like), else
    /// an API key or a customer token when it reads like one. Anything else claims the admin
    /// token and fails its check.
    fn credential(&self, token: &str) -> StoreResult<Credential> {
        let token_sha256 = sha256_hex(token);
        if digests_equal(&token_sha256, &self.admin_token_sha256) {
            return Ok(Credential::Admin { token_sha256 });
        }
        if let Some(tenant) = customer_tokens::claimed_tenant(token) {
            let Some(portal) = self.portal_if_any(&tenant)? else { return Ok(Credential::Nothing) };
            return Ok(match portal.verify(token).filter(|claims| claims.tenant_id == tenant) {
                Some(claims) => Credential::Customer { claims, portal_key_sha256: portal.key_digest() },
                None => Credential::Nothing,
            });
        }
        Ok(match keys::parse_token(token) {
            Some((key_id, secret)) => Credential::Key { key_id: key_id.into(), secret_sha256: sha256_hex(secret) },
            None => Credential::Admin { token_sha256 },
        })
    }

    fn principal(&self, credential: &Credential, now: Timestamp) -> StoreResult<Option<Principal>> {
        match credential {
            Credential::Nothing => Ok(None),
            Credential::Customer { claims, portal_key_sha256 } => {
                // A deleted customer's tokens and sessions end with it.
                let live = claims.expires_at > now
                    && self.get(&claims.tenant_id)?.is_some()
                    && self.portal_if_any(&claims.tenant_id)?.is_some_and(|p| p.key_digest() == *portal_key_sha256)
                    && self.store.customer::<serde::de::IgnoredAny>(&claims.tenant_id, &claims.customer_id)?.is_some();
                Ok(live.then(|| {
                    Principal::Tenant(TenantKey {
                        tenant_id: claims.tenant_id.clone(),
                        key_id: claims.owner(),
                        role: roles::CUSTOMER.into(),
                        permissions: Arc::new(roles::customer()),
                        customer: Some(Arc::new(claims.clone())),
                    })
                }))
            }
            Credential::Admin { token_sha256 } => {
                Ok(digests_equal(token_sha256, &self.admin_token_sha256).then_some(Principal::PlatformAdmin))
            }
            Credential::Key { key_id, secret_sha256 } => {
                let known = match self.known.get(key_id) {
                    Some(known) => known,
                    None => {
                        let mark = self.known.mark();
                        let Some(key) = self.store.api_keys.get::<ApiKey>(key_id)? else {
                            return Ok(None);
                        };
                        if self.get(&key.tenant_id)?.is_none() {
                            return Ok(None);
                        }
                        let permissions = Arc::new(self.permissions(&key.tenant_id, &key.role)?);
                        let key_view = TenantKey {
                            tenant_id: key.tenant_id,
                            key_id: key.id,
                            role: key.role,
                            permissions,
                            customer: None,
                        };
                        let known = Known { secret_sha256: key.secret_sha256, key: key_view };
                        self.known.keep(mark, known.clone());
                        known
                    }
                };
                Ok(digests_equal(secret_sha256, &known.secret_sha256).then_some(Principal::Tenant(known.key)))
            }
        }
    }

    /// Opens a session for a bearer token: the session token (shown once, for the cookie), the
    /// session and its principal; `None` when the token is unknown or revoked. Expired sessions
    /// are swept on the way.
    pub fn open_session(&self, token: &str, now: Timestamp) -> StoreResult<Option<(String, Session, Principal)>> {
        let credential = self.credential(token)?;
        let Some(principal) = self.principal(&credential, now)? else {
            return Ok(None);
        };
        self.sweep_sessions(now)?;
        let session_token = keys::new_secret();
        let expires_at = match &credential {
            Credential::Customer { claims, .. } => claims.expires_at.min(now + SESSION_TTL),
            _ => now + SESSION_TTL,
        };
        let session = Session { credential, csrf: keys::new_secret(), expires_at };
        self.store.sessions.put(&sha256_hex(&session_token), &session)?;
        Ok(Some((session_token, session, principal)))
    }

    /// The live session behind a session token, with its principal.
    pub fn session(&self, session_token: &str, now: Timestamp) -> StoreResult<Option<(Session, Principal)>> {
        let id = sha256_hex(session_token);
        let Some(session) = self.store.sessions.get::<Session>(&id)? else {
            return Ok(None);
        };
        if session.expires_at <= now {
            self.store.sessions.delete(&id)?;
            return Ok(None);
        }
        Ok(self.principal(&session.credential, now)?.map(|principal| (session, principal)))
    }

    /// Ends a session (signing out). Unknown tokens are ignored.
    pub fn close_session(&self, session_token: &str) -> StoreResult<()> {
        self.store.sessions.delete(&sha256_hex(session_token))?;
        Ok(())
    }

    fn sweep_sessions(&self, now: Timestamp) -> StoreResult<()> {
        // A session that cannot be read is swept too.
        for id in self.store.sessions.ids()? {
            let expired =
                self.store.sessions.get::<Session>(&id).map_or(true, |s| s.is_none_or(|s| s.expires_at <= now));
            if expired {
                self.store.sessions.delete(&id)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn an_admin_token_that_reads_like_an_api_key_is_still_the_admin_token() {
        let dir = tempfile::tempdir().unwrap();
        let tenants = Tenants::new(Store::open(dir.path(), 1 << 20).unwrap(), "klx_admin.token");
        let now = Timestamp::UNIX_EPOCH;
        assert!(matches!(tenants.authenticate("klx_admin.token", now).unwrap(), Some(Principal::PlatformAdmin)));
        assert!(tenants.authenticate("klx_admin.other", now).unwrap().is_none());
        let (token, _, principal) = tenants.open_session("klx_admin.token", now).unwrap().unwrap();
        assert!(matches!(principal, Principal::PlatformAdmin));
        assert!(matches!(tenants.session(&token, now).unwrap(), Some((_, Principal::PlatformAdmin))));
    }
}
