//! Recipients: the people notifications reach and the groups they belong to ("Org Admins",
//! "Billing Admins"). An email or SMS channel, or a subscription using one, can address a group
//! instead of fixed addresses; the group's members are read when the message is made.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::error::{Invalid, invalid};
use crate::records::Owned;
use crate::store::{Collection, StoreResult};

const MAX_NAME_BYTES: usize = 200;
const MAX_GROUPS: usize = 50;

/// A person as a client writes it (`POST` and `PUT` take the whole recipient).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipientSpec {
    pub name: String,
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// A Slack member id or handle, for templates that mention people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack: Option<String>,
    /// A Microsoft Teams user (email or UPN), for templates that mention people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teams: Option<String>,
    /// The groups the person belongs to.
    #[serde(default)]
    pub groups: BTreeSet<String>,
}

pub type Recipient = Owned<RecipientSpec>;

impl RecipientSpec {
    pub fn check(&self) -> Result<(), Invalid> {
        if self.name.trim().is_empty() || self.name.len() > MAX_NAME_BYTES {
            return Err(invalid("name", format!("must be 1 to {MAX_NAME_BYTES} bytes")));
        }
        self.email
            .parse::<lettre::Address>()
            .map_err(|e| invalid("email", format!("`{}` is not an email address: {e}", self.email)))?;
        if let Some(phone) = &self.phone {
            check_phone(phone).map_err(|message| invalid("phone", message))?;
        }
        for (field, value) in [("slack", &self.slack), ("teams", &self.teams)] {
            if let Some(value) = value {
                crate::rules::condition::name(field, value)?;
            }
        }
        if self.groups.len() > MAX_GROUPS {
            return Err(invalid("groups", format!("at most {MAX_GROUPS} groups")));
        }
        for group in &self.groups {
            check_group("groups", group)?;
        }
        Ok(())
    }
}

/// A phone number in E.164 form: `+`, a country code and the number, at most 15 digits.
pub fn check_phone(phone: &str) -> Result<(), String> {
    let digits = phone.strip_prefix('+').unwrap_or_default();
    let e164 =
        (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0');
    if e164 { Ok(()) } else { Err(format!("`{phone}` is not a number in E.164 form, e.g. +4930123456")) }
}

/// A group name: 1 to 128 bytes, not blank.
pub fn check_group(at: &str, group: &str) -> Result<(), Invalid> {
    if group.trim().is_empty() || group.len() > 128 {
        return Err(invalid(at, format!("`{group}` is not a group name: 1 to 128 bytes, not blank")));
    }
    Ok(())
}

/// Who a notification is addressed to beyond a channel's own addresses: groups and single
/// recipients (by id).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Audience {
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub groups: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub recipients: BTreeSet<String>,
}

impl Audience {
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty() && self.recipients.is_empty()
    }

    pub fn extend(&mut self, other: &Audience) {
        self.groups.extend(other.groups.iter().cloned());
        self.recipients.extend(other.recipients.iter().cloned());
    }
}

/// The email addresses of everyone the audience names, each once, in order.
pub fn emails(recipients: &Collection, tenant: &str, audience: &Audience) -> StoreResult<Vec<String>> {
    reach(recipients, tenant, audience, |r| Some(&r.email))
}

/// The phone numbers of everyone the audience names who has one, each once, in order.
pub fn phones(recipients: &Collection, tenant: &str, audience: &Audience) -> StoreResult<Vec<String>> {
    reach(recipients, tenant, audience, |r| r.phone.as_ref())
}

fn reach(
    recipients: &Collection,
    tenant: &str,
    audience: &Audience,
    address: impl Fn(&RecipientSpec) -> Option<&String>,
) -> StoreResult<Vec<String>> {
    if audience.is_empty() {
        return Ok(Vec::new());
    }
    let everyone: Vec<Recipient> = recipients.list(tenant)?;
    let named = everyone
        .iter()
        .filter(|r| audience.recipients.contains(&r.id) || r.spec.groups.iter().any(|g| audience.groups.contains(g)));
    Ok(named.filter_map(|r| address(&r.spec).cloned()).collect::<BTreeSet<_>>().into_iter().collect())
}
