//! Subscriptions: a group of recipients (or one recipient) follows categories, each on its own
//! channels, from a minimum severity up. Together they are the matrix of which role hears of
//! which category on which channel.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::channels::noise::{DigestSchedule, Noise, Outside, QuietHours};
use crate::context::Severity;
use crate::duration::Duration;
use crate::error::{Invalid, invalid};
use crate::recipients::{Audience, check_group};
use crate::records::Owned;

const MAX_NAME_BYTES: usize = 200;
const MAX_CATEGORIES: usize = 50;
const MAX_CHANNELS: usize = 20;

/// A subscription as a client writes it (`POST` and `PUT` take the whole subscription).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionSpec {
    pub name: String,
    /// The group it is for ("Billing Admins"); or else `recipient`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The single recipient (`rcp_...`) it is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    /// For each category followed, the channels its notifications go to.
    pub channels: BTreeMap<String, BTreeSet<String>>,
    /// Notifications below this severity are not for this subscription.
    #[serde(default = "lowest")]
    pub min_severity: Severity,
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// Noise control of what this subscription adds to its channels (see `noise`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_hours: Option<QuietHours>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<DigestSchedule>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_by: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_wait: Option<Duration>,
    /// Time intervals (by name) outside which nothing goes out: held until the next one begins,
    /// or dropped with `outside: "drop"`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub active_during: Vec<String>,
    #[serde(default, skip_serializing_if = "Outside::is_hold")]
    pub outside: Outside,
}

fn lowest() -> Severity {
    Severity::Info
}

fn enabled() -> bool {
    true
}

pub type Subscription = Owned<SubscriptionSpec>;

impl SubscriptionSpec {
    /// Every check that needs nothing but the subscription. (That its categories, channels and
    /// recipient exist is checked by the caller, which can read them.)
    pub fn check(&self) -> Result<(), Invalid> {
        if self.name.trim().is_empty() || self.name.len() > MAX_NAME_BYTES {
            return Err(invalid("name", format!("must be 1 to {MAX_NAME_BYTES} bytes")));
        }
        match (&self.group, &self.recipient) {
            (Some(group), None) => check_group("group", group)?,
            (None, Some(recipient)) => crate::rules::condition::name("recipient", recipient)?,
            _ => return Err(invalid("group", "give either a `group` or a `recipient`")),
        }
        if self.channels.is_empty() || self.channels.len() > MAX_CATEGORIES {
            return Err(invalid("channels", format!("follow 1 to {MAX_CATEGORIES} categories")));
        }
        for (category, channels) in &self.channels {
            let at = format!("channels.{category}");
            super::categories::check_name(&at, category)?;
            if channels.is_empty() || channels.len() > MAX_CHANNELS {
                return Err(invalid(at, format!("give 1 to {MAX_CHANNELS} channel ids")));
            }
            for channel in channels {
                crate::rules::condition::name(&at, channel)?;
            }
        }
        self.noise().check()
    }

    pub fn noise(&self) -> Noise {
        Noise {
            quiet_hours: self.quiet_hours.clone(),
            digest: self.digest.clone(),
            group_by: self.group_by.clone(),
            group_wait: self.group_wait,
            active_during: self.active_during.clone(),
            outside: self.outside,
        }
    }

    /// Who the subscription addresses.
    pub fn audience(&self) -> Audience {
        Audience { groups: self.group.iter().cloned().collect(), recipients: self.recipient.iter().cloned().collect() }
    }

    /// The channels a notification of this category and severity goes to, if any.
    pub fn channels_for(&self, category: &str, severity: Severity) -> Option<&BTreeSet<String>> {
        if !self.enabled || severity < self.min_severity {
            return None;
        }
        self.channels.get(category)
    }
}
