//! Addresses a customer gives its email channel: each is confirmed by a link mailed to it before
//! any alert goes there, so a customer token cannot make Klaxon mail strangers.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{Channel, Kind};
use crate::tenants::customer_tokens::OWNER_PREFIX;
use crate::tenants::keys::{digests_equal, new_secret, sha256_hex};

/// One address's confirmation: the digest of the secret its link carries, and when it was
/// followed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Confirmation {
    token_sha256: String,
    pub confirmed_at: Option<Timestamp>,
}

impl Channel {
    /// Whether its addresses must be confirmed: an email channel a customer made.
    pub fn needs_confirmation(&self) -> bool {
        self.spec.kind == Kind::Email && self.created_by.starts_with(OWNER_PREFIX)
    }

    /// Starts a confirmation for each address listed without one, and forgets those of addresses
    /// no longer listed. Answers each new address with the secret its link must carry.
    pub fn ask_confirmations(&mut self) -> Vec<(String, String)> {
        if !self.needs_confirmation() {
            self.confirmations.clear();
            return Vec::new();
        }
        let listed = &self.spec.to;
        self.confirmations.retain(|address, _| listed.contains(address));
        let mut asked = Vec::new();
        for address in listed {
            if !self.confirmations.contains_key(address) {
                let secret = new_secret();
                let confirmation = Confirmation { token_sha256: sha256_hex(&secret), confirmed_at: None };
                self.confirmations.insert(address.clone(), confirmation);
                asked.push((address.clone(), secret));
            }
        }
        asked
    }

    /// Marks confirmed the address whose link carries `secret`; answers it, or `None` for a
    /// secret of no address.
    pub fn confirm(&mut self, secret: &str, now: Timestamp) -> Option<String> {
        let digest = sha256_hex(secret);
        let (address, confirmation) =
            self.confirmations.iter_mut().find(|(_, c)| digests_equal(&c.token_sha256, &digest))?;
        confirmation.confirmed_at.get_or_insert(now);
        Some(address.clone())
    }

    /// Whether alerts may go to `address`.
    pub fn may_mail(&self, address: &str) -> bool {
        !self.needs_confirmation() || self.confirmations.get(address).is_some_and(|c| c.confirmed_at.is_some())
    }

    /// Each address awaiting or past confirmation, as the API shows it.
    pub fn confirmation_states(&self) -> BTreeMap<&str, &'static str> {
        let state = |c: &Confirmation| if c.confirmed_at.is_some() { "confirmed" } else { "pending" };
        self.confirmations.iter().map(|(address, c)| (address.as_str(), state(c))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::ChannelSpec;

    fn channel(created_by: &str, to: &[&str]) -> Channel {
        let spec: ChannelSpec =
            serde_json::from_value(serde_json::json!({ "name": "mail", "kind": "email", "to": to })).unwrap();
        Channel::new(created_by, spec, Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn a_customer_address_is_mailed_only_once_its_link_is_followed() {
        let mut channel = channel("customer:acme", &["a@example.com", "b@example.com"]);
        let asked = channel.ask_confirmations();
        assert_eq!(asked.len(), 2);
        assert!(!channel.may_mail("a@example.com"));
        assert_eq!(channel.confirm("wrong", Timestamp::UNIX_EPOCH), None);
        assert_eq!(channel.confirm(&asked[0].1, Timestamp::UNIX_EPOCH).as_deref(), Some("a@example.com"));
        assert!(channel.may_mail("a@example.com") && !channel.may_mail("b@example.com"));
        // Saved again with one address more and one less: only the new one is asked.
        channel.spec.to = vec!["a@example.com".into(), "c@example.com".into()];
        let asked = channel.ask_confirmations();
        assert_eq!(asked.iter().map(|(a, _)| a.as_str()).collect::<Vec<_>>(), ["c@example.com"]);
        assert_eq!(channel.confirmation_states().len(), 2);
        assert!(channel.may_mail("a@example.com"));
    }

    #[test]
    fn a_tenants_own_addresses_need_no_confirmation() {
        let mut channel = channel("key_1", &["ops@example.com"]);
        assert!(channel.ask_confirmations().is_empty());
        assert!(channel.may_mail("ops@example.com"));
    }
}
